"""The production guard through the real CLI, and `--allow-production` through build_target.

A run creates and closes accounts, so pointing it at a dialect's documented production
host must be refused (exit 2, one line naming the flag) before any request is sent.
With `--allow-production` the guard lets the run go on to the reachability probe;
production hostnames cannot be pointed at loopback without DNS, so that path is checked
on build_target and probe with an in-memory transport.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hostile_servers import run_cli

from brokercert import catalog
from brokercert.errors import ExitCode, UserError
from brokercert.target import Credentials, build_target, probe

KEY, SECRET = "guard-key", "guard-secret-value"
PRODUCTION = {
    "alpaca": "broker-api.alpaca.markets",
    "buildmarkets": "api.tappengine.com",
}


def test_the_profiles_name_the_hosts_these_tests_use() -> None:
    for dialect, host in PRODUCTION.items():
        assert host in catalog.load(dialect).profile.production_hosts


@pytest.mark.parametrize(
    ("dialect", "url"),
    [
        ("alpaca", "https://broker-api.alpaca.markets"),
        ("alpaca", "https://BROKER-API.Alpaca.Markets./v1/"),
        ("buildmarkets", "https://api.tappengine.com:443/"),
        ("buildmarkets", "http://api.tappengine.com/buildmarkets"),
    ],
)
def test_cli_refuses_a_production_host_with_exit_2_and_one_line(
    tmp_path: Path, dialect: str, url: str
) -> None:
    result = run_cli(
        ["run", "--target", url, "--dialect", dialect, "--depth", "quick", "--no-html",
         "--report-dir", str(tmp_path / "reports")],
        tmp_path / "reports", key=KEY, secret=SECRET, timeout=60,
    )
    assert result.code == ExitCode.USAGE, result.describe()
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.describe()
    assert "--allow-production" in lines[0] and "production" in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout.strip() == ""
    assert KEY not in result.output and SECRET not in result.output
    # refused before anything was written or sent: no run folder, no report
    assert result.run_dirs == [], result.run_dirs
    assert result.seconds < 20


def test_pytest_entry_point_refuses_production_too(tmp_path: Path) -> None:
    """`pytest conformance --target <production>` is a usage error naming the flag."""
    root = Path(__file__).resolve().parents[1]
    env = {"BROKERCERT_API_KEY": KEY, "BROKERCERT_API_SECRET": SECRET, "PATH": "/usr/bin:/bin"}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(root / "conformance"), "-c",
         str(root / "brokercert" / "pytest_plugin" / "suite.ini"), "--rootdir", str(root),
         "--confcutdir", str(root),
         "--target", "https://api.tappengine.com", "--dialect", "buildmarkets",
         "--report-dir", str(tmp_path / "r")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert "--allow-production" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.json"))
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("dialect", sorted(PRODUCTION))
def test_build_target_refuses_then_allows_with_the_flag(dialect: str) -> None:
    profile = catalog.load(dialect).profile
    creds = Credentials(KEY, SECRET)
    url = f"https://{PRODUCTION[dialect]}"
    with pytest.raises(UserError, match="--allow-production") as info:
        build_target(url, profile, creds)
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(info.value)

    target = build_target(url, profile, creds, allow_production=True)
    assert target.allow_production and target.host == PRODUCTION[dialect]
    assert target.describe()["allow_production"] is True
    # A real host gets the polite default pace: below the documented rate limit.
    assert target.rate is not None and 0 < target.rate < profile.rate_limit.per_second
    # TLS is verified unless --insecure.
    assert target.describe()["tls_verified"] is True

    # ... and the run goes on to the reachability probe, which sends one authenticated
    # GET /v1/accounts to the production host (answered here in memory, not over the net).
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(401, json={"code": 40110000, "message": "unauthorized"})

    assert probe(target, transport=httpx.MockTransport(answer)) == 401
    assert len(sent) == 1
    assert sent[0].url.host == PRODUCTION[dialect]
    assert sent[0].url.path.endswith("/v1/accounts")
    headers = {k.lower() for k in sent[0].headers}
    assert "authorization" in headers or {"x-api-key", "x-api-secret"} <= headers


def test_a_sandbox_host_needs_no_flag() -> None:
    profile = catalog.load("alpaca").profile
    for host in profile.sandbox_hosts:
        target = build_target(f"https://{host}", profile, Credentials(KEY, SECRET))
        assert not target.allow_production


def test_a_lookalike_host_is_not_production() -> None:
    """Only the documented hosts are guarded; the check is exact, not a substring match."""
    profile = catalog.load("alpaca").profile
    creds = Credentials(KEY, SECRET)
    for url in ("https://broker-api.alpaca.markets.example.com",
                "https://xbroker-api.alpaca.markets"):
        assert not build_target(url, profile, creds).allow_production
