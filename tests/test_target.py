"""Target: URL checks, production guard, credentials, pacing, 429 handling and the probe."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from brokercert.catalog import Profile
from brokercert.errors import ExitCode, TargetUnreachable, UserError
from brokercert.target import (
    Credentials,
    PoliteTransport,
    RateLimiter,
    Target,
    build_target,
    is_loopback,
    parse_rate,
    probe,
    retry_delay,
)

CREDS = Credentials("key-123", "secret-456")


def make_profile(scheme: str = "basic", **extra: Any) -> Profile:
    """A minimal valid profile, so these tests do not depend on the shipped specs."""
    auth: dict[str, Any] = {"scheme": scheme}
    if scheme == "api_key_headers":
        auth |= {"key_header": "X-API-Key", "secret_header": "X-API-Secret"}
    data: dict[str, Any] = {
        "dialect": "testdialect",
        "version": "1.0.0",
        "title": "Test dialect",
        "auth": auth,
        "id_param": "account_id",
        "operations": {
            "create_account": {"method": "POST", "path": "/v1/accounts", "success": 201},
            "close_account": {
                "method": "POST",
                "path": "/v1/accounts/{account_id}/actions/close",
                "success": 204,
            },
        },
        "limits": [],
        "state_machine": {
            "states": ["SUBMITTED", "ACCOUNT_CLOSED"],
            "initial": ["SUBMITTED"],
            "terminal": ["ACCOUNT_CLOSED"],
            "closed": "ACCOUNT_CLOSED",
            "transitions": {"SUBMITTED": ["ACCOUNT_CLOSED"]},
        },
        "error_envelope": {
            "code_path": "error.code",
            "message_path": "error.message",
            "code_type": "string",
        },
        "close": {"operation": "close_account", "again_status": [409]},
        "production_hosts": ["api.broker.example"],
        "rate_limit": {"requests": 10, "per_seconds": 1, "documented": True, "source": "docs"},
        "pagination": {"style": "cursor", "max_limit": 100, "over_max": ["reject"]},
        "create_initial_status": ["SUBMITTED"],
        "unknown_account_status": [404],
    }
    data |= extra
    return Profile.model_validate(data)


BASIC = make_profile("basic")
HEADERS = make_profile("api_key_headers")


# -- credentials ----------------------------------------------------------------------


def test_credentials_never_show_in_repr() -> None:
    for text in (repr(CREDS), str(CREDS), f"{CREDS}", repr([CREDS])):
        assert "key-123" not in text and "secret-456" not in text
    assert CREDS.key == "key-123"
    token = base64.b64encode(b"key-123:secret-456").decode()
    assert CREDS.secrets() == ("key-123", "secret-456", token)


def test_credentials_from_env() -> None:
    env = {"BROKERCERT_API_KEY": "k", "BROKERCERT_API_SECRET": "s"}
    assert Credentials.from_env(env) == Credentials("k", "s")
    assert Credentials.from_env({}) is None
    with pytest.raises(UserError, match="BROKERCERT_API_SECRET"):
        Credentials.from_env({"BROKERCERT_API_KEY": "k"})
    with pytest.raises(UserError, match="BROKERCERT_API_KEY and BROKERCERT_API_SECRET") as info:
        Credentials.require_env({})
    assert info.value.exit_code == ExitCode.USAGE


# -- build_target ---------------------------------------------------------------------


def test_build_target_normalises_and_defaults() -> None:
    t = build_target("HTTP://127.0.0.1:8000/alpaca/", BASIC, CREDS)
    assert t.base_url == "http://127.0.0.1:8000/alpaca"
    assert t.rate is None and t.is_loopback
    assert t.url("/v1/accounts") == "http://127.0.0.1:8000/alpaca/v1/accounts"
    remote = build_target("https://sandbox.broker.example", BASIC, CREDS)
    assert remote.rate == pytest.approx(8.0)  # 80% of 10/s
    assert remote.rate_limit_spec() == "8/s"
    assert build_target("https://x.example", BASIC, CREDS, rate_limit="90/m").rate_limit_spec() == (
        "90/m"
    )
    assert build_target("http://localhost:1", BASIC, CREDS, rate_limit="2/s").rate == 2.0
    assert "key-123" not in repr(remote) and "key-123" not in str(remote.describe())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/x", "http:// or https://"),
        ("127.0.0.1:8000", "http:// or https://"),
        ("http://", "has no host"),
        ("http://user:pw@host", "must not contain credentials"),
        ("http://host:99999", "not a valid URL"),
        ("http://host/x?y=1", r"without \?query"),
        ("http://ho st/", "whitespace"),
    ],
)
def test_build_target_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        build_target(url, BASIC, CREDS)
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(info.value)


def test_production_guard() -> None:
    with pytest.raises(UserError, match="--allow-production") as info:
        build_target("https://API.broker.example./v1", BASIC, CREDS)
    assert info.value.exit_code == ExitCode.USAGE
    t = build_target("https://api.broker.example", BASIC, CREDS, allow_production=True)
    assert t.allow_production and t.rate == pytest.approx(8.0)
    build_target("https://sandbox.api.broker.example", BASIC, CREDS)  # not production


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("10/s", 10.0), ("600/m", 10.0), ("3600/h", 1.0), ("5", 5.0), (" 2.5 / sec ", 2.5)],
)
def test_parse_rate(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["", "fast", "10/d", "-1/s", "0/s", "1/s/s"])
def test_parse_rate_errors(text: str) -> None:
    with pytest.raises(UserError, match="--rate-limit"):
        parse_rate(text)


def test_is_loopback() -> None:
    loopbacks = ("localhost", "LOCALHOST.", "a.localhost", "127.0.0.1", "127.5.5.5", "::1", "[::1]")
    for host in loopbacks:
        assert is_loopback(host), host
    for host in ("example.com", "10.0.0.1", "0.0.0.0", "localhost.example.com"):
        assert not is_loopback(host), host


# -- auth and the client --------------------------------------------------------------


def test_auth_headers_per_scheme() -> None:
    basic = build_target("http://127.0.0.1:1", BASIC, CREDS)
    token = base64.b64encode(b"key-123:secret-456").decode()
    assert basic.auth_headers() == {"Authorization": f"Basic {token}"}
    keyed = build_target("http://127.0.0.1:1", HEADERS, CREDS)
    assert keyed.auth_headers() == {"X-API-Key": "key-123", "X-API-Secret": "secret-456"}


def test_client_sends_auth_base_path_and_timeouts() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    t = build_target("http://127.0.0.1:9/alpaca", HEADERS, CREDS, timeout=3.0)
    with t.client(transport=httpx.MockTransport(handler)) as c:
        assert c.get("/v1/accounts").status_code == 200
        assert c.timeout == httpx.Timeout(3.0)
        assert not c.follow_redirects
    with t.client(auth=False, transport=httpx.MockTransport(handler)) as c:
        c.get("v1/accounts")
    assert str(seen[0].url) == "http://127.0.0.1:9/alpaca/v1/accounts"
    assert seen[0].headers["X-API-Key"] == "key-123"
    assert seen[0].headers["User-Agent"].startswith("brokercert/")
    assert str(seen[1].url) == "http://127.0.0.1:9/alpaca/v1/accounts"
    assert "X-API-Key" not in seen[1].headers and "X-API-Secret" not in seen[1].headers
    assert seen[0].extensions["timeout"] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}


def test_clients_of_one_target_share_the_limiter() -> None:
    t = build_target("https://sandbox.broker.example", BASIC, CREDS)
    a, b = t.client(), t.client()
    try:
        assert isinstance(a._transport, PoliteTransport)
        assert isinstance(b._transport, PoliteTransport)
        assert a._transport.limiter is b._transport.limiter is t.limiter
        assert t.limiter.rate == pytest.approx(8.0)
    finally:
        a.close()
        b.close()


# -- rate limiter ---------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)


def test_rate_limiter_spaces_requests() -> None:
    ft = FakeTime()
    limiter = RateLimiter(10.0, clock=ft.clock, sleep=ft.sleep)
    waits = [limiter.acquire() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])
    ft.now += 10
    assert limiter.acquire() == 0.0


def test_rate_limiter_burst_and_unlimited() -> None:
    ft = FakeTime()
    limiter = RateLimiter(10.0, burst=3, clock=ft.clock, sleep=ft.sleep)
    assert [limiter.acquire() for _ in range(4)] == pytest.approx([0, 0, 0, 0.1])
    free = RateLimiter(None, clock=ft.clock, sleep=ft.sleep)
    assert [free.acquire() for _ in range(100)] == [0.0] * 100
    free.pause(2.5)
    assert free.acquire() == pytest.approx(2.5)
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_rate_limiter_is_thread_safe() -> None:
    """Concurrent callers each get their own slot: waits are 0, 0.05, ..., distinct."""
    ft = FakeTime()
    limiter = RateLimiter(20.0, clock=ft.clock, sleep=ft.sleep)
    results: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            w = limiter.acquire()
            with lock:
                results.append(round(w, 6))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == [round(i * 0.05, 6) for i in range(200)]


def test_real_clock_pacing_is_polite() -> None:
    limiter = RateLimiter(50.0)
    start = time.monotonic()
    for _ in range(6):
        limiter.acquire()
    assert time.monotonic() - start >= 0.09  # 5 gaps of 20 ms


# -- 429 ------------------------------------------------------------------------------


def test_retry_delay_forms() -> None:
    fixed = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)

    def now() -> datetime:
        return fixed

    assert retry_delay("2", 0) == 2.0
    assert retry_delay("1.5", 3) == 1.5
    assert retry_delay("3600", 0) == 30.0  # capped
    assert retry_delay("3600", 0, cap=5) == 5.0
    http_date = format_datetime(fixed + timedelta(seconds=7), usegmt=True)
    assert retry_delay(http_date, 0, now=now) == pytest.approx(7.0)
    past = format_datetime(fixed - timedelta(seconds=7), usegmt=True)
    assert retry_delay(past, 0, now=now) == 0.0
    assert [retry_delay(None, a) for a in range(3)] == [1.0, 2.0, 4.0]
    assert retry_delay("soon", 1) == 2.0
    assert retry_delay("-3", 2) == 4.0


def _scripted(responses: list[httpx.Response]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen) - 1, len(responses) - 1)]

    return httpx.MockTransport(handler), seen


def _polite_client(
    transport: httpx.BaseTransport, ft: FakeTime, **kw: Any
) -> httpx.Client:
    limiter = RateLimiter(None, clock=ft.clock, sleep=ft.sleep)
    return httpx.Client(
        base_url="http://127.0.0.1:9", transport=PoliteTransport(transport, limiter, **kw)
    )


def test_429_with_retry_after_is_honoured() -> None:
    ft = FakeTime()
    mock, seen = _scripted(
        [httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(201, json={"id": 1})]
    )
    with _polite_client(mock, ft) as c:
        r = c.post("/v1/accounts", json={"a": 1})
    assert r.status_code == 201
    assert len(seen) == 2 and seen[1].content == b'{"a":1}'
    assert ft.slept == [2.0]


def test_429_without_header_backs_off_then_gives_up() -> None:
    ft = FakeTime()
    mock, seen = _scripted([httpx.Response(429)])
    with _polite_client(mock, ft, max_retries=3) as c:
        r = c.get("/v1/accounts")
    assert r.status_code == 429  # returned to the caller after N retries
    assert len(seen) == 4
    assert ft.slept == [1.0, 2.0, 4.0]


def test_429_retry_after_is_capped() -> None:
    ft = FakeTime()
    mock, _ = _scripted([httpx.Response(429, headers={"Retry-After": "86400"})])
    with _polite_client(mock, ft, max_retries=1, retry_after_cap=30.0) as c:
        assert c.get("/").status_code == 429
    assert ft.slept == [30.0]


def test_streamed_bodies_are_not_replayed() -> None:
    ft = FakeTime()
    mock, seen = _scripted([httpx.Response(429), httpx.Response(200)])

    def body() -> Iterator[bytes]:
        yield b"x"

    with _polite_client(mock, ft) as c:
        assert c.post("/", content=body()).status_code == 429
    assert len(seen) == 1


def test_target_client_handles_429_through_its_limiter() -> None:
    mock, seen = _scripted([httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200)])
    t = build_target("http://127.0.0.1:9", BASIC, CREDS)
    with t.client(transport=mock) as c:
        assert c.get("/v1/accounts").status_code == 200
    assert len(seen) == 2
    mock, seen = _scripted([httpx.Response(429, headers={"Retry-After": "0"})])
    with t.client(transport=mock, max_retries=0) as c:
        assert c.get("/v1/accounts").status_code == 429
    assert len(seen) == 1


# -- probe against loopback servers ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """A TCP server on loopback whose per-connection behaviour the test chooses."""
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def start(behaviour: Callable[[socket.socket], None]) -> int:
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        lsock.settimeout(0.1)
        listeners.append(lsock)

        def loop() -> None:
            while not stop.is_set():
                try:
                    conn, _ = lsock.accept()
                except OSError:
                    continue
                with conn:
                    behaviour(conn)

        th = threading.Thread(target=loop, daemon=True)
        th.start()
        threads.append(th)
        port: int = lsock.getsockname()[1]
        return port

    try:
        yield start
    finally:
        stop.set()
        for th in threads:
            th.join(5)
        for lsock in listeners:
            lsock.close()


def _target(port: int, scheme: str = "http") -> Target:
    return build_target(f"{scheme}://127.0.0.1:{port}/alpaca", BASIC, CREDS)


def test_probe_any_http_answer_is_reachable(http_server: int) -> None:
    assert probe(_target(http_server)) == 401


def test_probe_connection_refused() -> None:
    start = time.monotonic()
    with pytest.raises(TargetUnreachable, match="connection refused") as info:
        probe(_target(_free_port()))
    assert info.value.exit_code == ExitCode.UNREACHABLE
    assert "\n" not in str(info.value)
    assert time.monotonic() - start < 5


def test_probe_not_http(raw_server: Callable[[Callable[[socket.socket], None]], int]) -> None:
    def garbage(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 garbage\r\n\r\n")

    with pytest.raises(TargetUnreachable, match="does not speak HTTP"):
        probe(_target(raw_server(garbage)))


def test_probe_silent_server_times_out(
    raw_server: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    release = threading.Event()

    def silent(conn: socket.socket) -> None:
        release.wait(3)

    port = raw_server(silent)
    start = time.monotonic()
    try:
        with pytest.raises(TargetUnreachable, match=r"did not answer within 0\.5 s"):
            probe(_target(port), timeout=0.5)
    finally:
        release.set()
    assert time.monotonic() - start < 2


def test_probe_tls_failure_suggests_insecure(http_server: int) -> None:
    with pytest.raises(TargetUnreachable, match=r"TLS handshake .* --insecure"):
        probe(_target(http_server, "https"))


def test_probe_dns_failure_and_hard_bound() -> None:
    """DNS is simulated (no network); a hung resolver is cut off by the overall bound."""

    def no_dns(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from exc

    t = build_target("https://nowhere.invalid", BASIC, CREDS)
    with pytest.raises(TargetUnreachable, match=r"cannot resolve host 'nowhere\.invalid'"):
        probe(t, transport=httpx.MockTransport(no_dns))

    release = threading.Event()

    def hang(request: httpx.Request) -> httpx.Response:
        release.wait(5)
        return httpx.Response(200)

    start = time.monotonic()
    try:
        with pytest.raises(TargetUnreachable, match="did not answer"):
            probe(t, timeout=0.2, transport=httpx.MockTransport(hang))
    finally:
        release.set()
    assert time.monotonic() - start < 2


def test_probe_tls_error_classification_without_network() -> None:
    def bad_cert(request: httpx.Request) -> httpx.Response:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed")
        except ssl.SSLError as exc:
            raise httpx.ConnectError(str(exc)) from exc

    t = build_target("https://sandbox.broker.example", BASIC, CREDS)
    with pytest.raises(TargetUnreachable, match=r"self-signed.*--insecure"):
        probe(t, transport=httpx.MockTransport(bad_cert))
