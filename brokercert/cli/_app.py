"""The typer application object shared by every sub-command module."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from brokercert.errors import ExitCode

app = typer.Typer(
    name="brokercert",
    help="Contract and conformance suite for brokerage account-opening APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print one clear line on stderr and exit with a defined code."""
    print(f"brokercert: error: {message}", file=sys.stderr)
    raise SystemExit(int(code))


def _version(value: bool) -> None:
    if value:
        from brokercert import __version__

        print(f"brokercert {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Contract and conformance suite for brokerage account-opening APIs."""
