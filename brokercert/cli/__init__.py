"""The `brokercert` command. Each sub-command lives in its own private module."""

from __future__ import annotations

import sys

from brokercert.cli._app import app, fail
from brokercert.errors import UserError

# Importing the modules registers their commands on ``app``.
from brokercert.cli import _requirements, _run  # noqa: F401  isort: skip
from brokercert.cli import _serve  # noqa: F401  isort: skip
from brokercert.cli import _bundle  # noqa: F401  isort: skip
from brokercert.cli import _certify, _selftest  # noqa: F401  isort: skip

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: user errors become one line and an exit code."""
    try:
        app(standalone_mode=True)
    except UserError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        print("brokercert: interrupted", file=sys.stderr)
        sys.exit(130)
