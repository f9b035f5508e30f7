"""Misbehaving HTTP servers on loopback, the hostile cases, and a runner of the real CLI.

A :class:`HostileServer` sits in front of a real upstream (the reference server) like
a half-broken staging deployment: each request is either forwarded to the upstream
or answered with the chosen misbehaviour (see :data:`BEHAVIOURS`). Which requests
misbehave is set with ``spare``:

- ``"none"``: every request, the suite's reachability probe included;
- ``"list"``: all but ``GET .../v1/accounts`` (the probe passes, the run goes on
  against a server that fails everywhere else);
- ``"burst"``: requests number ``burst_start`` to ``burst_start + burst_len - 1``;
- ``"polite_storm"``: three in four of the first ``storm_len`` requests of the suite's
  own client (the one that honours 429), so that each goes through on its third retry.

:data:`CASES` are the hostile targets the tests and benchmarks/reliability.py run the
CLI against, each with the exit codes that count as a clear verdict for it.

Everything binds 127.0.0.x; nothing leaves the machine. Servers are context managers
and always stop, even with a handler blocked in a slow answer.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "BEHAVIOURS",
    "CASES",
    "Case",
    "CaseResult",
    "CliResult",
    "HostileServer",
    "Seen",
    "brokercert_command",
    "closed_port",
    "report_problems",
    "run_case",
    "run_cli",
    "self_signed_context",
    "served",
]

HUGE_BYTES = 50 * 1024 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host",
               "proxy-connection", "content-length"}
_NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Seen:
    """One request as the server received it, and whether it got the misbehaviour."""

    index: int
    method: str
    path: str
    headers: dict[str, str]
    digest: str  # of the body: a retry of a request has the same method, path and digest
    at: float  # time.monotonic() on arrival
    hostile: bool

    @property
    def signature(self) -> tuple[str, str, str]:
        return (self.method, self.path, self.digest)

    @property
    def from_brokercert(self) -> bool:
        """Sent by the suite's own (polite) client rather than by Schemathesis."""
        return self.headers.get("User-Agent", "").startswith("brokercert/")


# -- behaviours --------------------------------------------------------------------------

Behaviour = Callable[["_Handler", int], None]


def _send(handler: _Handler, status: int, body: bytes, ctype: str | None,
          extra: Mapping[str, str] | None = None) -> None:
    handler.server.count(status)
    handler.send_response(status)
    if ctype is not None:
        handler.send_header("Content-Type", ctype)
    for name, value in (extra or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def _hang(handler: _Handler, index: int) -> None:
    """Never answer (until the server stops)."""
    handler.server.stopping.wait(handler.server.params.get("hang_for", 120.0))


def _slow(handler: _Handler, index: int) -> None:
    """Answer correctly (from the upstream), but only after ``delay`` seconds."""
    if handler.server.stopping.wait(handler.server.params.get("delay", 3.0)):
        return
    handler.forward()


def _reset(handler: _Handler, index: int) -> None:
    """Close the connection with a TCP RST instead of answering."""
    sock = handler.connection
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    with suppress(OSError):
        sock.close()


def _not_http(handler: _Handler, index: int) -> None:
    """Bytes that are not an HTTP response (an SSH banner), then close."""
    handler.close_connection = True
    handler.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http\r\n\r\n")


def _html_502(handler: _Handler, index: int) -> None:
    _send(handler, 502, _NGINX_502, "text/html")


def _non_json(handler: _Handler, index: int) -> None:
    _send(handler, 200, b"OK", "text/plain; charset=utf-8")


def _broken_json(handler: _Handler, index: int) -> None:
    _send(handler, 200, b'{"id": "acc_1", "status": ', "application/json")


def _empty(handler: _Handler, index: int) -> None:
    _send(handler, 200, b"", "application/json")


_HUGE: list[bytes] = []


def _huge(handler: _Handler, index: int) -> None:
    """A 50 MB JSON document."""
    if not _HUGE:
        _HUGE.append(b'{"padding":"' + b"a" * (HUGE_BYTES - 14) + b'"}')
    _send(handler, 200, _HUGE[0], "application/json")


def _redirect(handler: _Handler, index: int) -> None:
    """307 to the same path on another host (``redirect_to``)."""
    where = handler.server.params["redirect_to"].rstrip("/") + handler.path
    _send(handler, 307, b"", None, {"Location": where})


def _429(handler: _Handler, index: int) -> None:
    extra = {}
    retry_after = handler.server.params.get("retry_after")
    if retry_after is not None:
        extra["Retry-After"] = str(retry_after)
    body = json.dumps({"code": 42900000, "message": "too many requests"}).encode()
    _send(handler, 429, body, "application/json", extra)


def _503(handler: _Handler, index: int) -> None:
    body = json.dumps({"code": 50300000, "message": "service unavailable"}).encode()
    _send(handler, 503, body, "application/json")


BEHAVIOURS: dict[str, Behaviour] = {
    "hang": _hang,
    "slow": _slow,
    "reset": _reset,
    "not_http": _not_http,
    "html_502": _html_502,
    "non_json": _non_json,
    "broken_json": _broken_json,
    "empty": _empty,
    "huge": _huge,
    "redirect": _redirect,
    "429": _429,
    "503": _503,
    "ok": lambda handler, index: handler.forward(),
}


# -- the server ----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()  # in this thread; a client refusing it ends here
        super().setup()

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        index, hostile = self.server.record(self)
        if hostile:
            self.server.behaviour(self, index)
        else:
            self.forward()
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

    def forward(self) -> None:
        """Pass the request to the upstream and its answer back."""
        up = urlsplit(self.server.upstream)
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            conn.request(self.command, self.path, body=self.body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.server.count(resp.status)
        self.send_response(resp.status)
        for name, value in resp.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() not in ("date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], behaviour: Behaviour, upstream: str,
                 spare: str, params: dict[str, Any], tls: ssl.SSLContext | None) -> None:
        super().__init__(address, _Handler)
        self.behaviour = behaviour
        self.upstream = upstream
        self.spare = spare
        self.params = params
        self.tls = tls
        self.stopping = threading.Event()
        self.seen: list[Seen] = []
        self.statuses: Counter[int] = Counter()  # of the answers sent
        self._lock = threading.Lock()

    def count(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def record(self, handler: _Handler) -> tuple[int, bool]:
        """Log the request; decide (under the lock, so in arrival order) if it misbehaves."""
        now = time.monotonic()
        headers = dict(handler.headers)
        digest = hashlib.sha256(handler.body).hexdigest()[:16]
        with self._lock:
            index = len(self.seen)
            polite = sum(1 for s in self.seen if s.from_brokercert)
            seen = Seen(index, handler.command, handler.path, headers, digest, now, False)
            hostile = self._misbehaves(index, seen, polite)
            self.seen.append(Seen(index, handler.command, handler.path, headers, digest, now,
                                  hostile))
        return index, hostile

    def _misbehaves(self, index: int, seen: Seen, polite: int) -> bool:
        if self.spare == "list":
            path = urlsplit(seen.path).path.rstrip("/")
            return not (seen.method == "GET" and path.endswith("/v1/accounts"))
        if self.spare == "burst":
            start = int(self.params.get("burst_start", 1))
            return start <= index < start + int(self.params.get("burst_len", 20))
        if self.spare == "polite_storm":
            # Aimed at the suite's own client (Schemathesis does not retry): its requests
            # 1..storm_len are answered three times in four, so that every request goes
            # through when retried three times, after the wait the server asked for.
            if not seen.from_brokercert:
                return False
            return 1 <= polite <= int(self.params.get("storm_len", 24)) and (polite - 1) % 4 != 3
        return True

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # wrapped here (handshake deferred), so that the server closes the TLS socket
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or hang up are the point of these servers


class HostileServer:
    """A misbehaving server on ``host`` (a loopback address) and a free port.

    ``url`` is its root; ``base_url(dialect)`` the base URL to hand to ``--target``.
    """

    def __init__(self, behaviour: str, upstream: str, *, spare: str = "none",
                 host: str = "127.0.0.1", tls: ssl.SSLContext | None = None,
                 **params: Any) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.name = behaviour
        self._server = _Server((host, 0), BEHAVIOURS[behaviour], upstream.rstrip("/"), spare,
                               params, tls)
        self.port: int = self._server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"hostile-{behaviour}-{self.port}", daemon=True)
        self._thread.start()

    def base_url(self, dialect: str) -> str:
        return f"{self.url}/{dialect}"

    @property
    def seen(self) -> list[Seen]:
        with self._server._lock:
            return list(self._server.seen)

    @property
    def statuses(self) -> Counter[int]:
        """Status codes of the answers sent so far (forwarded or misbehaving)."""
        with self._server._lock:
            return Counter(self._server.statuses)

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound and released; the kernel will not hand it out soon)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


def self_signed_context(tmp: Path) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 that no client trusts."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


# -- running the CLI ---------------------------------------------------------------------


def brokercert_command() -> list[str]:
    """The installed console script of the running interpreter, else the module."""
    script = Path(sys.executable).parent / "brokercert"
    if script.exists():
        return [str(script)]
    found = shutil.which("brokercert")
    if found:
        return [found]
    return [sys.executable, "-c", "from brokercert.cli import main; main()"]


@dataclass
class CliResult:
    args: list[str]
    code: int
    seconds: float
    stdout: str
    stderr: str
    report_dir: Path
    run_dirs: list[Path] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def run_dir(self) -> Path | None:
        return self.run_dirs[0] if self.run_dirs else None

    def describe(self) -> str:
        return (f"brokercert {' '.join(self.args)}\nexit {self.code} after {self.seconds:.1f}s\n"
                f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}")


def run_cli(args: Sequence[str], report_dir: Path, *, key: str | None, secret: str | None,
            timeout: float = 240.0, extra_env: Mapping[str, str] | None = None,
            cwd: Path | None = None) -> CliResult:
    """Run ``brokercert ARGS`` in its own process group; kill the group if it overruns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERCERT_")}
    env.update({"PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200"})
    if key is not None:
        env["BROKERCERT_API_KEY"] = key
    if secret is not None:
        env["BROKERCERT_API_SECRET"] = secret
    env.update(extra_env or {})
    report_dir.mkdir(parents=True, exist_ok=True)
    argv = [*brokercert_command(), *args]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env, cwd=str(cwd or report_dir),
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += b"\n[test harness: killed after the timeout]"
    seconds = time.monotonic() - start
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # leave no grandchild behind
    runs = sorted(p for p in report_dir.iterdir() if p.is_dir())
    return CliResult(list(args), proc.returncode, seconds, out.decode("utf-8", "replace"),
                     err.decode("utf-8", "replace"), report_dir, runs)


def report_problems(run_dir: Path, *, html: bool = False) -> list[str]:
    """What is missing or broken in a run's reports (empty list: complete)."""
    problems = []
    cert = run_dir / "certification.json"
    try:
        data = json.loads(cert.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"certification.json unreadable: {exc}"]
    if not isinstance(data, dict) or "results" not in data:
        problems.append("certification.json has no results")
    summary = run_dir / "summary.md"
    if not summary.is_file() or not summary.read_text(encoding="utf-8").strip():
        problems.append("summary.md missing or empty")
    if not any(run_dir.glob("junit*.xml")):
        problems.append("no junit xml")
    results = run_dir / "allure-results"
    if not results.is_dir() or not any(results.glob("*-result.json")):
        problems.append("allure-results missing or empty")
    else:
        for path in results.glob("*.json"):
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                problems.append(f"{path.name} is not JSON")
    if html:
        pages = list(run_dir.rglob("*.html"))
        if not pages:
            problems.append("no HTML report")
    return problems


# -- the reference server as a process ---------------------------------------------------


@dataclass
class Served:
    """A `brokercert serve` process; ``url`` is its root (``/alpaca``, ``/buildmarkets`` below)."""

    proc: subprocess.Popen[str]
    url: str

    def rss(self, field_name: str = "VmRSS") -> int:
        """Resident memory in bytes (or the peak, with ``VmHWM``), from /proc."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field_name)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@contextmanager
def served(db: Path, key: str, secret: str, *args: str) -> Iterator[Served]:
    """Run `brokercert serve --port 0 --db DB` with these credentials; always stopped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERCERT_")}
    env.update({"BROKERCERT_API_KEY": key, "BROKERCERT_API_SECRET": secret,
                "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(
        [*brokercert_command(), "serve", "--port", "0", "--db", str(db), "--kyc-delay", "0",
         *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        text=True, env=env, start_new_session=True,
    )
    reader: threading.Thread | None = None
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"https?://[0-9.]+:\d+", first)
        if match is None:
            raise RuntimeError(f"brokercert serve did not start: {first!r}")
        # keep reading its output so that it never blocks on a full pipe
        reader = threading.Thread(target=proc.stdout.read, daemon=True)
        reader.start()
        yield Served(proc, match.group(0))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if reader is not None:
            reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


# -- the hostile cases -------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile target and what a clear answer to it is."""

    id: str
    behaviour: str | None  # None: a closed port
    expect: frozenset[int]  # acceptable exit codes
    spare: str = "none"
    params: tuple[tuple[str, Any], ...] = ()
    dialect: str = "buildmarkets"
    max_time: float = 90.0
    request_timeout: float = 2.0
    hint: str = ""  # a fragment of the one error line (exit 3 cases)
    tls: bool = False
    html: bool = False
    redirect: bool = False
    reports: bool = True  # a run that got past the probe must leave complete reports

    @property
    def at_probe(self) -> bool:
        """Refused at the reachability probe (exit 3 in seconds, nothing written)."""
        return self.expect == frozenset({3}) and not self.reports

    @property
    def bound(self) -> float:
        """Seconds the whole CLI may take: the probe bound, or --max-time plus the
        interrupted sessions' grace, start-up and report writing."""
        if self.at_probe:
            return 25.0
        return self.max_time + min(30.0, max(5.0, self.max_time / 4)) + 60.0


def _case(id: str, behaviour: str | None, expect: set[int], **kw: Any) -> Case:
    params = tuple(sorted(kw.pop("params", {}).items()))
    return Case(id, behaviour, frozenset(expect), params=params, **kw)


CASES: list[Case] = [
    # Refused at the probe: exit 3 and one line saying why.
    _case("closed_port", None, {3}, hint="connection refused", reports=False),
    _case("hang", "hang", {3}, hint="did not answer", reports=False),
    _case("connection_reset", "reset", {3}, hint="reset", reports=False),
    _case("not_http", "not_http", {3}, hint="does not speak HTTP", reports=False),
    _case("tls_self_signed", "ok", {3}, tls=True, hint="--insecure", reports=False),
    # Past the probe, then broken: a verdict (not conformant) and complete reports.
    _case("reset_after_probe", "reset", {1}, spare="list"),
    _case("html_502_pages", "html_502", {1}, html=True),
    _case("non_json_bodies", "non_json", {1}, spare="list"),
    _case("empty_bodies", "empty", {1}, spare="list"),
    _case("huge_bodies_50mb", "huge", {1}, spare="burst",
          params={"burst_start": 1, "burst_len": 12}),
    _case("redirect_to_other_host", "redirect", {1}, redirect=True),
    _case("5xx_burst", "503", {1}, spare="burst", params={"burst_start": 1, "burst_len": 30}),
    _case("slow_burst", "slow", {1}, spare="burst", request_timeout=1.0,
          params={"burst_start": 1, "burst_len": 6, "delay": 3.0}),
    # The suite's own client rides out a 429 storm by waiting as told (verdict of the
    # upstream: 0 or 1); Schemathesis is not aimed at.
    _case("429_storm_retry_after", "429", {0, 1}, spare="polite_storm",
          params={"storm_len": 16, "retry_after": 1}),
    _case("429_storm_no_retry_after", "429", {0, 1}, spare="polite_storm",
          params={"storm_len": 8}),
    # Answers slower than --request-timeout after the probe, for ever: --max-time ends
    # the run with exit 3, and the reports of what was done are still written.
    _case("slow_forever", "slow", {3}, spare="list", request_timeout=1.0, max_time=25.0,
          hint="--max-time", params={"delay": 2.0}),
]


@dataclass
class CaseResult:
    case: Case
    cli: CliResult
    seen: list[Seen]
    redirected: list[Seen]  # requests that reached the host the redirects pointed to


def run_case(case: Case, upstream: str, work: Path, *, key: str, secret: str) -> CaseResult:
    """Start the case's server in front of ``upstream``, run the CLI against it, stop it."""
    reports = work / case.id
    args = ["--depth", "quick", "--request-timeout", f"{case.request_timeout:g}",
            "--max-time", f"{case.max_time:g}", "--report-dir", str(reports)]
    if not case.html:
        args.append("--no-html")
    if case.behaviour is None:
        url = f"http://127.0.0.1:{closed_port()}/{case.dialect}"
        cli = run_cli(["run", "--target", url, "--dialect", case.dialect, *args], reports,
                      key=key, secret=secret)
        return CaseResult(case, cli, [], [])
    params = dict(case.params)
    capture = HostileServer("503", upstream, host="127.0.0.2") if case.redirect else None
    try:
        if capture is not None:
            params["redirect_to"] = capture.url
        tls = self_signed_context(work) if case.tls else None
        with HostileServer(case.behaviour, upstream, spare=case.spare, tls=tls,
                           **params) as server:
            cli = run_cli(["run", "--target", server.base_url(case.dialect), "--dialect",
                           case.dialect, *args], reports, key=key, secret=secret,
                          timeout=case.bound + 60)
            seen = server.seen
    finally:
        if capture is not None:
            capture.stop()
    return CaseResult(case, cli, seen, capture.seen if capture is not None else [])
