"""runner: how interrupted test sessions are stopped (the sessions themselves are driven
end to end by tests/test_cli_run.py and tests/test_cleanup_e2e.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from brokercert import catalog, runner

# A stand-in session: counts SIGINTs, leaves on the second (as a session whose first
# interrupt was lost would, with the plugin's handler), or on the first when told.
_SESSION = """
import signal, sys, time
need = int(sys.argv[1])
seen = []
def on_sigint(signum, frame):
    seen.append(signum)
    if len(seen) >= need:
        sys.exit(0)
signal.signal(signal.SIGINT, on_sigint)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def jobs() -> Iterator[list[runner.DialectJob]]:
    made: list[runner.DialectJob] = []
    yield made
    for job in made:
        assert job.process is not None
        if job.process.poll() is None:
            job.process.kill()
        job.process.wait()
        if job.process.stdout is not None:
            job.process.stdout.close()


def _job(
    tmp_path: Path, interrupts_needed: int, made: list[runner.DialectJob]
) -> runner.DialectJob:
    job = runner.DialectJob(
        dialect="alpaca",
        base_url="http://127.0.0.1:9/alpaca",
        catalog=catalog.load("alpaca"),
        progress_file=tmp_path / ".progress",
        log_file=tmp_path / "log",
    )
    job.process = subprocess.Popen(
        [sys.executable, "-c", _SESSION, str(interrupts_needed)], stdout=subprocess.PIPE
    )
    assert job.process.stdout is not None
    made.append(job)
    assert job.process.stdout.readline().strip() == b"ready"
    return job


def test_a_session_that_missed_the_interrupt_gets_a_second_one_before_a_kill(
    tmp_path: Path, jobs: list[runner.DialectJob]
) -> None:
    job = _job(tmp_path, 2, jobs)
    assert job.process is not None
    job.process.send_signal(2)  # the forwarded Ctrl-C, which it "misses"
    started = time.monotonic()
    runner._wait_then_insist([job], 1.0)
    assert job.process.returncode == 0  # left by itself on the second SIGINT, not killed
    assert time.monotonic() - started < 5


def test_a_session_deaf_to_interrupts_is_killed_in_bounded_time(
    tmp_path: Path, jobs: list[runner.DialectJob]
) -> None:
    job = _job(tmp_path, 99, jobs)
    assert job.process is not None
    started = time.monotonic()
    runner._wait_then_insist([job], 0.5)
    assert job.process.returncode == -9
    assert time.monotonic() - started < 5
