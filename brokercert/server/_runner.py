"""Running the app: in the foreground (``brokercert serve``) or in a thread (tests, ``run``)."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from types import TracebackType

import uvicorn

from brokercert.server._app import create_app
from brokercert.server._config import DEV_KEY, DEV_SECRET, DIALECTS, ServerConfig


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # protocol says TCP; with Nagle on, every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, except that a SIGINT/SIGTERM that stopped it cleanly is not
    raised again afterwards: the process then exits 0 instead of dying of the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _uvicorn(config: ServerConfig) -> uvicorn.Server:
    app = create_app(config)
    return _Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                       timeout_graceful_shutdown=5, server_header=False)
    )


def banner(config: ServerConfig, url: str) -> list[str]:
    """One line per dialect: base URL and, for the dev defaults only, the credentials."""
    lines = []
    for dialect in DIALECTS:
        base = f"{url}/{dialect}"
        if config.dev_credentials:
            creds = (f"HTTP Basic {DEV_KEY}:{DEV_SECRET}" if dialect == "alpaca"
                     else f"X-API-Key: {DEV_KEY}, X-API-Secret: {DEV_SECRET}")
        else:
            creds = "credentials from --key/--secret or BROKERCERT_API_KEY/_SECRET"
        lines.append(f"{dialect:<13} {base}  ({creds})")
    return lines


def serve(config: ServerConfig, announce: Callable[[str], None] = print) -> None:
    """Serve in the foreground until SIGINT or SIGTERM (uvicorn shuts down cleanly on both)."""
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    server = _uvicorn(config)
    url = _url(config.host, port)
    announce(f"brokercert reference server on {url}")
    for line in banner(config, url):
        announce(line)
    if config.faults:
        announce(f"faults on: {', '.join(sorted(config.faults))}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    announce("brokercert reference server stopped")


class RunningServer:
    """A server running in a background thread; a context manager that stops it."""

    def __init__(self, config: ServerConfig, timeout: float = 15.0) -> None:
        self.config = config
        self._sock = _bind(config.host, config.port)
        self.port: int = self._sock.getsockname()[1]
        self.url = _url(config.host, self.port)
        self._server = _uvicorn(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]},
            name=f"brokercert-server-{self.port}", daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the reference server did not start")
            time.sleep(0.01)

    def base_url(self, dialect: str) -> str:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}")
        return f"{self.url}/{dialect}"

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_in_thread(config: ServerConfig | None = None) -> RunningServer:
    """Start a server on 127.0.0.1 and a free port; returns once it answers requests."""
    config = replace(config or ServerConfig(), host="127.0.0.1", port=0)
    return RunningServer(config)
