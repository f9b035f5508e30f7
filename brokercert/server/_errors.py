"""The server's one error type; each dialect renders it in its own envelope."""

from __future__ import annotations


class ApiError(Exception):
    """An HTTP error answer: status, dialect code (None = the dialect's default for the
    status), message and, where it applies, the dotted path of the offending field."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | int | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.field = field
        self.headers = headers or {}
