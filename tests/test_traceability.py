"""brokercert.traceability and `brokercert requirements --check`."""

from __future__ import annotations

from pathlib import Path

from brokercert import catalog, traceability


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_markers_and_mappings_are_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "scenarios/test_a.py",
        'import pytest\n@pytest.mark.requirement("BM-ACC-001", "ALP-ACC-001")\n'
        "def test_x(): pass\n",
    )
    _write(
        tmp_path,
        "conformance/map.py",
        'CHECK_REQUIREMENTS = {"a": "GEN-SRV-001"}\nOTHER = "ALP-DOC-001"\n',
    )
    named = traceability.named_requirements(tmp_path)
    # brokercert/fuzzing.py's check mapping is always part of the suite.
    assert set(named) - {"BM-ACC-001", "ALP-ACC-001", "GEN-SRV-001"} == {
        "GEN-SCHEMA-001",
        "GEN-SCHEMA-002",
        "GEN-SCHEMA-003",
        "GEN-SCHEMA-004",
        "GEN-SCHEMA-005",
        "GEN-ERR-001",
        "GEN-AUTH-001",
        "GEN-STATE-001",
        "ALP-ERR-001",
        "BM-ERR-001",
    }
    assert "GEN-SRV-001" in named and "ALP-ACC-001" in named
    assert named["BM-ACC-001"] == ["scenarios/test_a.py:2"]


def test_drift_reports_untested_and_unknown(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "scenarios/test_a.py",
        'import pytest\n@pytest.mark.requirement("BM-ZZZ-999")\ndef test_x(): pass\n',
    )
    (tmp_path / "conformance").mkdir()
    drift = traceability.check([catalog.load("buildmarkets")], tmp_path)
    assert not drift.ok
    assert "BM-ZZZ-999" in drift.unknown
    own = {r.id for r in catalog.load("buildmarkets").requirements if r.id.startswith("BM-")}
    assert set(drift.untested["buildmarkets"]) == own - {"BM-ERR-001"}


def test_the_real_suite_has_no_drift() -> None:
    drift = traceability.check([catalog.load(d) for d in catalog.dialects()])
    assert drift.unknown == {}
    assert drift.untested == {d: [] for d in catalog.dialects()}
