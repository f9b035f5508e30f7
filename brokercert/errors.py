"""Exit codes and the one error type a user can cause.

Exit codes are part of the interface (CI pipelines branch on them):
0 conformant, 1 not conformant, 2 usage or configuration error,
3 target unreachable or not speaking HTTP.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    CONFORMANT = 0
    NOT_CONFORMANT = 1
    USAGE = 2
    UNREACHABLE = 3


class UserError(Exception):
    """Something the user can fix; printed as one line, never as a traceback."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class TargetUnreachable(UserError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.UNREACHABLE)
