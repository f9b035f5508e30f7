"""Fixtures the suite's tests use: the target, its clients, run data and cleanup."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from brokercert import catalog as catalog_mod
from brokercert.cleanup import CleanupRegistry
from brokercert.datagen import RunData
from brokercert.pytest_plugin import _state
from brokercert.pytest_plugin._interrupt import TrackedTransport
from brokercert.pytest_plugin._settings import SuiteSettings
from brokercert.redact import Redactor
from brokercert.target import Target


@dataclass
class Exchange:
    """One request and its response, kept redacted for failure messages and reports."""

    method: str
    url: str
    status: int
    request_body: str
    response_body: str

    def describe(self) -> str:
        return (
            f"{self.method} {self.url}\n{self.request_body}\n"
            f"-> HTTP {self.status}\n{self.response_body}"
        )


@dataclass
class ExchangeLog:
    """The exchanges of the running test, newest last (bounded)."""

    redactor: Redactor
    items: list[Exchange] = field(default_factory=list)
    keep: int = 6

    def record(self, response: httpx.Response) -> None:
        request = response.request
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = b"<streamed body>"
        # Only the head of a body is kept; redact a margin past the cut so that a secret
        # straddling it is still caught, without decoding 30 MB uploads in full.
        keep = 20000
        req_text = _clip(self.redactor.text(body[: keep + 512].decode("utf-8", "replace"))[:keep])
        try:
            resp_text = response.text[: keep + 512]
        except httpx.ResponseNotRead:
            resp_text = "<not read>"
        self.items.append(
            Exchange(
                method=request.method,
                url=self.redactor.text(str(request.url)),
                status=response.status_code,
                request_body=req_text,
                response_body=_clip(self.redactor.text(resp_text)[:keep]),
            )
        )
        del self.items[: -self.keep]

    def last(self) -> str:
        return self.items[-1].describe() if self.items else "(no request was sent)"

    def describe(self) -> str:
        return "\n\n".join(e.describe() for e in self.items) or "(no request was sent)"


def _clip(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


@pytest.fixture(scope="session")
def suite() -> SuiteSettings:
    """The session's settings; tests of the suite cannot run without --target/--dialect."""
    settings = _state.settings()
    if settings is None:
        raise pytest.UsageError("the suite needs --target URL and --dialect NAME")
    return settings


@pytest.fixture(scope="session")
def dialect(suite: SuiteSettings) -> str:
    return suite.dialect


@pytest.fixture(scope="session")
def catalog(suite: SuiteSettings) -> catalog_mod.Catalog:
    return suite.catalog


@pytest.fixture(scope="session")
def profile(suite: SuiteSettings) -> catalog_mod.Profile:
    return suite.catalog.profile


@pytest.fixture(scope="session")
def target(suite: SuiteSettings) -> Target:
    return suite.target


@pytest.fixture(scope="session")
def run_data(suite: SuiteSettings) -> RunData:
    # Every tax id the run invents is also scrubbed from reports written as free text.
    return RunData(suite.run_id, on_sensitive=_state.redactor().add)


@pytest.fixture(scope="session")
def cleanup() -> CleanupRegistry:
    """Every account the run created; closed when the session ends (also on Ctrl-C)."""
    return _state.cleanup_registry()


@pytest.fixture
def exchanges() -> Iterator[ExchangeLog]:
    log = ExchangeLog(_state.redactor())
    _state.set_exchange_log(log)
    yield log
    _state.set_exchange_log(None)


def _session_client(target: Target, *, auth: bool) -> Iterator[httpx.Client]:
    # Tracked: a Ctrl-C waits until the exchange is over and a created account registered.
    inner = TrackedTransport(httpx.HTTPTransport(verify=not target.insecure, retries=0))
    client = target.client(auth=auth, transport=inner)
    client.event_hooks["response"].append(_state.on_response)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def _shared_client(target: Target) -> Iterator[httpx.Client]:
    yield from _session_client(target, auth=True)


@pytest.fixture(scope="session")
def _shared_anon_client(target: Target) -> Iterator[httpx.Client]:
    yield from _session_client(target, auth=False)


@pytest.fixture
def client(_shared_client: httpx.Client, exchanges: ExchangeLog) -> httpx.Client:
    """Authenticated client; its exchanges are logged for failure messages."""
    return _shared_client


@pytest.fixture
def anon_client(_shared_anon_client: httpx.Client, exchanges: ExchangeLog) -> httpx.Client:
    """Client that sends no credentials."""
    return _shared_anon_client


@pytest.fixture
def new_account(
    client: httpx.Client, profile: catalog_mod.Profile, run_data: RunData, dialect: str
) -> Callable[..., dict[str, Any]]:
    """Factory: create an account through the API and return the response body.

    Keyword arguments are dotted-path overrides of the valid create body. Any 2xx with
    an id will do: the exact create status is the create scenarios' business, and a
    stricter setup would make every scenario fail on that one fault.
    """
    op = profile.operation("create_account")

    def make(**overrides: Any) -> dict[str, Any]:
        body = run_data.create_body(dialect, **overrides)
        response = client.request(op.method, op.path, json=body)
        data: Any = None
        if 200 <= response.status_code < 300:
            try:
                data = response.json()
            except ValueError:
                data = None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise AssertionError(
                f"setup: creating a test account failed (HTTP {response.status_code}, "
                f"expected a 2xx with an id)\n{_state.last_exchange()}"
            )
        return data

    return make
