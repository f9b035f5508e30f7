"""brokercert.selftest: the scoring rules, and the full fault catalogue through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from brokercert.selftest import FaultOutcome, SelftestReport
from brokercert.server import FAULTS


def _outcome(**overrides: object) -> FaultOutcome:
    base: dict[str, object] = {
        "fault": "f",
        "dialect": "alpaca",
        "expected": ["ALP-ACC-001"],
        "conformant": False,
        "failed": ["ALP-ACC-001"],
        "missed": [],
        "collateral": [],
        "seconds": 1.0,
    }
    base.update(overrides)
    return FaultOutcome(**base)  # type: ignore[arg-type]


def test_detection_needs_a_failed_run_and_every_named_requirement() -> None:
    assert _outcome().detected
    assert not _outcome(conformant=True).detected
    assert not _outcome(missed=["ALP-ACC-001"]).detected
    assert not _outcome(error="server crashed").detected


def test_score_and_pass_rule() -> None:
    report = SelftestReport(depth="quick", scope="full", clean={"alpaca": []})
    report.faults = [_outcome(), _outcome(fault="g", missed=["X"])]
    assert report.detection == 0.5 and not report.passed
    report.faults = [_outcome()]
    assert report.passed
    report.clean = {"alpaca": ["ALP-ACC-003"]}
    assert report.false_failures == 1 and not report.passed


def test_every_fault_names_known_requirements_of_its_dialect() -> None:
    from brokercert import catalog

    for fault in FAULTS.values():
        ids = catalog.load(fault.dialect).ids
        assert fault.requirements and set(fault.requirements) <= ids, fault.name


@pytest.mark.slow
def test_full_fault_catalogue_is_caught_with_no_false_failure(tmp_path: Path) -> None:
    """Every fault fails the run on the requirements it names; the clean server passes.

    CI budget: each fault runs only the tests that name its requirements, at quick depth.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERCERT_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "brokercert.cli",
            "selftest",
            "--scope",
            "relevant",
            "--depth",
            "quick",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    [out] = list(tmp_path.glob("selftest-*/selftest.json"))
    report = json.loads(out.read_text())
    missed = {f["fault"]: f["missed"] or f["error"] for f in report["faults"] if not f["detected"]}
    assert missed == {}, result.stdout
    assert report["false_failures"] == 0, report["clean_failures"]
    assert report["faults_total"] == len(FAULTS)
    assert result.returncode == 0, result.stdout + result.stderr
