"""`brokercert selftest`: the suite's detection score against the reference server's faults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from brokercert.cli._app import app, fail
from brokercert.depth import preset
from brokercert.errors import ExitCode
from brokercert.pytest_plugin._settings import new_run_id


@app.command("selftest")
def selftest_command(
    faults: Annotated[
        list[str] | None, typer.Option("--faults", "--fault", help="fault names (default: all)")
    ] = None,
    report_dir: Annotated[Path, typer.Option("--report-dir")] = Path("reports"),
    depth: Annotated[str, typer.Option("--depth")] = "quick",
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="full: the whole suite per fault; "
            "relevant: only the tests naming the fault's requirements",
        ),
    ] = "full",
    workers: Annotated[int | None, typer.Option("--workers", help="faults run at once")] = None,
) -> None:
    """Run the suite against the clean server and each fault; exit 0 only at 100% detection."""
    from brokercert.selftest import run_selftest
    from brokercert.server import FAULTS

    preset(depth)
    if scope not in ("full", "relevant"):
        fail("--scope must be 'full' or 'relevant'")
    unknown = [f for f in faults or [] if f not in FAULTS]
    if unknown:
        fail(f"unknown fault {unknown[0]!r}; `brokercert faults` lists the known ones")
    out = report_dir.absolute() / f"selftest-{new_run_id()}"
    out.mkdir(parents=True, exist_ok=True)
    report = run_selftest(
        faults or None, out, depth=depth, scope=scope, workers=workers, on_done=print
    )
    caught = sum(f.detected for f in report.faults)
    print(
        f"detection: {caught}/{len(report.faults)} faults caught on the right requirement "
        f"({report.detection:.0%}); false failures on the clean server: {report.false_failures}; "
        f"{report.seconds:.0f}s"
    )
    for f in report.faults:
        if f.collateral:
            print(f"  {f.fault}: collateral {', '.join(f.collateral)}")
    print(f"selftest.json: {out / 'selftest.json'}")
    raise typer.Exit(int(ExitCode.CONFORMANT if report.passed else ExitCode.NOT_CONFORMANT))
