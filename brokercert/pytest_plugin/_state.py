"""Session-wide state of the plugin.

pytest builds one session per process, so module state is the session's state;
it lets client event hooks (which receive no pytest objects) reach the registry.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx

from brokercert.cleanup import CleanupRegistry
from brokercert.redact import Redactor

if TYPE_CHECKING:
    from brokercert.pytest_plugin._fixtures import ExchangeLog
    from brokercert.pytest_plugin._settings import SuiteSettings

_settings: SuiteSettings | None = None
_redactor = Redactor(())
_registry = CleanupRegistry()
_log: ExchangeLog | None = None
_create_route: tuple[str, re.Pattern[str]] | None = None


def configure(settings: SuiteSettings | None, registry: CleanupRegistry) -> None:
    global _settings, _redactor, _registry, _create_route
    _settings = settings
    _registry = registry
    if settings is None:
        return
    creds = settings.target.credentials
    _redactor = Redactor((creds.key, creds.secret))
    op = settings.catalog.profile.operation("create_account")
    _create_route = (op.method, re.compile(re.escape(op.path) + r"/?$"))


def settings() -> SuiteSettings | None:
    return _settings


def redactor() -> Redactor:
    return _redactor


def cleanup_registry() -> CleanupRegistry:
    return _registry


def set_exchange_log(log: ExchangeLog | None) -> None:
    global _log
    _log = log


def last_exchange() -> str:
    return _log.last() if _log is not None else "(no request log)"


def register_created(method: str, path: str, status: int, body: Any) -> None:
    """Remember an account the run created, whoever created it (scenario or fuzzer)."""
    if _create_route is None or not 200 <= status < 300:
        return
    want_method, pattern = _create_route
    if method.upper() != want_method or not pattern.search(path):
        return
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        _registry.add(body["id"])


def on_response(response: httpx.Response) -> None:
    """httpx event hook: log the exchange and register created accounts."""
    response.read()
    if _log is not None:
        _log.record(response)
    if 200 <= response.status_code < 300 and response.request.method == "POST":
        try:
            body = response.json()
        except ValueError:
            return
        register_created(
            response.request.method, response.request.url.path, response.status_code, body
        )
