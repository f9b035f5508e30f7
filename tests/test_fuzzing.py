"""fuzzing: check -> requirement mapping, the error-envelope check, and the HTTP session
Schemathesis sends the generated cases with (429 waited out, other errors not retried)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from schemathesis.core.failures import Failure, FailureGroup

from brokercert import catalog, fuzzing
from brokercert.target import Credentials, build_target

ALPACA = catalog.load("alpaca").profile
BUILDMARKETS = catalog.load("buildmarkets").profile


# -- the error envelope --------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "good"),
    [
        (ALPACA, {"code": 40010000, "message": "bad request"}),
        (BUILDMARKETS, {"error": {"code": "VALIDATION_ERROR", "message": "bad", "details": []}}),
    ],
    ids=["alpaca", "buildmarkets"],
)
def test_a_4xx_in_the_dialect_envelope_passes_and_others_do_not(
    profile: Any, good: dict[str, Any]
) -> None:
    assert fuzzing.envelope_problem(profile, 422, json.dumps(good).encode()) is None
    assert fuzzing.envelope_problem(profile, 422, b"<html>bad</html>") is not None
    assert fuzzing.envelope_problem(profile, 422, b'{"detail": "bad"}') is not None
    # not an error: nothing to judge
    assert fuzzing.envelope_problem(profile, 200, b"<html>ok</html>") is None


def test_a_wrongly_typed_code_is_an_envelope_problem() -> None:
    body = json.dumps({"code": "40010000", "message": "bad request"}).encode()
    problem = fuzzing.envelope_problem(ALPACA, 400, body)
    assert problem is not None and "code" in problem


# -- which requirements a Schemathesis exception fails -----------------------------


def _failure(*checks: str) -> Failure:
    kind = type("Kind", (Failure,), {"__slots__": (), "checks": checks})
    failure: Failure = kind(operation="GET /v1/accounts", message="m")
    return failure


def test_each_failing_check_fails_its_own_requirement_only() -> None:
    group = FailureGroup([_failure("status_code_conformance"), _failure("ignored_auth")])
    assert fuzzing.failed_requirements("alpaca", group) == {"GEN-SCHEMA-001", "GEN-AUTH-001"}


def test_the_envelope_check_fails_the_dialect_requirement() -> None:
    group = FailureGroup([_failure(fuzzing.ENVELOPE_CHECK)])
    assert fuzzing.failed_requirements("buildmarkets", group) == {"BM-ERR-001"}
    assert fuzzing.failed_requirements("alpaca", group) == {"ALP-ERR-001"}


def test_a_transport_failure_without_a_check_is_a_server_failure() -> None:
    assert fuzzing.failed_requirements("alpaca", _failure()) == {"GEN-SRV-001"}


def test_a_harness_error_names_no_requirement() -> None:
    # the verdict then implicates every requirement the test carries
    assert fuzzing.failed_requirements("alpaca", RuntimeError("boom")) == set()


def test_every_enabled_check_maps_to_a_catalogue_requirement() -> None:
    for dialect in ("alpaca", "buildmarkets"):
        ids = catalog.load(dialect).ids
        for check in fuzzing.CHECK_REQUIREMENTS:
            enabled = fuzzing.AUTH_ONCE_CHECK if check == "ignored_auth" else check
            assert enabled in fuzzing.ENABLED_CHECKS
            assert fuzzing.CHECK_REQUIREMENTS[check] in ids
        assert fuzzing.ENVELOPE_REQUIREMENTS[dialect] in ids


# -- the session: 429 waited out ---------------------------------------------------


class _Script(BaseHTTPRequestHandler):
    """Answers from the server's ``script`` (status, Retry-After) in order, then 200."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        server: Any = self.server
        server.seen.append((time.monotonic(), self.command))
        status, retry_after = server.script.pop(0) if server.script else (200, None)
        body = b'{"ok": true}'
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Script)
    server.script, server.seen = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _session(port: int, **settings: Any) -> requests.Session:
    target = build_target(f"http://127.0.0.1:{port}/alpaca", ALPACA, Credentials("k", "s"))
    if settings:
        object.__setattr__(target, "retry_after_cap", settings["cap"])
    return fuzzing.keepalive_session(target)  # type: ignore[no-any-return]


def test_a_429_is_retried_after_the_delay_the_server_asks(scripted: Any) -> None:
    scripted.script = [(429, "0.3"), (429, "0.3")]
    port = scripted.server_address[1]
    response = _session(port).post(f"http://127.0.0.1:{port}/v1/accounts", json={"a": 1})
    assert response.status_code == 200
    times = [t for t, _ in scripted.seen]
    assert [m for _, m in scripted.seen] == ["POST"] * 3  # a 429 was not processed: resend
    assert times[1] - times[0] >= 0.27 and times[2] - times[1] >= 0.27


def test_a_429_storm_ends_with_the_last_429_not_an_exception(scripted: Any) -> None:
    scripted.script = [(429, "0")] * 10
    port = scripted.server_address[1]
    response = _session(port).get(f"http://127.0.0.1:{port}/v1/accounts")
    assert response.status_code == 429
    assert len(scripted.seen) == 4  # the first try and three retries


def test_retry_after_is_capped(scripted: Any) -> None:
    scripted.script = [(429, "3600")]
    port = scripted.server_address[1]
    started = time.monotonic()
    response = _session(port, cap=0.2).get(f"http://127.0.0.1:{port}/v1/accounts")
    assert response.status_code == 200
    assert time.monotonic() - started < 5


def test_other_statuses_are_findings_not_retried(scripted: Any) -> None:
    scripted.script = [(503, "0"), (500, None)]
    port = scripted.server_address[1]
    assert _session(port).get(f"http://127.0.0.1:{port}/x").status_code == 503
    assert len(scripted.seen) == 1


def test_a_refused_connection_is_not_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        _session(port).get(f"http://127.0.0.1:{port}/v1/accounts", timeout=2)
    assert time.monotonic() - started < 2
