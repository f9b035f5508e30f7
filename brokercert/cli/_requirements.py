"""`brokercert requirements`: print the catalogue, or check it against the tests."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from brokercert import catalog, traceability
from brokercert.cli._app import app, fail
from brokercert.errors import ExitCode


class Format(StrEnum):
    table = "table"
    json = "json"


def load_catalogs(dialect: str | None, spec_version: str | None = None) -> list[catalog.Catalog]:
    """The catalogues a command works on: one dialect, or all when ``dialect`` is None/'all'."""
    try:
        if dialect in (None, "all"):
            if spec_version:
                fail("--spec-version needs a single --dialect")
            return [catalog.load(d) for d in catalog.dialects()]
        return [catalog.load(dialect, spec_version)]
    except catalog.CatalogError as exc:
        fail(str(exc))


@app.command("requirements")
def requirements_command(
    dialect: Annotated[
        str | None, typer.Option("--dialect", "-d", help="alpaca, buildmarkets or all")
    ] = None,
    spec_version: Annotated[str | None, typer.Option("--spec-version")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="fail when a requirement has no test or a test names an unknown one"
        ),
    ] = False,
) -> None:
    """List the requirement catalogue (or check that tests and catalogue agree)."""
    cats = load_catalogs(dialect, spec_version)
    if check:
        # Unknown IDs are judged against every dialect, since a test may serve several.
        drift = traceability.check(cats if dialect in (None, "all") else load_catalogs(None))
        if dialect not in (None, "all"):
            drift = traceability.Drift(
                untested={dialect: drift.untested.get(dialect, [])}, unknown=drift.unknown
            )
        for name, ids in drift.untested.items():
            for rid in ids:
                print(f"untested: {name} {rid} has no test naming it")
        for rid, where in drift.unknown.items():
            print(f"unknown: {rid} named at {', '.join(where)} is in no catalogue")
        total = sum(len(c.requirements) for c in cats)
        if not drift.ok:
            fail("requirement catalogue and tests have drifted apart", ExitCode.NOT_CONFORMANT)
        print(f"ok: {total} requirements, each named by at least one test")
        return
    if fmt is Format.json:
        out = [
            {"dialect": c.dialect, "spec_version": c.version, **r.model_dump(mode="json")}
            for c in cats
            for r in c.requirements
        ]
        print(json.dumps(out, indent=2))
        return
    console = Console()
    for cat in cats:
        table = Table(title=f"{cat.dialect} {cat.version}: {len(cat.requirements)} requirements")
        for col in ("id", "level", "operation", "title"):
            table.add_column(col, overflow="fold")
        for r in cat.requirements:
            table.add_row(r.id, r.level.value, r.operation, r.title)
        console.print(table)
