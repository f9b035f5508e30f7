"""Shared pieces of the suite benchmarks (run_wall, throughput, scaling, profile_run).

Every measured command runs as its own process group, is timed from start to exit (wall)
and charged with the CPU it and its children used (``wait4``). Next to each figure the
benchmarks record the machine's load: the CPU time every other process used during the
measurement, since other work on a 2-core machine changes wall times by 2x and more.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PYTHON = sys.executable
KEY, SECRET = "bench-key-0123456789", "bench-secret-0123456789"
# Case store policies (brokercert.case_cache.cache_policy): generate and store, or reuse.
COLD = {"BROKERCERT_CASE_CACHE": "refresh"}
WARM = {"BROKERCERT_CASE_CACHE": "1000000"}
NO_STORE = {"BROKERCERT_CASE_CACHE": "off"}
SPEC_VERSIONS = {"alpaca": "1.1.1", "buildmarkets": "1.0.0"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot."""
    with open("/proc/stat", "rb") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    """One command: wall seconds, CPU seconds of it and its children, exit code, output."""

    wall_s: float
    cpu_s: float
    exit_code: int
    other_cpu_s: float  # CPU every other process on the machine used meanwhile
    loadavg_before: float
    output: str = field(repr=False, default="")

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("output")
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in data.items()}


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 7200.0, also: list[int] | None = None,
        watch: Callable[[float], None] | None = None) -> Measured:
    """Run ``cmd`` to its end; ``also``: pids whose CPU is ours too (e.g. a target server);
    ``watch(elapsed)`` is called every 20 ms while it runs."""
    full_env = {**os.environ, **(env or {})}
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out:
        also_before = {pid: process_cpu(pid) or 0.0 for pid in also or []}
        busy0 = _busy_seconds()
        t0 = time.monotonic()
        popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env,
                                 cwd=str(cwd or ROOT), start_new_session=True)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
            if watch is not None:
                watch(time.monotonic() - t0)
            time.sleep(0.02)
        wall = time.monotonic() - t0
        busy = _busy_seconds() - busy0
        popen.returncode = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)  # nothing may linger
        cpu = usage.ru_utime + usage.ru_stime
        also_cpu = sum((process_cpu(p) or 0.0) - c for p, c in also_before.items())
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Measured(wall, cpu, popen.returncode, max(0.0, busy - cpu - also_cpu), load, text)


class CountingServer:
    """The reference server in its own process, counting requests (_counting_server.py)."""

    def __init__(self, workdir: Path) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="srv-", dir=workdir))
        self._log = (self._dir / "server.log").open("wb")
        self.popen = subprocess.Popen(
            [PYTHON, str(BENCH / "_counting_server.py"), "--db", str(self._dir / "db.sqlite3"),
             "--key", KEY, "--secret", SECRET],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(ROOT),
        )
        self.url = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.url:
            text = (self._dir / "server.log").read_text(errors="replace")
            found = re.search(r"^URL (\S+)", text, re.M)
            if found:
                self.url = found.group(1)
            elif self.popen.poll() is not None:
                break
            time.sleep(0.05)
        if not self.url:
            self.stop()
            raise RuntimeError(f"the counting server did not start:\n{text[-2000:]}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def counts(self) -> dict[str, int]:
        import urllib.request

        with urllib.request.urlopen(self.url + "/__bench/counts", timeout=10) as resp:
            data: dict[str, int] = json.loads(resp.read())
            return data

    def cpu(self) -> float:
        return process_cpu(self.pid) or 0.0

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._log.close()

    def __enter__(self) -> CountingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def credentials_env() -> dict[str, str]:
    return {"BROKERCERT_API_KEY": KEY, "BROKERCERT_API_SECRET": SECRET}


def suite_pytest(paths: list[str], dialect: str, base_url: str, depth: str, report_dir: Path,
                 extra: list[str] | None = None) -> list[str]:
    """The pytest command `brokercert run` starts for one dialect (brokercert.runner)."""
    from brokercert.runner import _PLUGIN_INI, _PLUGINS

    return [
        PYTHON, "-m", "pytest", *(str(ROOT / p) for p in paths), "-c", str(_PLUGIN_INI),
        "--rootdir", str(ROOT), "--confcutdir", str(ROOT),
        *(arg for plugin in _PLUGINS for arg in ("-p", plugin)),
        "--target", f"{base_url}/{dialect}", "--dialect", dialect,
        "--spec-version", SPEC_VERSIONS[dialect], "--depth", depth,
        "--report-dir", str(report_dir), "--bc-partial", *(extra or []),
    ]


def pytest_env() -> dict[str, str]:
    return {**credentials_env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1"}


def stored_cases(dialect: str, depth_name: str, max_examples: int | None = None,
                 subset: tuple[str, ...] = ()) -> int | None:
    """How many cases the case store holds for this spec and depth (None: nothing stored)."""
    import pickle
    from dataclasses import replace

    from brokercert import case_cache, catalog
    from brokercert.depth import preset

    depth = preset(depth_name)
    if max_examples is not None:
        depth = replace(depth, max_examples=max_examples)
    folder = case_cache.cases_dir(catalog.load(dialect, SPEC_VERSIONS[dialect]), depth)
    if subset:
        import hashlib

        digest = hashlib.sha256("\n".join(sorted(subset)).encode()).hexdigest()[:12]
        folder = folder.with_name(folder.name + "-ops-" + digest)
    files = sorted(folder.glob("op-*.pickle"))
    if not files:
        return None
    return sum(len(pickle.loads(f.read_bytes())) for f in files)


def machine_info() -> dict[str, Any]:
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "os": f"{platform.system()} {platform.release()}",
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "brokercert": version("brokercert"),
        "schemathesis": version("schemathesis"),
        "hypothesis": version("hypothesis"),
        "pytest": version("pytest"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_tracked_changes": bool(dirty) if dirty is not None else None,
    }


def write_results(name: str, data: dict[str, Any], markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    (RESULTS / f"{name}.md").write_text(markdown, encoding="utf-8")
    log(f"wrote {RESULTS / (name + '.json')} and {name}.md")


def median(values: list[float]) -> float:
    import statistics

    return statistics.median(values) if values else float("nan")


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
