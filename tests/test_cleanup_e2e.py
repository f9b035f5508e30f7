"""A run leaves no open account behind: at its end, and when it is interrupted with Ctrl-C.

Checked from the outside, through the list endpoint of the reference server with the
known credentials: each test gets a fresh server, so every account listed is one the
run created (the suite's own, whose emails start with the run's prefix, and the ones
Schemathesis created with generated emails). Each must be ACCOUNT_CLOSED, or in a final
status the dialect's state machine does not let anyone close (REJECTED): those are the
only ones the suite may leave, and the scenarios forget them on purpose.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile_servers import brokercert_command, run_cli

from brokercert import catalog
from brokercert.datagen import RunData
from brokercert.server import RunningServer, ServerConfig, start_in_thread

KEY, SECRET = "cleanup-key-71b", "cleanup-secret-4c2e9a"
DIALECTS = ("alpaca", "buildmarkets")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_in_thread(ServerConfig(db=tmp_path / "db.sqlite3", key=KEY, secret=SECRET,
                                       kyc_delay=0))
    try:
        yield srv
    finally:
        srv.stop()


def api(server: RunningServer, dialect: str) -> httpx.Client:
    if dialect == "alpaca":
        return httpx.Client(base_url=server.base_url(dialect), auth=(KEY, SECRET), timeout=30)
    return httpx.Client(base_url=server.base_url(dialect), timeout=30,
                        headers={"X-API-Key": KEY, "X-API-Secret": SECRET})


def accounts(server: RunningServer, dialect: str) -> list[dict[str, Any]]:
    """Every account of the dialect, through the list endpoint, with its email."""
    with api(server, dialect) as c:
        if dialect == "alpaca":
            r = c.get("/v1/accounts", params={"entities": "contact"})
            assert r.status_code == 200, r.text
            return [{"id": a["id"], "status": a["status"],
                     "email": (a.get("contact") or {}).get("email_address", "")}
                    for a in r.json()]
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            r = c.get("/v1/accounts", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            out += page["data"]
            if not page["pagination"]["has_more"]:
                break
            cursor = page["pagination"]["next_cursor"]
        # the list has no contact section here: read each account for its email
        full = []
        for a in out:
            one = c.get(f"/v1/accounts/{a['id']}").json()
            full.append({"id": a["id"], "status": a["status"],
                         "email": one.get("contact", {}).get("email_address", "")})
        return full


def unclosable(dialect: str) -> set[str]:
    """Final statuses the state machine lets no one close (REJECTED)."""
    machine = catalog.load(dialect).profile.state_machine
    return {s for s in machine.terminal if s != machine.closed
            and not machine.allows(s, machine.closed)}


def left_open(found: list[dict[str, Any]], dialect: str) -> list[dict[str, Any]]:
    closed = catalog.load(dialect).profile.state_machine.closed
    allowed = {closed} | unclosable(dialect)
    return [a for a in found if a["status"] not in allowed]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_finished_run_closes_every_account_it_created(
    server: RunningServer, tmp_path: Path, dialect: str
) -> None:
    reports = tmp_path / "reports"
    result = run_cli(["run", "--target", server.base_url(dialect), "--dialect", dialect,
                      "--depth", "quick", "--no-html", "--report-dir", str(reports)],
                     reports, key=KEY, secret=SECRET, timeout=600)
    assert result.code in (0, 1), result.describe()
    assert result.run_dir is not None
    prefix = RunData(result.run_dir.name).email_prefix
    found = accounts(server, dialect)
    mine = [a for a in found if a["email"].startswith(prefix)]
    assert len(mine) >= 10, f"expected the run's own accounts under {prefix!r}"
    assert left_open(found, dialect) == []
    closed = catalog.load(dialect).profile.state_machine.closed
    assert sum(a["status"] == closed for a in mine) >= len(mine) - 5
    # what the report says was left matches what the server shows: nothing
    cert = json.loads((result.run_dir / "certification.json").read_text("utf-8"))
    assert [r["leftover_accounts"] for r in cert["results"]] == [[]]


# Ctrl-C must reach the CLI as it does in a terminal, however these tests were started:
# a shell without job control starts background commands with SIGINT ignored, and a
# Python program that starts with SIGINT ignored keeps ignoring it (as it should).
# The CLI is exec'd with SIGINT back at its default.
_AS_IN_A_TERMINAL = [
    sys.executable, "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


@pytest.mark.parametrize(
    ("dialect", "to_group"),
    [("alpaca", True), ("buildmarkets", True), ("buildmarkets", False)],
    ids=["alpaca-ctrl-c", "buildmarkets-ctrl-c", "buildmarkets-sigint-to-cli-only"],
)
def test_ctrl_c_closes_what_the_run_created_and_exits_cleanly(
    server: RunningServer, tmp_path: Path, dialect: str, to_group: bool
) -> None:
    """Ctrl-C in a terminal signals the whole process group; `kill -INT <pid>` only the
    CLI, which then passes the interrupt on to its sessions (a deep run would otherwise
    go on for minutes and be killed with its accounts open)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERCERT_")}
    env.update({"BROKERCERT_API_KEY": KEY, "BROKERCERT_API_SECRET": SECRET, "NO_COLOR": "1"})
    proc = subprocess.Popen(
        [*_AS_IN_A_TERMINAL, *brokercert_command(), "run", "--target",
         server.base_url(dialect), "--dialect",
         dialect, "--depth", "standard" if to_group else "deep", "--no-html", "--report-dir",
         str(reports)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
        cwd=tmp_path, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        created = 0
        while time.monotonic() < deadline and proc.poll() is None:
            created = len(accounts(server, dialect))
            if created >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert created >= 3, "the run created no account in time"
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        else:
            os.kill(proc.pid, signal.SIGINT)
        interrupted = time.monotonic()
        out, err = proc.communicate(timeout=120)
        took = time.monotonic() - interrupted
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert proc.returncode == 130, (proc.returncode, stdout, stderr)
    assert "interrupted" in stderr
    assert took < 45, f"took {took:.0f}s to stop after Ctrl-C"
    # Everything it had created is closed by the time it exits (checked for a bound).
    bound = time.monotonic() + 15
    while True:
        found = accounts(server, dialect)
        if not left_open(found, dialect) or time.monotonic() > bound:
            break
        time.sleep(0.5)
    assert len(found) >= created
    assert left_open(found, dialect) == []
