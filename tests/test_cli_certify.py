"""`brokercert certify` and `verify` end to end: a bundle made against the reference server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "brokercert.cli"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERCERT_")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def signed_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("certify")
    key = _cli("keygen", "--out", str(root / "vendor.key"))
    assert key.returncode == 0, key.stderr
    public = (root / "vendor.key.pub").read_text().strip().split()[-1]
    result = _cli(
        "certify",
        "--dialect",
        "alpaca",
        "--report-dir",
        str(root / "reports"),
        "--out",
        str(root / "bundle"),
        "--sign-key",
        str(root / "vendor.key"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "bundle", public


def test_bundle_verifies_with_the_vendor_key(signed_bundle: tuple[Path, str]) -> None:
    bundle, public = signed_bundle
    cert = json.loads((bundle / "certification.json").read_text())
    assert cert["verdict"] == "conformant"
    [result] = cert["results"]
    assert result["depth"] == "standard" and result["counts"]["not_tested"] == 0
    assert "k1" not in result["target"] and "@" not in result["target"]
    for name in ("summary.md", "manifest.json", "manifest.sig", "junit-alpaca.xml"):
        assert (bundle / name).is_file(), name
    out = _cli("verify", str(bundle), "--public-key", public)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "CONFORMANT" in out.stdout


@pytest.mark.parametrize("name", ["certification.json", "summary.md", "junit-alpaca.xml"])
def test_editing_one_byte_fails_verify_naming_the_file(
    signed_bundle: tuple[Path, str], tmp_path: Path, name: str
) -> None:
    import shutil

    bundle, public = signed_bundle
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    out = _cli("verify", str(copy), "--public-key", public)
    assert out.returncode == 1
    assert name in out.stdout + out.stderr


def test_certify_refuses_quick_depth(tmp_path: Path) -> None:
    out = _cli("certify", "--dialect", "alpaca", "--depth", "quick", "--report-dir", str(tmp_path))
    assert out.returncode == 2 and "standard depth or deeper" in out.stderr
