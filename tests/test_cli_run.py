"""`brokercert run` end to end: the real CLI against the real reference server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brokercert.server import ServerConfig, start_in_thread

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "brokercert.cli"]


def _cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; ambient BROKERCERT_* credentials never leak into a test."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BROKERCERT_")}
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
        cwd=cwd,
    )


def _run_dir(report_dir: Path) -> Path:
    [run] = [p for p in report_dir.iterdir() if p.is_dir() and p.name != "latest"]
    return run


def test_embedded_quick_run_certifies_both_dialects(tmp_path: Path) -> None:
    """With no target, both dialects are certified against the embedded server; the
    reports land in ./reports (the default, a relative path) as a new user would run it."""
    result = _cli("run", "--depth", "quick", "--no-html", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    reports = tmp_path / "reports"
    run = _run_dir(reports)
    cert = json.loads((run / "certification.json").read_text())
    assert cert["verdict"] == "conformant"
    assert {r["dialect"] for r in cert["results"]} == {"alpaca", "buildmarkets"}
    for res in cert["results"]:
        assert res["counts"]["failed"] == 0 and res["counts"]["not_tested"] == 0
        assert res["leftover_accounts"] == []
    for name in ("summary.md", "junit-alpaca.xml", "junit-buildmarkets.xml"):
        assert (run / name).is_file(), name
    assert any((run / "allure-results").glob("*-result.json"))
    assert (reports / "latest").resolve() == run.resolve()


def test_fault_makes_the_run_fail_on_the_named_requirement(tmp_path: Path) -> None:
    """A deliberate deviation exits 1 and the summary names the requirement it breaks."""
    key, secret = "e2e-key", "e2e-secret-value"
    config = ServerConfig(
        db=tmp_path / "s.db",
        key=key,
        secret=secret,
        kyc_delay=0.0,
        faults=frozenset({"bm_create_answers_200"}),
    )
    with start_in_thread(config) as server:
        result = _cli(
            "run",
            "--target",
            server.base_url("buildmarkets"),
            "--dialect",
            "buildmarkets",
            "--depth",
            "quick",
            "--report-dir",
            str(tmp_path / "r"),
            "--no-html",
            env={"BROKERCERT_API_KEY": key, "BROKERCERT_API_SECRET": secret},
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BM-ACC-001" in result.stdout
    summary = (_run_dir(tmp_path / "r") / "summary.md").read_text()
    assert "BM-ACC-001" in summary and "NOT CONFORMANT" in summary


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_closed_port_exits_3_quickly_with_one_line(tmp_path: Path) -> None:
    """An unreachable target is reported in under 5 s, as one line, with exit code 3."""
    start = time.monotonic()
    result = _cli(
        "run",
        "--target",
        f"http://127.0.0.1:{_closed_port()}/alpaca",
        "--dialect",
        "alpaca",
        "--report-dir",
        str(tmp_path),
        env={"BROKERCERT_API_KEY": "k", "BROKERCERT_API_SECRET": "s"},
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 3
    assert elapsed < 5 + 3  # 5 s for the probe, plus interpreter start-up
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "refused" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--depth", "bogus"], "unknown depth"),
        (["--dialect", "nope"], "unknown dialect"),
        (["--target", "http://127.0.0.1:9/alpaca"], "single --dialect"),
        (["--fail-on", "new"], "needs --baseline"),
        (["--baseline", "/nonexistent/cert.json"], "baseline file not found"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = _cli("run", "--report-dir", str(tmp_path), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([ln for ln in result.stderr.splitlines() if ln.strip()]) == 1


def test_existing_run_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "nightly").mkdir()
    (tmp_path / "nightly" / "certification.json").write_text("{}")
    result = _cli("run", "--report-dir", str(tmp_path), "--run-id", "nightly")
    assert result.returncode == 2 and "already exists" in result.stderr
    assert (tmp_path / "nightly" / "certification.json").read_text() == "{}"
