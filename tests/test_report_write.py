"""brokercert.report._write: write_reports, the CLI's single call after the pytest sessions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_report_support import alpaca_catalog, make_run, make_test

from brokercert.errors import ExitCode, UserError
from brokercert.report import HtmlResult, make_bundle, verify_bundle, write_reports
from brokercert.report import _write as write_mod
from brokercert.results import Outcome

ALL = ["ALP-ACC-001", "ALP-DOC-001", "ALP-ERR-001", "ALP-CIP-001"]
CATS = {"alpaca": alpaca_catalog()}


def _no_render(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, Path]]:
    calls: list[tuple[Path, Path]] = []

    def fake(results: Path, out: Path, report_name: str = "") -> HtmlResult:
        calls.append((results, out))
        return HtmlResult(None, "HTML report not rendered: node is not installed; install ...")

    monkeypatch.setattr(write_mod, "render_html", fake)
    return calls


def test_conformant_run_writes_reports_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _no_render(monkeypatch)
    (tmp_path / "junit-alpaca.xml").write_text("<testsuites/>")
    out = write_reports(
        tmp_path, [make_run(tests=[make_test("a", ALL)])], CATS, run_id="r1", baseline=None
    )
    assert out.verdict == "conformant" and out.exit_code is ExitCode.CONFORMANT
    assert out.paths == {
        "certification": tmp_path / "certification.json",
        "summary": tmp_path / "summary.md",
        "junit-alpaca": tmp_path / "junit-alpaca.xml",
    }
    assert json.loads(out.paths["certification"].read_text())["run_id"] == "r1"
    assert "✅ CONFORMANT" in out.paths["summary"].read_text()
    assert calls == [(tmp_path / "allure-results", tmp_path / "allure-report")]
    assert out.html is not None and "node is not installed" in out.html.message
    assert not list(tmp_path.glob(".*.tmp"))


def test_failing_run_exits_1_and_baseline_decides_with_fail_on_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_render(monkeypatch)
    failing = [
        make_run(tests=[make_test("a", ALL), make_test("b", ["ALP-DOC-001"], Outcome.FAILED)])
    ]
    first = write_reports(tmp_path / "one", failing, CATS, run_id="1", baseline=None)
    assert first.exit_code is ExitCode.NOT_CONFORMANT
    baseline = tmp_path / "one" / "certification.json"
    again = write_reports(
        tmp_path / "two", failing, CATS, run_id="2", baseline=baseline, fail_on="new"
    )
    assert again.verdict == "not_conformant"
    assert again.exit_code is ExitCode.CONFORMANT  # known failure only
    assert again.diff is not None and [c.id for c in again.diff.still_failing] == ["ALP-DOC-001"]
    assert "## Compared with the baseline" in (tmp_path / "two" / "summary.md").read_text()
    strict = write_reports(tmp_path / "three", failing, CATS, run_id="3", baseline=baseline)
    assert strict.exit_code is ExitCode.NOT_CONFORMANT  # fail_on="any" is the default


def test_bad_baseline_raises_after_writing_the_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_render(monkeypatch)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(UserError, match="--baseline"):
        write_reports(tmp_path / "run", [make_run()], CATS, run_id="r", baseline=bad)
    assert (tmp_path / "run" / "certification.json").is_file()
    assert (tmp_path / "run" / "summary.md").is_file()


def test_render_false_skips_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _no_render(monkeypatch)
    out = write_reports(tmp_path, [make_run()], CATS, run_id="r", baseline=None, render=False)
    assert calls == [] and out.html is None


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_run_to_verified_bundle_with_real_html(tmp_path: Path) -> None:
    """The `certify` flow: reports (real Allure render), bundle, sign, verify."""
    from test_report_html import _write_results

    run = tmp_path / "run"
    _write_results(run / "allure-results")
    (run / "junit-alpaca.xml").write_text("<testsuites/>")
    out = write_reports(
        run, [make_run(tests=[make_test("a", ALL)])], CATS, run_id="r", baseline=None
    )
    assert out.html is not None
    if not out.html.ok:
        pytest.skip(out.html.message)  # Allure 3 not installable here (offline)
    assert "googletagmanager" not in (run / "allure-report" / "index.html").read_text()
    key = tmp_path / "k"
    from brokercert.report._signing import write_private_key

    public = write_private_key(key)
    bundle = make_bundle(run, tmp_path / "bundle", key)
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert names[:3] == [
        "allure-report/index.html",
        "allure-report/summary.json",
        "allure-report/test-results.json",
    ]
    assert {"certification.json", "summary.md", "junit-alpaca.xml", "manifest.json"} <= set(names)
    assert {"manifest.sig", "signer.pub"} <= set(names)
    res = verify_bundle(bundle, public)
    assert res.intact and res.verdict == "conformant", res.problems
