"""Every account the run created, closed at the end.

A run against someone's sandbox must leave no mess, and one that cannot clean up
must say what it left behind. Tests register each account id as soon as the
create call answers; at the end :meth:`CleanupRegistry.close_all` closes them
through the dialect's documented close operation and returns the ones that could
not be closed, with the reason, for the report.

Ids are also appended to an optional journal file the moment they are added
(one line, flushed), so a run killed half-way can still be cleaned up later with
:meth:`CleanupRegistry.from_journal`. The journal holds ids only: nothing secret.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from brokercert.catalog import Profile

__all__ = ["CleanupRegistry", "CloseFailure", "close_path"]

_ADDED, _DONE = "+", "-"


@dataclass(frozen=True)
class CloseFailure:
    """An account the run created and could not close."""

    account_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.account_id}: {self.reason}"


def close_path(profile: Profile, account_id: str) -> tuple[str, str]:
    """(HTTP method, path) that closes ``account_id`` in this dialect."""
    op = profile.operation(profile.close.operation)
    path = op.path.replace("{" + profile.id_param + "}", quote(account_id, safe=""))
    return op.method, path


def _check_id(account_id: str) -> str:
    if not isinstance(account_id, str) or not account_id or any(c in account_id for c in "\r\n"):
        raise ValueError(f"not an account id: {account_id!r}")
    return account_id


class CleanupRegistry:
    """Thread-safe, ordered set of account ids the run created and has not closed yet."""

    def __init__(self, journal: str | Path | None = None) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, None] = {}
        self.journal = Path(journal) if journal is not None else None

    @classmethod
    def from_journal(cls, path: str | Path) -> CleanupRegistry:
        """Ids a previous (interrupted) run added and did not close; keeps journaling there."""
        registry = cls(path)
        p = Path(path)
        if p.exists():
            text = p.read_text(encoding="utf-8")
            if text and not text.endswith("\n"):
                with p.open("a", encoding="utf-8") as fh:
                    fh.write("\n")  # end a torn last line so new entries start clean
            for line in text.splitlines():
                mark, account_id = line[:1], line[1:].strip()
                if not account_id:
                    continue  # a torn last line from a kill
                if mark == _ADDED:
                    registry._ids[account_id] = None
                elif mark == _DONE:
                    registry._ids.pop(account_id, None)
        return registry

    def _write(self, mark: str, account_id: str) -> None:
        if self.journal is None:
            return
        # Open, append, flush, close: nothing held open, and the line is on disk
        # (in the kernel) before the test goes on.
        with self.journal.open("a", encoding="utf-8") as fh:
            fh.write(f"{mark}{account_id}\n")
            fh.flush()

    def add(self, account_id: str) -> None:
        """Record an account the run created (idempotent)."""
        _check_id(account_id)
        with self._lock:
            if account_id in self._ids:
                return
            self._ids[account_id] = None
            self._write(_ADDED, account_id)

    def forget(self, account_id: str) -> None:
        """Drop an id, e.g. because a test closed the account itself."""
        with self._lock:
            if self._ids.pop(account_id, _MISSING) is not _MISSING:
                self._write(_DONE, account_id)

    def ids(self) -> list[str]:
        """Ids still to close, in the order they were added."""
        with self._lock:
            return list(self._ids)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    def __contains__(self, account_id: object) -> bool:
        with self._lock:
            return account_id in self._ids

    def close_all(
        self,
        client: httpx.Client,
        profile: Profile,
        *,
        workers: int = 4,
        budget: float | None = None,
    ) -> list[CloseFailure]:
        """Close every registered account; return those that stay open, with the reason.

        2xx, the profile's "already closed" statuses (``close.again_status``) and 404
        count as closed, and the id is forgotten. ``client`` must be authenticated
        and rooted at the target's base URL (``Target.client()``); its rate limiter
        paces the calls. ``budget`` bounds the whole cleanup in seconds: ids not
        attempted in time are reported as such.
        """
        pending = self.ids()
        deadline = None if budget is None else time.monotonic() + budget
        done_status = set(profile.close.again_status) | {404}

        def close_one(account_id: str) -> CloseFailure | None:
            if deadline is not None and time.monotonic() > deadline:
                return CloseFailure(account_id, "not attempted: cleanup time budget exhausted")
            method, path = close_path(profile, account_id)
            try:
                response = client.request(method, path)
            except httpx.HTTPError as exc:
                return CloseFailure(account_id, f"{type(exc).__name__}: {exc}"[:200])
            status = response.status_code
            if 200 <= status < 300 or status in done_status:
                self.forget(account_id)
                return None
            return CloseFailure(account_id, f"{method} {path} answered HTTP {status}")

        if not pending:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pending)))) as pool:
            results: Iterable[CloseFailure | None] = list(pool.map(close_one, pending))
        return [r for r in results if r is not None]


_MISSING = object()
