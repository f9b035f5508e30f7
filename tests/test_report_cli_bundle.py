"""brokercert.cli._bundle: `brokercert verify` and `brokercert keygen` (exit codes, output)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from brokercert.cli import main
from brokercert.report import make_bundle


def brokercert(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["brokercert", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _bundle(root: Path, key: Path | None, verdict: str = "not_conformant") -> Path:
    run = root / "run"
    run.mkdir()
    cert = {"schema": "brokercert.certification/1", "verdict": verdict, "results": []}
    (run / "certification.json").write_text(json.dumps(cert))
    (run / "summary.md").write_text("# summary\n")
    (run / "junit.xml").write_text("<testsuites/>\n")
    return make_bundle(run, root / "bundle", key)


def test_keygen_sign_verify_and_tamper(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "vendor.key"
    code, out, _ = brokercert(capsys, monkeypatch, "keygen", "--out", str(key))
    assert code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = (tmp_path / "vendor.key.pub").read_text().strip()
    assert f"public key:  {public}" in out and len(public) == 64

    code, _, err = brokercert(capsys, monkeypatch, "keygen", "--out", str(key))
    assert code == 2 and err.startswith("brokercert: error:") and "--force" in err

    bundle = _bundle(tmp_path, key)
    code, out, _ = brokercert(capsys, monkeypatch, "verify", str(bundle), "--public-key", public)
    assert code == 0, out
    assert "intact, 3 files" in out
    assert "certification verdict: NOT CONFORMANT" in out
    assert "signature: valid (checked with the given --public-key)" in out

    # the key can also be given as the .pub file
    pub_file = str(tmp_path / "vendor.key.pub")
    code, out, _ = brokercert(capsys, monkeypatch, "verify", str(bundle), "--public-key", pub_file)
    assert code == 0

    (bundle / "summary.md").write_text("# summary, edited\n")
    (bundle / "junit.xml").unlink()
    code, out, _ = brokercert(capsys, monkeypatch, "verify", str(bundle))
    assert code == 1
    assert "TAMPERED summary.md: altered" in out
    assert "TAMPERED junit.xml: missing" in out
    assert "do not trust it" in out


def test_unsigned_bundle_verifies_and_reports_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _bundle(tmp_path, None, verdict="conformant")
    code, out, _ = brokercert(capsys, monkeypatch, "verify", str(bundle))
    assert code == 0
    assert "signature: none" in out and "certification verdict: CONFORMANT" in out


def test_unreadable_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = brokercert(capsys, monkeypatch, "verify", str(tmp_path / "nope"))
    assert code == 2 and err.count("\n") == 1 and "not a folder" in err
    code, _, err = brokercert(capsys, monkeypatch, "verify", str(tmp_path))
    assert code == 2 and "no manifest.json" in err
    bundle = _bundle(tmp_path, None)
    code, _, err = brokercert(capsys, monkeypatch, "verify", str(bundle), "--public-key", "zz")
    assert code == 2 and "public key" in err
