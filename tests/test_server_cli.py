"""`brokercert serve` and `brokercert faults` as a user runs them: start-up lines, curl
against both dialects, clean stop on SIGTERM/SIGINT, usage errors, durability across a
kill -9, and memory on a 32 MB upload."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server_support import BM_HEADERS, alpaca_account, bm_account
from typer.testing import CliRunner

from brokercert.cli import app
from brokercert.server import FAULTS
from brokercert.server._config import DEV_KEY, DEV_SECRET

_SCRIPT = Path(sys.executable).with_name("brokercert")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c",
                                                    "from brokercert.cli import main; main()"]


class Served:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        first = self.line()
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert match, first
        self.url = match.group(0)
        self.banner = [first, self.line(), self.line()]

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def line(self, timeout: float = 20) -> str:
        return self.lines.get(timeout=timeout)

    def memory(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)


@contextmanager
def serve(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BROKERCERT_API")}
    proc = subprocess.Popen(
        [*COMMAND, "serve", "--port", "0", "--db", str(tmp / "db.sqlite3"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**environ, **(env or {})},
    )
    try:
        yield Served(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def curl(*args: str) -> tuple[int, Any]:
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body) if body else None


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_serve_prints_both_base_urls_answers_curl_and_stops_on_sigterm(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        alpaca_line, bm_line = srv.banner[1], srv.banner[2]
        assert f"{srv.url}/alpaca" in alpaca_line and f"{DEV_KEY}:{DEV_SECRET}" in alpaca_line
        assert f"{srv.url}/buildmarkets" in bm_line and DEV_SECRET in bm_line
        assert curl(f"{srv.url}/healthz")[0] == 200
        status, account = curl("-u", f"{DEV_KEY}:{DEV_SECRET}", "-H",
                               "Content-Type: application/json", "-d",
                               json.dumps(alpaca_account()), f"{srv.url}/alpaca/v1/accounts")
        assert status == 200 and account["status"] == "SUBMITTED"
        status, read = curl("-u", f"{DEV_KEY}:{DEV_SECRET}",
                            f"{srv.url}/alpaca/v1/accounts/{account['id']}")
        assert status == 200 and read["id"] == account["id"]
        headers = [a for k, v in BM_HEADERS.items() for a in ("-H", f"{k}: {v}")]
        status, created = curl(*headers, "-H", "Content-Type: application/json", "-d",
                               json.dumps(bm_account("123-45-0001")),
                               f"{srv.url}/buildmarkets/v1/accounts")
        assert status == 201 and created["kyc_status"] == "SUBMITTED"
        status, page = curl(*headers, f"{srv.url}/buildmarkets/v1/accounts?limit=1")
        assert status == 200 and page["data"][0]["id"] == created["id"]
        assert curl(f"{srv.url}/buildmarkets/v1/accounts")[0] == 401
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=15) == 0
        assert srv.line() == "brokercert reference server stopped"


def test_environment_credentials_are_used_never_printed_and_sigint_stops(tmp_path: Path) -> None:
    secret = "s3cret-from-env-7f1c"
    env = {"BROKERCERT_API_KEY": "env-key", "BROKERCERT_API_SECRET": secret}
    with serve(tmp_path, "--fault", "bm_create_answers_200", "--fault",
               "alp_create_answers_201", env=env) as srv:
        assert all(secret not in line and DEV_SECRET not in line for line in srv.banner)
        assert srv.line() == "faults on: alp_create_answers_201, bm_create_answers_200"
        url = f"{srv.url}/alpaca/v1/accounts"
        assert httpx.get(url, auth=(DEV_KEY, DEV_SECRET)).status_code == 401
        assert httpx.get(url, auth=("env-key", secret)).status_code == 200
        bm = {"X-API-Key": "env-key", "X-API-Secret": secret}
        r = httpx.post(f"{srv.url}/buildmarkets/v1/accounts", json=bm_account(), headers=bm)
        assert r.status_code == 200
        srv.proc.send_signal(signal.SIGINT)
        assert srv.proc.wait(timeout=15) == 0
        assert srv.proc.stderr is not None
        assert secret not in srv.proc.stderr.read()


def _one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("brokercert: error: "), result.stderr
    return lines[0]


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    assert "unknown fault 'nope'" in _one_line_error(["serve", "--fault", "nope"])
    assert "both" in _one_line_error(["serve", "--key", "k"])
    assert "kyc_delay" in _one_line_error(["serve", "--kyc-delay", "-1"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        message = _one_line_error(["serve", "--port", port, "--db", str(tmp_path / "x.db")])
    assert f"127.0.0.1:{port}" in message and "--port" in message


def test_faults_command_lists_every_fault() -> None:
    result = CliRunner().invoke(app, ["faults", "--format", "json"])
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert {f["name"] for f in listed} == set(FAULTS)
    assert all(f["requirements"] and f["description"] for f in listed)
    table = CliRunner().invoke(app, ["faults", "--dialect", "buildmarkets"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "bm_no_10mb_limit" in table.stdout
    assert "alp_no_32mb_limit" not in table.stdout


def test_kill_9_during_writes_loses_no_acknowledged_account(tmp_path: Path) -> None:
    acknowledged: list[tuple[str, str]] = []
    stop = threading.Event()

    def writer(url: str, dialect: str) -> None:
        with httpx.Client(timeout=5, verify=False) as c:
            while not stop.is_set():
                try:
                    if dialect == "alpaca":
                        r = c.post(f"{url}/alpaca/v1/accounts", json=alpaca_account(),
                                   auth=(DEV_KEY, DEV_SECRET))
                    else:
                        r = c.post(f"{url}/buildmarkets/v1/accounts", json=bm_account(),
                                   headers=BM_HEADERS)
                except httpx.HTTPError:
                    return
                if r.status_code in (200, 201):
                    acknowledged.append((dialect, r.json()["id"]))

    with serve(tmp_path) as srv:
        threads = [threading.Thread(target=writer, args=(srv.url, d))
                   for d in ("alpaca", "buildmarkets", "alpaca", "buildmarkets")]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(acknowledged) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert len(acknowledged) >= 100
    with serve(tmp_path) as again, httpx.Client(verify=False) as c:
        for dialect, account_id in acknowledged:
            url = f"{again.url}/{dialect}/v1/accounts/{account_id}"
            if dialect == "alpaca":
                r = c.get(url, auth=(DEV_KEY, DEV_SECRET))
            else:
                r = c.get(url, headers=BM_HEADERS)
            assert r.status_code == 200, (dialect, account_id)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_growth_on_a_32mb_upload_stays_under_4x_the_payload(tmp_path: Path) -> None:
    chars = 31_999_996
    body = (b'[{"document_type":"other","mime_type":"application/pdf","content":"'
            + b"A" * chars + b'"}]')
    with serve(tmp_path) as srv, httpx.Client(auth=(DEV_KEY, DEV_SECRET), timeout=60) as c:
        account = c.post(f"{srv.url}/alpaca/v1/accounts", json=alpaca_account()).json()
        before = srv.memory("VmRSS")
        r = c.post(f"{srv.url}/alpaca/v1/accounts/{account['id']}/documents/upload",
                   content=body, headers={"content-type": "application/json"})
        assert r.status_code == 204
        growth = srv.memory("VmHWM") - before
    assert growth <= 4 * len(body), f"peak RSS grew by {growth / len(body):.1f}x the payload"
