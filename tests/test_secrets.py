"""No secret in clear in anything a run writes.

Runs the real CLI with known credentials against the reference server, for both
dialects (HTML rendered for one), and against a server with faults on, so that failure
attachments with exchanges exist; then searches every file under the report folder
(allure-results, the HTML, junit, certification.json, summary.md, pytest logs,
journals, hidden folders) for the API key, the secret, the HTTP Basic token
base64(key:secret), their escaped spellings and every tax id the runs sent, the ones
the suite generated and the ones Schemathesis did (read back from the servers' SQLite
databases afterwards). base64 text inside the files (the single-file HTML embeds its
data that way) is decoded and searched too, as is gzip inside it.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import sqlite3
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hostile_servers import CliResult, run_cli

from brokercert.redact import TAX_ID_KEYS
from brokercert.server import RunningServer, ServerConfig, start_in_thread

KEY = "kx-4f8a1c9e77d2"
SECRET = "s3cr3t-Zq9vW2mT8rL5yB1n"
BASIC = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
FAULTS = frozenset({"bm_auth_not_checked", "alp_tax_id_echoed", "alp_auth_not_checked"})
# A stored tax id is searched for when it looks like one (SSN or EIN shape, as the specs
# and the suite's generator write them): Schemathesis also sends junk such as "0" or
# "50000_to_100000" as tax_id, which would be found everywhere for other reasons.
TAX_ID_SHAPE = re.compile(r"\d{3}-?\d{2}-?\d{4}|\d{2}-\d{7}")
_B64_RUN = re.compile(rb"[A-Za-z0-9+/]{24,}={0,2}")


@dataclass(frozen=True)
class Run:
    name: str
    dialect: str
    faulty: bool
    html: bool


RUNS = [
    Run("alpaca-clean-html", "alpaca", faulty=False, html=True),
    Run("buildmarkets-clean", "buildmarkets", faulty=False, html=False),
    Run("buildmarkets-auth-fault", "buildmarkets", faulty=True, html=False),
    Run("alpaca-faults", "alpaca", faulty=True, html=False),
]


@dataclass
class Campaign:
    results: dict[str, CliResult]
    databases: list[Path]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    tmp = tmp_path_factory.mktemp("secrets")
    clean_db, fault_db = tmp / "clean.sqlite3", tmp / "faults.sqlite3"
    clean = start_in_thread(ServerConfig(db=clean_db, key=KEY, secret=SECRET, kyc_delay=0))
    faulty = start_in_thread(
        ServerConfig(db=fault_db, key=KEY, secret=SECRET, kyc_delay=0, faults=FAULTS)
    )
    try:

        def one(run: Run) -> CliResult:
            server: RunningServer = faulty if run.faulty else clean
            reports = tmp / run.name
            args = ["run", "--target", server.base_url(run.dialect), "--dialect", run.dialect,
                    "--depth", "quick", "--report-dir", str(reports), "--max-time", "600"]
            if not run.html:
                args.append("--no-html")
            return run_cli(args, reports, key=KEY, secret=SECRET, timeout=900)

        def embedded() -> CliResult:
            reports = tmp / "embedded"
            return run_cli(["run", "--dialect", "alpaca", "--depth", "quick", "--no-html",
                            "--report-dir", str(reports), "--max-time", "600"],
                           reports, key=None, secret=None, timeout=900)

        with ThreadPoolExecutor(2) as pool:
            extra = pool.submit(embedded)
            results = dict(zip([r.name for r in RUNS], pool.map(one, RUNS), strict=True))
            results["embedded"] = extra.result()
    finally:
        clean.stop()
        faulty.stop()
    yield Campaign(results, [clean_db, fault_db])


def _tax_ids(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in TAX_ID_KEYS and isinstance(item, str):
                yield item
            else:
                yield from _tax_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _tax_ids(item)


def sent_tax_ids(db: Path) -> set[str]:
    """Every tax id stored by the server: what the runs sent (scenarios and fuzzing)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        bodies = [json.loads(b) for (b,) in conn.execute("SELECT body FROM accounts")]
        cips = [json.loads(b) for (b,) in conn.execute("SELECT body FROM cip")]
    return {t for body in bodies + cips for t in _tax_ids(body)}


def _spellings(secret: str) -> set[bytes]:
    out = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
    return {s.encode() for s in out if s}


def _views(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The file, and what its base64 runs (and gzip/zlib inside them) decode to."""
    yield "raw", data
    for match in _B64_RUN.finditer(data):
        chunk = match.group(0)
        try:
            decoded = base64.b64decode(chunk + b"=" * (-len(chunk) % 4))
        except (binascii.Error, ValueError):
            continue
        yield "base64", decoded
        inflated = _inflate(decoded)
        if inflated is not None:
            yield inflated


def _inflate(data: bytes) -> tuple[str, bytes] | None:
    try:
        if data[:2] == b"\x1f\x8b":
            return "base64+gzip", gzip.decompress(data)
        if data[:1] == b"\x78":
            return "base64+zlib", zlib.decompress(data)
    except (OSError, EOFError, zlib.error):
        pass
    return None


def find_secrets(root: Path, needles: dict[str, set[bytes]]) -> list[str]:
    """'file: what (how it was stored)' for every needle found under root."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for how, view in _views(data):
            for what, spellings in needles.items():
                if any(s in view for s in spellings):
                    found.append(f"{path.relative_to(root)}: {what} ({how})")
    return sorted(set(found))


def test_every_run_finished_with_a_verdict_and_reports(campaign: Campaign) -> None:
    for run in RUNS:
        result = campaign.results[run.name]
        assert result.code in (0, 1), result.describe()
        assert "Traceback" not in result.output, result.describe()
        assert result.run_dir is not None and (result.run_dir / "certification.json").exists()
        if run.faulty:
            assert result.code == 1, result.describe()
    html = campaign.results["alpaca-clean-html"]
    assert html.run_dir is not None
    assert list((html.run_dir / "allure-report").glob("*.html")) or "HTML report:" in html.stdout


def test_failure_attachments_exist_to_be_searched(campaign: Campaign) -> None:
    for run in RUNS:
        if not run.faulty:
            continue
        run_dir = campaign.results[run.name].run_dir
        assert run_dir is not None
        attachments = list((run_dir / "allure-results").glob("*-attachment*"))
        assert attachments, f"{run.name}: no failure attachment was written"


def test_the_search_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The searcher itself: clear, URL-encoded, JSON-escaped and base64+gzip-embedded."""
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "a.txt").write_text(f"x {quote(SECRET, safe='')} y")
    embedded = base64.b64encode(gzip.compress(f'{{"tax_id": "900-12-3456", "k": "{KEY}"}}'
                                              .encode())).decode()
    (tmp_path / "b.html").write_text(f"<script src='data:x;base64,{embedded}'></script>")
    found = find_secrets(tmp_path, {"secret": _spellings(SECRET), "key": _spellings(KEY),
                                    "tax id": _spellings("900-12-3456")})
    assert found == [".hidden/a.txt: secret (raw)", "b.html: key (base64+gzip)",
                     "b.html: tax id (base64+gzip)"]


def test_no_secret_or_tax_id_in_clear_in_any_written_file(campaign: Campaign) -> None:
    tax_ids = set().union(*(sent_tax_ids(db) for db in campaign.databases))
    generated = {t for t in tax_ids if re.fullmatch(r"9\d\d-?\d\d-?\d{4}", t)}
    assert generated, "the runs should have sent tax ids generated by the suite"
    needles: dict[str, set[bytes]] = {
        "API key": _spellings(KEY),
        "API secret": _spellings(SECRET),
        "Basic token": {BASIC.encode(), BASIC.rstrip("=").encode()},
    }
    for tax_id in tax_ids:
        if TAX_ID_SHAPE.fullmatch(tax_id):
            needles[f"tax id {tax_id!r}"] = _spellings(tax_id)
    for tax_id in generated:
        needles[f"tax id {tax_id!r}"] |= {tax_id.replace("-", "").encode()}
    leaks: list[str] = []
    files = 0
    for run in RUNS:
        result = campaign.results[run.name]
        files += sum(1 for p in result.report_dir.rglob("*") if p.is_file())
        leaks += [f"{run.name}/{hit}" for hit in find_secrets(result.report_dir, needles)]
        for what, spellings in needles.items():
            if any(s.decode() in result.output for s in spellings):
                leaks.append(f"{run.name}: console output: {what}")
    assert files > 50
    assert leaks == [], "\n".join(leaks[:40])


def test_an_embedded_run_leaves_no_server_database_in_the_reports(campaign: Campaign) -> None:
    """With no --target the reference server runs in-process; its database (every tax id
    the run sent, in clear) must not end up in the report folder."""
    result = campaign.results["embedded"]
    assert result.code in (0, 1), result.describe()
    assert result.run_dir is not None and (result.run_dir / "certification.json").exists()
    ssn = re.compile(rb"(?<![\d-])9\d\d-\d\d-\d{4}(?![\d-])")
    for path in (p for p in result.report_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not data.startswith(b"SQLite format 3"), f"{path} is a database"
        for how, view in _views(data):
            match = ssn.search(view)
            assert match is None, f"{path} ({how}) holds the tax id {match.group(0)!r}"
