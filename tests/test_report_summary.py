"""brokercert.report._summary: summary.md for people."""

from __future__ import annotations

from test_report_support import alpaca_catalog, make_run, make_test

from brokercert.report import build_certification
from brokercert.report._baseline import compare_baseline
from brokercert.report._summary import render_summary
from brokercert.results import Outcome


def _cert(tests: list, leftovers: list[str] | None = None):  # type: ignore[no-untyped-def]
    return build_certification(
        [make_run(tests=tests, leftovers=leftovers)], {"alpaca": alpaca_catalog()}, run_id="run-7"
    )


FAILING = [
    make_test("s::acc", ["ALP-ACC-001"]),
    make_test("s::doc", ["ALP-DOC-001"], Outcome.FAILED, "expected 204 | got 200\n```\nbody```"),
    make_test("s::err", ["ALP-ERR-001"], Outcome.FAILED, "no error code"),
]


def test_failures_first_with_messages_then_warnings_not_tested_leftovers() -> None:
    text = render_summary(_cert(FAILING, leftovers=["acc-9"]))
    assert text.startswith("# brokercert certification: ❌ NOT CONFORMANT\n")
    assert "Run `run-7`" in text
    order = [
        text.index("### Failures (1)"),
        text.index("### Warnings (SHOULD) (1)"),
        text.index("### Not tested (1)"),
        text.index("### Accounts left open (1)"),
        text.index("### All requirements (4)"),
    ]
    assert order == sorted(order)
    failures = text[order[0] : order[1]]
    assert "**ALP-DOC-001** (MUST)" in failures
    assert "s::doc: expected 204 | got 200" in failures
    assert "````" in failures  # the fence outgrows the backticks inside the message
    assert "no error code" in text[order[1] : order[2]]
    assert "ALP-CIP-001" in text[order[2] : order[3]]
    assert "- `acc-9`" in text
    table = text[order[4] :].splitlines()
    rows = [line for line in table if line.startswith("| ") and "ALP-" in line]
    assert [row.split(" | ")[1] for row in rows] == [
        "ALP-DOC-001",
        "ALP-ERR-001",
        "ALP-CIP-001",
        "ALP-ACC-001",
    ]
    assert rows[0].startswith("| ❌ |") and rows[-1].startswith("| ✅ |")
    assert "[source of ALP-ACC-001, section 1](https://docs.example.invalid/accounts)" in rows[-1]


def test_overview_table_and_conformant_heading() -> None:
    tests = [make_test("a", ["ALP-ACC-001", "ALP-DOC-001", "ALP-CIP-001", "ALP-ERR-001"])]
    text = render_summary(_cert(tests))
    assert text.startswith("# brokercert certification: ✅ CONFORMANT\n")
    assert "| alpaca | 1.1.1 | ✅ CONFORMANT | 4 | 0 | 0 | 0 |" in text
    assert "### Failures" not in text
    assert "Compared with the baseline" not in text


def test_table_cells_escape_pipes_and_newlines() -> None:
    from brokercert.report._summary import _cell

    assert _cell("a | b\nc") == "a \\| b c"


def test_baseline_section() -> None:
    before = _cert([make_test("a", ["ALP-ACC-001", "ALP-DOC-001"])]).to_json()
    before["results"][0]["requirements"] = [
        r for r in before["results"][0]["requirements"] if r["id"] != "ALP-CIP-001"
    ]
    now = _cert(FAILING)
    diff = compare_baseline(now, before, baseline_path="old/certification.json")
    text = render_summary(now, diff)
    section = text[text.index("## Compared with the baseline") :]
    assert "`old/certification.json`" in section
    assert "### New failures (regressions) (1)" in section
    assert "| alpaca | ALP-DOC-001 | MUST | passed | failed |" in section
    assert "### Still failing (1)" in section  # ALP-ERR-001 was not tested, now warns
    assert "### New requirements (1)" in section
    assert "| alpaca | ALP-CIP-001 | MUST | - | not tested |" in section
    assert "### Fixed (0)" in section
