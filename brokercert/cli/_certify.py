"""`brokercert certify`: a full run and a bundle a vendor can hand over (and anyone verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from brokercert.cli._app import app, fail
from brokercert.errors import UserError
from brokercert.report import make_bundle, verify_bundle

CERTIFYING_DEPTHS = ("standard", "deep")


@app.command("certify")
def certify_command(
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="base URL of the API; default: the embedded server"),
    ] = None,
    dialect: Annotated[str, typer.Option("--dialect", "-d", help="alpaca or buildmarkets")] = "",
    spec_version: Annotated[str | None, typer.Option("--spec-version")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="bundle folder (default: <run>/bundle)")
    ] = None,
    report_dir: Annotated[Path, typer.Option("--report-dir")] = Path("reports"),
    depth: Annotated[str, typer.Option("--depth", help="standard or deep")] = "standard",
    sign_key: Annotated[
        Path | None, typer.Option("--sign-key", help="Ed25519 private key file (brokercert keygen)")
    ] = None,
    rate_limit: Annotated[str | None, typer.Option("--rate-limit")] = None,
    allow_production: Annotated[bool, typer.Option("--allow-production")] = False,
    insecure: Annotated[bool, typer.Option("--insecure")] = False,
    max_time: Annotated[float, typer.Option("--max-time")] = 3600.0,
) -> None:
    """Certify one dialect: every test, no skips, standard depth or deeper, then bundle it."""
    from brokercert.cli._run import execute_run

    if not dialect or dialect == "all":
        fail("certify needs one --dialect (alpaca or buildmarkets)")
    if depth not in CERTIFYING_DEPTHS:
        fail(f"certification runs at standard depth or deeper, not {depth!r}")
    if out is not None and out.exists() and any(out.iterdir()):
        fail(f"bundle folder {out} already exists and is not empty")
    try:
        code, run_dir = execute_run(
            target=target,
            dialect=dialect,
            spec_version=spec_version,
            report_dir=report_dir,
            depth=depth,
            baseline=None,
            fail_on="any",
            rate_limit=rate_limit,
            allow_production=allow_production,
            insecure=insecure,
            max_time=max_time,
            request_timeout=10.0,
            render_html=True,
        )
        bundle = make_bundle(run_dir, out or run_dir / "bundle", sign_key)
    except UserError as exc:
        fail(str(exc), exc.exit_code)
    check = verify_bundle(bundle)
    signed = " (signed)" if sign_key else ""
    print(f"bundle{signed}: {bundle} ({'intact' if check.intact else 'NOT intact'})")
    print(f"verify it with: brokercert verify {bundle}")
    raise typer.Exit(int(code))
