"""Live progress of a run: a rich display on a terminal, a line now and then in CI."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

if TYPE_CHECKING:
    from brokercert.runner import DialectJob


class LiveProgress:
    def __init__(self, jobs: list[DialectJob]) -> None:
        self._console = Console(stderr=True)
        self._interactive = self._console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failing"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._last_line = 0.0
        self._jobs = jobs

    def __enter__(self) -> LiveProgress:
        if self._interactive:
            self._progress.start()
            for job in self._jobs:
                self._tasks[job.dialect] = self._progress.add_task(
                    f"{job.dialect} {job.catalog.version}", total=None, failed=0
                )
        else:
            names = ", ".join(f"{j.dialect} at {j.base_url}" for j in self._jobs)
            print(f"brokercert: testing {names}", file=sys.stderr)
        return self

    def update(self, jobs: list[DialectJob]) -> None:
        if self._interactive:
            for job in jobs:
                self._progress.update(
                    self._tasks[job.dialect],
                    total=job.collected or None,
                    completed=job.done,
                    failed=job.failed,
                )
            return
        now = time.monotonic()
        if now - self._last_line >= 15:
            self._last_line = now
            self._print_line()

    def _print_line(self) -> None:
        state = "; ".join(
            f"{j.dialect} {j.done}/{j.collected or '?'} ({j.failed} failing)" for j in self._jobs
        )
        print(f"brokercert: {state}", file=sys.stderr)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._interactive:
            self._progress.stop()
        elif exc_type is None:  # a CI log ends with where the sessions got to
            self._print_line()
