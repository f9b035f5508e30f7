"""One suite run: a pytest session per dialect, in parallel, then the merged reports.

Each dialect runs in its own pytest process (one core each on a 2-core machine;
Schemathesis spends most of its time generating data, so processes, not threads).
The processes stream progress lines to files this module tails for the live display.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from brokercert import catalog as catalog_mod
from brokercert._paths import suite_root
from brokercert.errors import ExitCode, UserError
from brokercert.results import RunRecord

_PLUGIN_INI = Path(__file__).resolve().parent / "pytest_plugin" / "suite.ini"
# The suite loads exactly the plugins it needs. With autoload on, pytest also marks every
# module of every installed plugin distribution for assertion rewriting (about 400 for
# Schemathesis alone), which costs ~15 s per session wherever bytecode is not cached.
_PLUGINS = ("schemathesis.pytest.plugin", "allure_pytest.plugin", "_hypothesis_pytestplugin")


@dataclass
class DialectJob:
    dialect: str
    base_url: str
    catalog: catalog_mod.Catalog
    progress_file: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    collected: int = 0
    done: int = 0
    failed: int = 0
    finished: bool = False
    interrupted: bool = False  # the session saw a Ctrl-C
    _offset: int = field(default=0, repr=False)

    def poll_progress(self) -> None:
        """Read the progress lines written since the last poll."""
        if not self.progress_file.exists():
            return
        with self.progress_file.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        complete, _, _rest = chunk.rpartition(b"\n")
        if not complete:
            return
        self._offset += len(complete) + 1
        for line in complete.decode("utf-8", "replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            if kind == "collected":
                self.collected = int(event.get("count", 0))
            elif kind == "test":
                self.done += 1
                if event.get("outcome") in ("failed", "error"):
                    self.failed += 1
            elif kind == "finished":
                self.finished = True
            elif kind == "interrupted":
                self.interrupted = True


@dataclass(frozen=True)
class RunOptions:
    depth: str
    run_id: str
    run_dir: Path
    rate_limit: str | None = None
    allow_production: bool = False
    insecure: bool = False
    request_timeout: float = 10.0
    max_time: float = 1800.0
    spec_version: str | None = None
    extra_pytest_args: tuple[str, ...] = ()


def pytest_command(job: DialectJob, options: RunOptions) -> list[str]:
    root = suite_root()
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(root / "conformance"),
        str(root / "scenarios"),
        "-c",
        str(_PLUGIN_INI),
        "--rootdir",
        str(root),
        "--confcutdir",
        str(root),
        *(arg for plugin in _PLUGINS for arg in ("-p", plugin)),
        "--target",
        job.base_url,
        "--dialect",
        job.dialect,
        "--spec-version",
        job.catalog.version,
        "--depth",
        options.depth,
        "--report-dir",
        str(options.run_dir),
        "--run-id",
        options.run_id,
        "--request-timeout",
        str(options.request_timeout),
        "--bc-partial",
        "--bc-progress",
        str(job.progress_file),
    ]
    if options.rate_limit:
        cmd += ["--rate-limit", options.rate_limit]
    if options.allow_production:
        cmd.append("--allow-production")
    if options.insecure:
        cmd.append("--insecure")
    cmd += list(options.extra_pytest_args)
    return cmd


def run_dialects(
    jobs: list[DialectJob],
    options: RunOptions,
    env: dict[str, str],
    on_tick: Callable[[list[DialectJob]], None] | None = None,
) -> list[RunRecord]:
    """Run every job's pytest session concurrently; return their records."""
    if not options.run_dir.is_absolute():
        # Each session runs inside the run folder: a relative path would point elsewhere.
        raise ValueError(f"the run folder must be an absolute path, not {options.run_dir}")
    options.run_dir.mkdir(parents=True, exist_ok=True)
    child_env = {
        **os.environ,
        **env,
        "PYTHONUNBUFFERED": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    for job in jobs:
        job.progress_file.unlink(missing_ok=True)
        with job.log_file.open("wb") as log:
            job.process = subprocess.Popen(
                pytest_command(job, options),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                cwd=str(options.run_dir),
            )
    deadline = time.monotonic() + options.max_time
    try:
        while True:
            running = [j for j in jobs if j.process is not None and j.process.poll() is None]
            for job in jobs:
                job.poll_progress()
            if on_tick is not None:
                on_tick(jobs)
            if not running:
                break
            if time.monotonic() > deadline:
                # Interrupt (not terminate) the sessions, so that each closes the accounts
                # it created and writes what it found; kill whatever is still running after
                # the grace period. The partial records still make a report.
                _interrupt(jobs, _grace(options.max_time))
                raise RunTimedOut(
                    f"the run exceeded --max-time {options.max_time:g}s; the target may have "
                    "stopped answering or be too slow (partial reports were written)",
                    [_read_record_or_empty(job, options) for job in jobs],
                )
            time.sleep(0.2)
    except KeyboardInterrupt:
        # A terminal's Ctrl-C reaches the sessions too (one process group); a SIGINT sent
        # to this process alone does not, so pass it on to any session that has not
        # reported one. Then give them time to close what they created.
        _forward_interrupt(jobs)
        _wait_then_insist(jobs, 20)
        raise
    return [_read_record(job, options) for job in jobs]


class RunTimedOut(UserError):
    """The run hit --max-time (exit 3); ``records`` hold what the stopped sessions found."""

    def __init__(self, message: str, records: list[RunRecord]) -> None:
        super().__init__(message, ExitCode.UNREACHABLE)
        self.records = records


def _grace(max_time: float) -> float:
    """Seconds an interrupted session gets to clean up: a quarter of the run, 5 to 30 s."""
    return min(30.0, max(5.0, max_time / 4))


def _forward_interrupt(jobs: list[DialectJob], patience: float = 3.0) -> None:
    end = time.monotonic() + patience
    while True:
        for job in jobs:
            job.poll_progress()
        waiting = [
            j for j in jobs
            if j.process is not None and j.process.poll() is None and not j.interrupted
        ]
        if not waiting or time.monotonic() > end:
            break
        time.sleep(0.1)
    for job in waiting:
        if job.process is not None:
            job.process.send_signal(signal.SIGINT)


def _interrupt(jobs: list[DialectJob], grace: float) -> None:
    for job in jobs:
        if job.process is not None and job.process.poll() is None:
            job.process.send_signal(signal.SIGINT)
    _wait_then_insist(jobs, grace / 2)


def _read_record_or_empty(job: DialectJob, options: RunOptions) -> RunRecord:
    """The session's record; or, for a session killed before it wrote one, an empty
    record (every requirement not tested) listing the accounts its journal left open."""
    try:
        return _read_record(job, options)
    except (UserError, OSError, ValueError, TypeError):
        pass
    from brokercert import __version__
    from brokercert.cleanup import CleanupRegistry

    journal = options.run_dir / f"created-{job.dialect}.txt"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return RunRecord(
        suite_version=__version__,
        dialect=job.dialect,
        spec_version=job.catalog.version,
        spec_digest=job.catalog.spec_digest,
        target=job.base_url,
        depth=options.depth,
        started_at=now,
        finished_at=now,
        leftover_accounts=CleanupRegistry.from_journal(journal).ids() if journal.exists() else [],
    )


def _wait_then_insist(jobs: list[DialectJob], seconds: float) -> None:
    """Wait for interrupted sessions; one still running after ``seconds`` gets a second
    SIGINT (which the session's handler delivers at once, in flight or not), and is
    killed when it is still running ``seconds`` later."""
    if not _wait(jobs, seconds, kill=False):
        for job in jobs:
            if job.process is not None and job.process.poll() is None:
                job.process.send_signal(signal.SIGINT)
        _wait(jobs, seconds)


def _wait(jobs: list[DialectJob], seconds: float, kill: bool = True) -> bool:
    """Wait up to ``seconds`` for every session; True when all ended in time."""
    ended = True
    end = time.monotonic() + seconds
    for job in jobs:
        if job.process is None:
            continue
        try:
            job.process.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            ended = False
            if kill:
                job.process.kill()
                job.process.wait()  # reaped, so its exit status is known
    return ended


def _read_record(job: DialectJob, options: RunOptions) -> RunRecord:
    path = options.run_dir / f"record-{job.dialect}.json"
    code = job.process.returncode if job.process is not None else None
    if not path.exists():
        tail = _log_tail(job.log_file)
        raise UserError(
            f"{job.dialect}: the test session ended (pytest exit {code}) without results; "
            f"see {job.log_file}{': ' + tail if tail else ''}",
            ExitCode.USAGE if code == 4 else ExitCode.NOT_CONFORMANT,
        )
    from brokercert.results import Outcome, TestRecord

    raw = json.loads(path.read_text(encoding="utf-8"))
    tests = [TestRecord(**{**t, "outcome": Outcome(t["outcome"])}) for t in raw.pop("tests", [])]
    return RunRecord(**raw, tests=tests)


def _log_tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    for line in reversed(lines):
        if "error" in line.lower():
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else ""
