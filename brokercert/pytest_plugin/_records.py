"""Turning pytest outcomes into :class:`TestRecord` s tied to requirement IDs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from brokercert.redact import Redactor
from brokercert.results import Outcome, TestRecord

FAILED_REQS: pytest.StashKey[set[str]] = pytest.StashKey()
_current = threading.local()


def requirement_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for mark in item.iter_markers("requirement"):
        for arg in mark.args:
            if isinstance(arg, str) and arg not in ids:
                ids.append(arg)
    return ids


def record_key(item: pytest.Item) -> str:
    """A unique id per test item. Schemathesis gives every operation's item the same nodeid
    (the operation is only in the item name), so the operation label is appended."""
    label = getattr(item, "operation_label", None)
    if not label or item.nodeid.endswith(f"[{label}]"):  # replayed cases: already in the id
        return item.nodeid
    return f"{item.nodeid}[{label}]"


def set_current_item(item: pytest.Item | None) -> None:
    _current.item = item


def note_failed_requirements(ids: set[str]) -> None:
    """Record which of the running test's requirements failed (fuzzing checks several)."""
    item: pytest.Item | None = getattr(_current, "item", None)
    if item is None:
        return
    item.stash.setdefault(FAILED_REQS, set()).update(ids)


class Collector:
    """Gathers one TestRecord per test item, and streams progress for `brokercert run`."""

    def __init__(
        self, catalog_ids: frozenset[str], redactor: Redactor, progress: Path | None
    ) -> None:
        self.catalog_ids = catalog_ids
        self.redactor = redactor
        self.records: dict[str, TestRecord] = {}
        self._progress = progress.open("a", encoding="utf-8") if progress else None

    def progress(self, event: dict[str, object]) -> None:
        if self._progress is not None:
            self._progress.write(json.dumps(event) + "\n")
            self._progress.flush()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()

    def on_report(self, item: pytest.Item, report: pytest.TestReport) -> None:
        ids = [i for i in requirement_ids(item) if i in self.catalog_ids]
        if not ids:
            return
        outcome: Outcome | None = None
        if report.when == "call":
            outcome = {
                "passed": Outcome.PASSED,
                "failed": Outcome.FAILED,
                "skipped": Outcome.SKIPPED,
            }[report.outcome]
        elif report.when == "setup" and report.outcome != "passed":
            outcome = Outcome.ERROR if report.outcome == "failed" else Outcome.SKIPPED
        elif report.when == "teardown" and report.outcome == "failed":
            previous = self.records.get(record_key(item))
            if previous is not None and previous.outcome is Outcome.PASSED:
                previous.outcome = Outcome.ERROR
                previous.message = self._message(report)
            return
        if outcome is None:
            return
        failed = sorted(item.stash.get(FAILED_REQS, set()) & set(ids))
        key = record_key(item)
        self.records[key] = TestRecord(
            nodeid=key,
            requirements=ids,
            outcome=outcome,
            duration_s=round(report.duration, 3),
            message="" if outcome is Outcome.PASSED else self._message(report),
            failed_requirements=failed if outcome is Outcome.FAILED else [],
            evidence=key,
        )
        self.progress({"event": "test", "nodeid": key, "outcome": outcome.value})

    def _message(self, report: pytest.TestReport) -> str:
        text = report.longreprtext or ""
        # The assertion itself is at the end of pytest's long representation.
        lines = [ln for ln in text.splitlines() if ln.strip()]
        tail = "\n".join(lines[-40:])
        return self.redactor.text(tail)[:6000]
