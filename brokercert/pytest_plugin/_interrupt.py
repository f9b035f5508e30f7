"""Ctrl-C between exchanges, not in the middle of one.

A Ctrl-C that lands while a create request is in flight would leave an account on the
target that the run never learns about (the server created it; the client dropped the
answer), so it could not be closed. During a suite session the SIGINT handler
therefore lets the exchanges in flight finish, and the created account be
registered, before it raises KeyboardInterrupt. An exchange counts as in flight for
at most the request timeout plus a margin; a timer raises the interrupt after that
in any case, so Ctrl-C always works.

Exchanges are tracked around the suite's httpx clients (:class:`TrackedTransport`)
and around every Schemathesis call (its global ``before_call``/``after_call`` hooks),
and both register created accounts before the exchange ends.
"""

from __future__ import annotations

import _thread
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import httpx

from brokercert.pytest_plugin import _state

# Re-entrant: the SIGINT handler runs in the main thread, possibly while that thread is
# inside begin()/end() holding the lock; a plain Lock would deadlock the session there.
_lock = threading.RLock()
_in_flight: dict[int, float] = {}  # thread id -> when its exchange started
_pending = False
_timer: threading.Timer | None = None
_patience = 12.0


def begin() -> None:
    with _lock:
        _in_flight[threading.get_ident()] = time.monotonic()


def end() -> None:
    """The exchange of this thread is over; deliver a deferred Ctrl-C if it was the last."""
    global _pending
    with _lock:
        _in_flight.pop(threading.get_ident(), None)
        deliver = (
            _pending and threading.current_thread() is threading.main_thread() and not _fresh()
        )
        if deliver:
            _pending = False
            _cancel_timer()
    if deliver:
        raise KeyboardInterrupt


def _fresh() -> bool:
    cutoff = time.monotonic() - _patience
    return any(started > cutoff for started in _in_flight.values())


def _cancel_timer() -> None:
    global _timer
    if _timer is not None:
        _timer.cancel()
        _timer = None


def on_sigint(signum: int, frame: FrameType | None) -> None:
    """SIGINT handler: KeyboardInterrupt now, or once the exchanges in flight are over."""
    global _pending, _timer
    with _lock:
        if not _fresh() or _pending:
            _pending = False
            _cancel_timer()
            deliver_now = True
        else:
            _pending = True
            _timer = threading.Timer(_patience, _thread.interrupt_main)
            _timer.daemon = True
            _timer.start()
            deliver_now = False
    if deliver_now:
        raise KeyboardInterrupt


def install(request_timeout: float) -> None:
    """Take over SIGINT for this session (main thread only) and hook Schemathesis."""
    global _patience
    _patience = request_timeout + 2.0
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
    _hook_schemathesis()


_hooked = False


def _hook_schemathesis() -> None:
    global _hooked
    if _hooked:
        return
    _hooked = True
    import schemathesis

    def before_call(context: Any, case: Any, **kwargs: Any) -> None:
        begin()

    def after_call(context: Any, case: Any, response: Any) -> None:
        try:
            try:
                body = response.json()
            except Exception:
                body = None
            _state.register_created(case.method, case.path, response.status_code, body)
        finally:
            end()

    def after_network_error(context: Any, case: Any, request: Any) -> None:
        end()

    hook: Callable[[Callable[..., None]], Any] = schemathesis.hook
    hook(before_call)
    hook(after_call)
    hook(after_network_error)


class TrackedTransport(httpx.BaseTransport):
    """Marks the exchange in flight and registers a created account before it ends."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        begin()
        try:
            response = self.inner.handle_request(request)
            if request.method == "POST" and 200 <= response.status_code < 300:
                response.read()
                try:
                    body = response.json()
                except ValueError:
                    body = None
                _state.register_created(
                    request.method, request.url.path, response.status_code, body
                )
        finally:
            end()
        return response

    def close(self) -> None:
        self.inner.close()


__all__ = ["TrackedTransport", "begin", "end", "install", "on_sigint"]
