"""brokercert.report._verdicts: one verdict per requirement, and the dialect verdict."""

from __future__ import annotations

import pytest
from test_report_support import alpaca_catalog, make_catalog, make_req, make_run, make_test

from brokercert.report._verdicts import evaluate, safe_target
from brokercert.results import Outcome, Verdict

F, E, S, P = Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED, Outcome.PASSED


def verdicts(tests: list, cat=None) -> dict[str, Verdict]:  # type: ignore[no-untyped-def]
    res = evaluate(make_run(tests=tests), cat or alpaca_catalog())
    return {r.id: r.verdict for r in res.requirements}


def test_no_test_means_not_tested() -> None:
    res = evaluate(make_run(tests=[]), alpaca_catalog())
    assert {r.verdict for r in res.requirements} == {Verdict.NOT_TESTED}
    assert res.requirements[0].messages == ["no test ran this requirement"]
    assert not res.conformant


def test_all_passed_is_passed_and_conformant_needs_every_must() -> None:
    tests = [
        make_test("t::acc", ["ALP-ACC-001"]),
        make_test("t::doc", ["ALP-DOC-001", "ALP-CIP-001"]),
    ]
    res = evaluate(make_run(tests=tests), alpaca_catalog())
    got = {r.id: r.verdict for r in res.requirements}
    assert got == {
        "ALP-ACC-001": Verdict.PASSED,
        "ALP-DOC-001": Verdict.PASSED,
        "ALP-ERR-001": Verdict.NOT_TESTED,  # a SHOULD: does not block conformance
        "ALP-CIP-001": Verdict.PASSED,
    }
    assert res.conformant
    assert res.counts == {"passed": 3, "failed": 0, "warning": 0, "not_tested": 1}
    assert list(res.counts) == ["passed", "failed", "warning", "not_tested"]


@pytest.mark.parametrize("outcome", [F, E])
def test_failed_or_errored_must_fails_and_should_warns(outcome: Outcome) -> None:
    tests = [
        make_test("t::a", ["ALP-ACC-001", "ALP-ERR-001"], outcome, "boom"),
        make_test("t::b", ["ALP-ACC-001"]),
    ]
    res = evaluate(make_run(tests=tests), alpaca_catalog())
    by_id = {r.id: r for r in res.requirements}
    assert by_id["ALP-ACC-001"].verdict is Verdict.FAILED
    assert by_id["ALP-ERR-001"].verdict is Verdict.WARNING
    assert by_id["ALP-ACC-001"].tests == ["t::a", "t::b"]
    assert by_id["ALP-ACC-001"].messages == ["t::a: boom"]
    assert not res.conformant


def test_failed_requirements_narrow_which_failed() -> None:
    tests = [make_test("fuzz", ["ALP-ACC-001", "ALP-DOC-001"], F, "ST103", ["ALP-DOC-001"])]
    got = verdicts(tests)
    assert got["ALP-ACC-001"] is Verdict.PASSED
    assert got["ALP-DOC-001"] is Verdict.FAILED


def test_skip_is_not_tested_even_beside_a_pass() -> None:
    tests = [
        make_test("t::ran", ["ALP-ACC-001"]),
        make_test("t::skipped", ["ALP-ACC-001"], S, "needs a sandbox"),
        make_test("t::only-skipped", ["ALP-DOC-001"], S),
    ]
    res = evaluate(make_run(tests=tests), alpaca_catalog())
    by_id = {r.id: r for r in res.requirements}
    assert by_id["ALP-ACC-001"].verdict is Verdict.NOT_TESTED
    assert by_id["ALP-ACC-001"].messages == ["t::skipped: needs a sandbox"]
    assert by_id["ALP-DOC-001"].verdict is Verdict.NOT_TESTED
    assert by_id["ALP-DOC-001"].messages == ["t::only-skipped: skipped (no message)"]


def test_failure_wins_over_skip() -> None:
    tests = [make_test("a", ["ALP-ACC-001"], S), make_test("b", ["ALP-ACC-001"], F, "x")]
    assert verdicts(tests)["ALP-ACC-001"] is Verdict.FAILED


def test_unknown_ids_are_ignored_and_extra_fields_carried() -> None:
    res = evaluate(make_run(tests=[make_test("a", ["ALP-ZZZ-999"])]), alpaca_catalog())
    assert [r.id for r in res.requirements] == [
        "ALP-ACC-001",
        "ALP-DOC-001",
        "ALP-ERR-001",
        "ALP-CIP-001",
    ]
    first = res.requirements[0]
    assert first.url == "https://docs.example.invalid/accounts"
    assert first.level == "MUST"
    assert first.source == "source of ALP-ACC-001, section 1"


def test_catalogue_with_only_shoulds_is_conformant_when_nothing_fails() -> None:
    cat = make_catalog(reqs=(make_req("ALP-ERR-001", level="SHOULD"),))
    res = evaluate(make_run(tests=[make_test("a", ["ALP-ERR-001"], F)]), cat)
    assert res.requirements[0].verdict is Verdict.WARNING
    assert res.conformant


def test_record_must_match_catalogue() -> None:
    with pytest.raises(ValueError, match="does not match"):
        evaluate(make_run(dialect="buildmarkets", version="1.0.0"), alpaca_catalog())


def test_leftovers_are_sorted_and_unique() -> None:
    res = evaluate(make_run(leftovers=["b", "a", "b"]), alpaca_catalog())
    assert res.leftover_accounts == ("a", "b")


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://key:secret@sandbox.example.com/v1?token=x#f", "https://sandbox.example.com/v1"),
        ("http://127.0.0.1:8080/alpaca", "http://127.0.0.1:8080/alpaca"),
        ("http://user@[::1]:9/x", "http://[::1]:9/x"),
    ],
)
def test_target_never_carries_credentials(url: str, safe: str) -> None:
    assert safe_target(url) == safe
    res = evaluate(make_run(target=url), alpaca_catalog())
    assert res.target == safe
