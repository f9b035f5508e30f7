"""`brokercert run`: certify one dialect at a URL, or both against the embedded server."""

from __future__ import annotations

import re
import secrets
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, cast

import typer

from brokercert import catalog as catalog_mod
from brokercert.cli._app import app, fail
from brokercert.cli._progress import LiveProgress
from brokercert.cli._requirements import load_catalogs
from brokercert.depth import preset
from brokercert.errors import ExitCode, UserError
from brokercert.pytest_plugin._settings import new_run_id
from brokercert.report import FailOn, ReportOutcome, write_reports
from brokercert.results import Verdict
from brokercert.runner import DialectJob, RunOptions, RunTimedOut, run_dialects
from brokercert.target import Credentials, build_target, probe

DialectOpt = Annotated[
    str | None,
    typer.Option("--dialect", "-d", help="alpaca, buildmarkets, or all (embedded server only)"),
]


def execute_run(
    *,
    target: str | None,
    dialect: str | None,
    spec_version: str | None,
    report_dir: Path,
    depth: str,
    baseline: Path | None,
    fail_on: str,
    rate_limit: str | None,
    allow_production: bool,
    insecure: bool,
    max_time: float,
    request_timeout: float,
    render_html: bool,
    run_id: str | None = None,
) -> tuple[ExitCode, Path]:
    """The whole run; returns the exit code and the run folder. Shared with `certify`."""
    preset(depth)  # validates the name before anything starts
    if fail_on not in ("any", "new"):
        raise UserError("--fail-on must be 'any' or 'new'")
    if fail_on == "new" and baseline is None:
        raise UserError("--fail-on new needs --baseline FILE")
    if baseline is not None and not baseline.is_file():
        raise UserError(f"baseline file not found: {baseline}")
    if target is not None and dialect in (None, "all"):
        raise UserError("--target needs a single --dialect (alpaca or buildmarkets)")
    cats = load_catalogs(dialect, spec_version)
    run_id = run_id or new_run_id()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", run_id):
        raise UserError("--run-id may hold letters, digits, '.', '_' and '-' only")
    # Absolute: the test sessions run inside the run folder, and are told paths in it.
    report_dir = report_dir.absolute()
    run_dir = report_dir / run_id
    if run_dir.exists() and any(run_dir.iterdir()):
        # Never overwrite an earlier run's evidence.
        raise UserError(f"report folder {run_dir} already exists; choose another --run-id")
    with ExitStack() as stack:
        if target is None:
            key, secret = "bc-" + secrets.token_hex(8), secrets.token_urlsafe(24)
            bases = _start_embedded(stack, run_dir, key, secret, [c.dialect for c in cats])
            env = {"BROKERCERT_API_KEY": key, "BROKERCERT_API_SECRET": secret}
            credentials = Credentials(key, secret)
        else:
            found = Credentials.from_env()
            if found is None:
                raise UserError("no credentials: set BROKERCERT_API_KEY and BROKERCERT_API_SECRET")
            credentials = found
            bases = {cats[0].dialect: target.rstrip("/")}
            env = {}
        jobs = []
        for cat in cats:
            tgt = build_target(
                bases[cat.dialect],
                cat.profile,
                credentials,
                allow_production=allow_production,
                rate_limit=rate_limit,
                insecure=insecure,
                timeout=request_timeout,
            )
            probe(tgt)
            jobs.append(
                DialectJob(
                    dialect=cat.dialect,
                    base_url=tgt.base_url,
                    catalog=cat,
                    progress_file=run_dir / f".progress-{cat.dialect}",
                    log_file=run_dir / f"pytest-{cat.dialect}.log",
                )
            )
        options = RunOptions(
            depth=depth,
            run_id=run_id,
            run_dir=run_dir,
            rate_limit=rate_limit,
            allow_production=allow_production,
            insecure=insecure,
            request_timeout=request_timeout,
            max_time=max_time,
            spec_version=spec_version,
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        _point_latest(report_dir, run_id)
        timed_out: RunTimedOut | None = None
        with LiveProgress(jobs) as live:
            try:
                records = run_dialects(jobs, options, env, on_tick=live.update)
            except RunTimedOut as exc:  # still report what the stopped sessions found
                timed_out, records = exc, exc.records
            except KeyboardInterrupt:
                # The sessions got the Ctrl-C too and closed what they could (see runner).
                print(f"brokercert: interrupted; {_left_open(run_dir, jobs)}", file=sys.stderr)
                raise typer.Exit(130) from None
    for job in jobs:
        job.progress_file.unlink(missing_ok=True)
    outcome = write_reports(
        run_dir,
        records,
        {c.dialect: c for c in cats},
        run_id=run_id,
        baseline=baseline,
        render=render_html,
        fail_on=cast(FailOn, fail_on),
    )
    _print_outcome(outcome, run_dir)
    if timed_out is not None:
        raise timed_out
    return ExitCode(outcome.exit_code), run_dir


def _left_open(run_dir: Path, jobs: list[DialectJob]) -> str:
    """What an interrupted run left behind, from the sessions' journals of created ids."""
    from brokercert.cleanup import CleanupRegistry

    left = {}
    for job in jobs:
        journal = run_dir / f"created-{job.dialect}.txt"
        if journal.exists():
            ids = CleanupRegistry.from_journal(journal).ids()
            if ids:
                left[job.dialect] = (len(ids), journal)
    if not left:
        return "the accounts the run created were closed"
    return "; ".join(
        f"{n} {dialect} account(s) could not be closed (ids in {journal})"
        for dialect, (n, journal) in left.items()
    )


def _point_latest(report_dir: Path, run_id: str) -> None:
    """reports/latest -> the newest run, for people and CI scripts (best effort)."""
    link = report_dir / "latest"
    try:
        if link.is_symlink():
            link.unlink()
        if not link.exists():
            link.symlink_to(run_id, target_is_directory=True)
    except OSError:
        pass


def _start_embedded(
    stack: ExitStack, run_dir: Path, key: str, secret: str, dialects: list[str]
) -> dict[str, str]:
    from brokercert.server import ServerConfig, start_in_thread

    run_dir.mkdir(parents=True, exist_ok=True)
    # The server's database holds every tax id the run sent, in clear: it lives outside
    # the report folder (which is handed to third parties) and goes when the run ends.
    data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="brokercert-embedded-")))
    config = ServerConfig(db=data / "reference-server.db", key=key, secret=secret, kyc_delay=0.0)
    server = stack.enter_context(start_in_thread(config))
    return {d: server.base_url(d) for d in dialects}


def _print_outcome(outcome: ReportOutcome, run_dir: Path) -> None:
    """A few lines a person reads at the end of a run; the files hold the rest."""
    for res in outcome.certification.results:
        counts = res.counts
        conformant = all(r.verdict is Verdict.PASSED for r in res.requirements if r.level == "MUST")
        word = "CONFORMANT" if conformant else "NOT CONFORMANT"
        print(
            f"{res.dialect} {res.spec_version}: {word} "
            f"({counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['warning']} warnings, {counts['not_tested']} not tested)"
        )
        failing = [r for r in res.requirements if r.verdict in (Verdict.FAILED, Verdict.NOT_TESTED)]
        for req in failing[:10]:
            print(f"  {req.verdict.value:<10} {req.id}  {req.title}")
        if len(failing) > 10:
            print(f"  ... and {len(failing) - 10} more (see summary.md)")
        if res.leftover_accounts:
            print(f"  {len(res.leftover_accounts)} account(s) could not be closed: see summary.md")
    if outcome.diff is not None:
        d = outcome.diff
        print(
            f"against baseline: {len(d.regressions)} new failures, {len(d.fixed)} fixed, "
            f"{len(d.still_failing)} still failing"
        )
    if outcome.html is not None and not outcome.html.ok:
        print(f"HTML report: {outcome.html.message}")
    print(f"reports: {run_dir} (summary.md, certification.json, junit-*.xml, allure-report/)")


@app.command("run")
def run_command(
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="base URL of the API; default: the embedded server"),
    ] = None,
    dialect: DialectOpt = None,
    spec_version: Annotated[str | None, typer.Option("--spec-version")] = None,
    report_dir: Annotated[
        Path, typer.Option("--report-dir", help="parent folder of run reports")
    ] = Path("reports"),
    depth: Annotated[str, typer.Option("--depth", help="quick, standard or deep")] = "standard",
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="earlier certification.json to compare with")
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option("--fail-on", help="any: fail on any MUST failure; new: only on regressions"),
    ] = "any",
    rate_limit: Annotated[str | None, typer.Option("--rate-limit", help="e.g. 5/s")] = None,
    allow_production: Annotated[bool, typer.Option("--allow-production")] = False,
    insecure: Annotated[bool, typer.Option("--insecure", help="skip TLS verification")] = False,
    max_time: Annotated[
        float, typer.Option("--max-time", help="bound on the whole run, seconds")
    ] = 1800.0,
    request_timeout: Annotated[float, typer.Option("--request-timeout")] = 10.0,
    html: Annotated[bool, typer.Option("--html/--no-html", help="render the Allure HTML")] = True,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="name of the run folder (default: time-based)")
    ] = None,
) -> None:
    """Run the suite and write reports; exit 0 conformant, 1 not, 2 usage, 3 unreachable."""
    try:
        code, _ = execute_run(
            target=target,
            dialect=dialect,
            spec_version=spec_version,
            report_dir=report_dir,
            depth=depth,
            baseline=baseline,
            fail_on=fail_on,
            rate_limit=rate_limit,
            allow_production=allow_production,
            insecure=insecure,
            max_time=max_time,
            request_timeout=request_timeout,
            render_html=html,
            run_id=run_id,
        )
    except UserError as exc:
        fail(str(exc), exc.exit_code)
    except catalog_mod.CatalogError as exc:
        fail(str(exc))
    sys.stdout.flush()
    raise typer.Exit(int(code))


__all__ = ["execute_run"]
