"""`brokercert serve` (the reference server) and `brokercert faults` (its fault catalogue)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from brokercert.cli._app import app, fail


class Format(StrEnum):
    table = "table"
    json = "json"


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8700,
    db: Annotated[
        Path | None,
        typer.Option(help="SQLite database file (default: in the user data folder)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="Turn on a deliberate deviation (repeatable); "
                                     "see `brokercert faults`."),
    ] = None,
    key: Annotated[
        str | None, typer.Option(envvar="BROKERCERT_API_KEY", help="API key clients must send.")
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(envvar="BROKERCERT_API_SECRET", help="API secret clients must send.",
                     show_default=False),
    ] = None,
    kyc_delay: Annotated[
        float, typer.Option(help="Seconds an account spends in each status; 0 = one step per read.")
    ] = 1.0,
    max_body_mb: Annotated[
        float | None,
        typer.Option(help="Request body cap in MiB for both dialects (default: per dialect)."),
    ] = None,
) -> None:
    """Run the reference server: both dialects, under /alpaca and /buildmarkets."""
    from brokercert.server import FAULTS, ServerConfig, serve
    from brokercert.server._config import DEV_KEY, DEV_SECRET

    for name in fault or ():
        if name not in FAULTS:
            fail(f"unknown fault {name!r}; `brokercert faults` lists the known ones")
    if (key is None) != (secret is None):
        fail("give both the API key and the API secret (--key/--secret or "
             "BROKERCERT_API_KEY/BROKERCERT_API_SECRET), or neither for the dev defaults")
    try:
        config = ServerConfig(
            key=key or DEV_KEY, secret=secret or DEV_SECRET, db=db, kyc_delay=kyc_delay,
            faults=frozenset(fault or ()), max_body_mb=max_body_mb, host=host, port=port,
        )
    except ValueError as exc:
        fail(str(exc))
    try:
        serve(config, announce=lambda line: print(line, flush=True))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
             "choose another --port, or --port 0 for a free one")


@app.command("faults")
def faults_command(
    dialect: Annotated[
        str | None, typer.Option("--dialect", "-d", help="alpaca or buildmarkets")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """List the faults `brokercert serve --fault NAME` can turn on."""
    from brokercert.server import FAULTS

    faults = [f for f in FAULTS.values() if dialect in (None, "all", f.dialect)]
    if not faults:
        fail(f"no faults for dialect {dialect!r}; dialects: alpaca, buildmarkets")
    if fmt is Format.json:
        out = [{"name": f.name, "dialect": f.dialect, "requirements": list(f.requirements),
                "description": f.description} for f in faults]
        print(json.dumps(out, indent=2))
        return
    table = Table(title=f"{len(faults)} faults (brokercert serve --fault NAME)")
    table.add_column("name", no_wrap=True)
    table.add_column("dialect", no_wrap=True)
    table.add_column("requirements", overflow="fold")
    table.add_column("description", overflow="fold")
    for f in faults:
        table.add_row(f.name, f.dialect, " ".join(f.requirements), f.description)
    Console().print(table)
