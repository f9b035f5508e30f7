"""`brokercert run` against misbehaving targets: a clear verdict or exit 3, a bounded run
time, no traceback, and complete reports whenever the run got past the probe.

The cases (tests/hostile_servers.py, CASES) put a small misbehaving server in front of
a `brokercert serve` process: slow answers, resets, non-HTTP bytes, HTML error pages,
empty and 50 MB bodies, redirects to another host, 429 storms with and without
Retry-After, 5xx bursts, a self-signed certificate, a closed port. Every case runs the
real CLI in its own process group; the runs go BROKERCERT_HOSTILE_WORKERS (default 2)
at a time, so that the file stays within a few minutes.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from hostile_servers import (
    CASES,
    Case,
    CaseResult,
    HostileServer,
    Seen,
    report_problems,
    run_case,
    self_signed_context,
    served,
)

from brokercert import catalog
from brokercert.errors import TargetUnreachable
from brokercert.target import Credentials, build_target, probe

KEY, SECRET = "hostile-key-5f2c", "hostile-secret-9a7e1d0b"
WORKERS = max(1, int(os.environ.get("BROKERCERT_HOSTILE_WORKERS", "2")))
PEAK_RSS_LIMIT = 1536 * 1024 * 1024  # any process of any run, 50 MB bodies included


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(tmp_path_factory.mktemp("upstream") / "db.sqlite3", KEY, SECRET) as server:
        yield server.url


@pytest.fixture(scope="module")
def campaign(
    upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[CaseResult]]]:
    """Every case, started at once on a small pool; each test waits for its own."""
    work = tmp_path_factory.mktemp("hostile")
    # the long runs first, so that the pool finishes together
    order = sorted(CASES, key=lambda c: (c.at_probe, c.id))
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="hostile")
    futures = {c.id: pool.submit(run_case, c, upstream, work, key=KEY, secret=SECRET)
               for c in order}
    try:
        yield futures
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _certification(run_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((run_dir / "certification.json").read_text("utf-8"))
    return data


def _verdicts(run_dir: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for res in _certification(run_dir)["results"]:  # type: ignore[attr-defined]
        for req in res["requirements"]:
            out[req["id"]] = req["verdict"]
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_target_gets_a_clear_bounded_answer(
    case: Case, campaign: dict[str, Future[CaseResult]]
) -> None:
    result = campaign[case.id].result(timeout=case.bound * 4 + 300)
    cli = result.cli
    assert cli.code in case.expect, cli.describe()
    assert cli.seconds <= case.bound, f"{case.id} took {cli.seconds:.0f}s\n{cli.describe()}"
    assert "Traceback" not in cli.output, cli.describe()
    assert KEY not in cli.output and SECRET not in cli.output
    errors = [ln for ln in cli.stderr.splitlines() if ln.startswith("brokercert: error:")]
    if cli.code == 3:
        assert len(errors) == 1, cli.describe()
        assert case.hint in errors[0], cli.describe()
    else:
        assert errors == [], cli.describe()
    if case.reports:
        assert cli.run_dir is not None, cli.describe()
        assert report_problems(cli.run_dir, html=case.html) == [], cli.describe()
    else:
        # refused before the run: nothing pretends to be a report
        assert not any(cli.report_dir.rglob("certification.json")), cli.describe()


def test_an_html_error_page_run_still_renders_the_html_report(
    campaign: dict[str, Future[CaseResult]],
) -> None:
    result = campaign["html_502_pages"].result(timeout=900)
    assert result.cli.run_dir is not None
    pages = list((result.cli.run_dir / "allure-report").glob("*.html"))
    if not pages:
        # no renderer on this machine: the run must say how to get the HTML
        assert "HTML report:" in result.cli.stdout, result.cli.describe()
        pytest.skip("the Allure renderer is not available here")
    html = pages[0].read_text("utf-8", "replace")
    assert "googletagmanager" not in html.lower()
    assert KEY not in html and SECRET not in html


def test_redirects_to_another_host_are_not_followed_with_credentials(
    campaign: dict[str, Future[CaseResult]],
) -> None:
    result = campaign["redirect_to_other_host"].result(timeout=900)
    assert sum(s.hostile for s in result.seen) > 10, "the server should have redirected"
    leaked = [s for s in result.redirected
              if {"authorization", "x-api-key", "x-api-secret"} & {k.lower() for k in s.headers}]
    assert leaked == [], leaked[:3]
    assert result.redirected == [], "no request should reach the other host at all"


def test_a_5xx_burst_fails_the_no_server_error_requirement(
    campaign: dict[str, Future[CaseResult]],
) -> None:
    result = campaign["5xx_burst"].result(timeout=900)
    assert result.cli.run_dir is not None
    assert _verdicts(result.cli.run_dir)["GEN-SRV-001"] == "failed"


def test_timeouts_after_the_probe_fail_the_run_instead_of_hanging_it(
    campaign: dict[str, Future[CaseResult]],
) -> None:
    result = campaign["slow_burst"].result(timeout=900)
    assert result.cli.run_dir is not None
    verdicts = _verdicts(result.cli.run_dir)
    assert "failed" in verdicts.values()


def test_max_time_interrupts_the_sessions_and_still_reports(
    campaign: dict[str, Future[CaseResult]],
) -> None:
    result = campaign["slow_forever"].result(timeout=900)
    run_dir = result.cli.run_dir
    assert run_dir is not None
    cert = _certification(run_dir)
    assert cert["verdict"] != "conformant"
    # the stopped session wrote its record (it was interrupted, not killed)
    assert (run_dir / f"record-{result.case.dialect}.json").exists()


def _retries(seen: list[Seen]) -> list[tuple[Seen, Seen, int]]:
    """(429'd request, its retry, attempt number) for the suite's own client."""
    out = []
    polite = [s for s in seen if s.from_brokercert]
    for i, first in enumerate(polite):
        if not first.hostile:
            continue
        attempt = 0
        for earlier in reversed(polite[:i]):
            if earlier.signature == first.signature and earlier.hostile:
                attempt += 1
            else:
                break
        retry = next((s for s in polite[i + 1:] if s.signature == first.signature), None)
        if retry is not None:
            out.append((first, retry, attempt))
    return out


@pytest.mark.parametrize(
    ("case_id", "waits"),
    [("429_storm_retry_after", (1.0, 1.0, 1.0)), ("429_storm_no_retry_after", (1.0, 2.0, 4.0))],
)
def test_a_429_storm_is_ridden_out_waiting_as_told(
    case_id: str, waits: tuple[float, ...], campaign: dict[str, Future[CaseResult]]
) -> None:
    result = campaign[case_id].result(timeout=900)
    storm = [s for s in result.seen if s.hostile]
    assert len(storm) >= 6, "the storm should have hit the suite's client"
    retries = _retries(result.seen)
    assert retries, "429s were not retried"
    for first, retry, attempt in retries:
        assert attempt < 3, "a request was retried more than 3 times"
        gap = retry.at - first.at
        assert gap >= 0.9 * waits[attempt], (first.method, first.path, attempt, gap)
    assert result.cli.run_dir is not None
    # the storm left no request failing with a 429: the upstream's own verdict stands
    for res in _certification(result.cli.run_dir)["results"]:  # type: ignore[attr-defined]
        for req in res["requirements"]:
            assert not any("HTTP 429" in m for m in req.get("messages", [])), req["id"]


def test_no_run_grew_past_the_memory_bound(campaign: dict[str, Future[CaseResult]]) -> None:
    for future in campaign.values():
        future.result(timeout=1800)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    assert peak < PEAK_RSS_LIMIT, f"a run peaked at {peak / 2**20:.0f} MiB"


def test_insecure_accepts_a_self_signed_certificate(upstream: str, tmp_path: Path) -> None:
    profile = catalog.load("alpaca").profile
    creds = Credentials(KEY, SECRET)
    with HostileServer("ok", upstream, tls=self_signed_context(tmp_path)) as server:
        url = server.base_url("alpaca")
        with pytest.raises(TargetUnreachable, match="--insecure"):
            probe(build_target(url, profile, creds))
        target = build_target(url, profile, creds, insecure=True)
        assert target.describe()["tls_verified"] is False
        assert probe(target) == 200
        with target.client() as client:
            assert client.get("/v1/accounts").status_code == 200
