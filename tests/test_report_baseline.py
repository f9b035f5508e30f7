"""brokercert.report._baseline: comparison with an earlier run and the --fail-on decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_report_support import alpaca_catalog, make_catalog, make_req, make_run, make_test

from brokercert.errors import ExitCode, UserError
from brokercert.report import build_certification, exit_code, load_baseline
from brokercert.report._baseline import compare_baseline
from brokercert.results import Outcome

F, S = Outcome.FAILED, Outcome.SKIPPED
ALL = ["ALP-ACC-001", "ALP-DOC-001", "ALP-ERR-001", "ALP-CIP-001"]


def _doc(*tests: Any, cats: dict[str, Any] | None = None, records: Any = None) -> dict[str, Any]:
    cats = cats or {"alpaca": alpaca_catalog()}
    records = records or [make_run(tests=list(tests))]
    return build_certification(records, cats, run_id="base").to_json()


def _ids(changes: Any) -> list[str]:
    return [c.id for c in changes]


def test_regressions_fixed_still_failing_new_removed() -> None:
    base = _doc(
        make_test("ok", ["ALP-ACC-001"]),
        make_test("bad", ["ALP-DOC-001"], F),
        make_test("warn", ["ALP-ERR-001"], F),
    )
    base["results"][0]["requirements"] = [
        r for r in base["results"][0]["requirements"] if r["id"] != "ALP-CIP-001"
    ]
    base["results"][0]["requirements"].append(
        {"id": "ALP-OLD-001", "level": "MUST", "title": "gone", "verdict": "passed"}
    )
    now = build_certification(
        [
            make_run(
                tests=[
                    make_test("ok", ["ALP-ACC-001"], F),
                    make_test("bad", ["ALP-DOC-001"]),
                    make_test("warn", ["ALP-ERR-001"], F),
                    make_test("cip", ["ALP-CIP-001"], F),
                ]
            )
        ],
        {"alpaca": alpaca_catalog()},
        run_id="now",
    )
    diff = compare_baseline(now, base, baseline_path="b.json")
    assert _ids(diff.regressions) == ["ALP-ACC-001"]
    assert (diff.regressions[0].before, diff.regressions[0].after) == ("passed", "failed")
    assert _ids(diff.fixed) == ["ALP-DOC-001"]
    assert _ids(diff.still_failing) == ["ALP-ERR-001"]
    assert _ids(diff.new) == ["ALP-CIP-001"] and diff.new[0].before is None
    assert _ids(diff.removed) == ["ALP-OLD-001"] and diff.removed[0].after is None
    assert diff.baseline_run_id == "base"
    assert _ids(diff.blocking) == ["ALP-ACC-001", "ALP-CIP-001"]
    assert exit_code(now.conformant, diff, "new") is ExitCode.NOT_CONFORMANT
    assert exit_code(now.conformant, diff, "any") is ExitCode.NOT_CONFORMANT


def test_fail_on_new_passes_known_failures_and_should_regressions() -> None:
    base = _doc(make_test("a", ALL), make_test("bad", ["ALP-DOC-001"], F))
    now = build_certification(
        [
            make_run(
                tests=[
                    make_test("a", ALL),
                    make_test("bad", ["ALP-DOC-001"], F),
                    make_test("warn", ["ALP-ERR-001"], F),  # SHOULD regressed: a warning only
                ]
            )
        ],
        {"alpaca": alpaca_catalog()},
        run_id="now",
    )
    diff = compare_baseline(now, base)
    assert _ids(diff.regressions) == ["ALP-ERR-001"]
    assert not now.conformant
    assert diff.blocking == ()
    assert exit_code(now.conformant, diff, "new") is ExitCode.CONFORMANT
    assert exit_code(now.conformant, diff, "any") is ExitCode.NOT_CONFORMANT


def test_must_that_became_not_tested_is_a_blocking_regression() -> None:
    base = _doc(make_test("a", ALL))
    now = build_certification(
        [make_run(tests=[make_test("a", ALL), make_test("skip", ["ALP-CIP-001"], S)])],
        {"alpaca": alpaca_catalog()},
        run_id="now",
    )
    diff = compare_baseline(now, base)
    assert [(c.id, c.after) for c in diff.blocking] == [("ALP-CIP-001", "not_tested")]


def test_dialect_missing_from_baseline_is_all_new() -> None:
    cats = {
        "alpaca": alpaca_catalog(),
        "buildmarkets": make_catalog("buildmarkets", "1.0.0", (make_req("BM-ACC-001"),)),
    }
    base = _doc(make_test("a", ALL))
    now = build_certification(
        [
            make_run(tests=[make_test("a", ALL)]),
            make_run("buildmarkets", "1.0.0", [make_test("b", ["BM-ACC-001"], F)]),
        ],
        cats,
        run_id="now",
    )
    diff = compare_baseline(now, base)
    assert diff.dialects_not_in_baseline == ("buildmarkets",)
    assert _ids(diff.new) == ["BM-ACC-001"]
    assert exit_code(now.conformant, diff, "new") is ExitCode.NOT_CONFORMANT


def test_baseline_dialect_not_run_now_is_not_reported_as_removed() -> None:
    base = _doc(make_test("a", ALL))
    cats = {"buildmarkets": make_catalog("buildmarkets", "1.0.0", (make_req("BM-ACC-001"),))}
    now = build_certification(
        [make_run("buildmarkets", "1.0.0", [make_test("b", ["BM-ACC-001"])])], cats, run_id="n"
    )
    assert compare_baseline(now, base).removed == ()


def test_without_baseline_new_behaves_like_any() -> None:
    assert exit_code(True, None, "new") is ExitCode.CONFORMANT
    assert exit_code(False, None, "new") is ExitCode.NOT_CONFORMANT
    with pytest.raises(ValueError):
        exit_code(True, None, "some")  # type: ignore[arg-type]


def test_load_baseline_errors_are_one_line_user_errors(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"schemaVersion": 2, "results": []}))
    for path in (tmp_path / "nope.json", foreign):
        with pytest.raises(UserError) as info:
            load_baseline(path)
        assert str(info.value).startswith("--baseline ")
        assert "\n" not in str(info.value)
