"""brokercert.report._labels: Allure labels from the catalogue."""

from __future__ import annotations

from typing import Any

from test_report_support import make_catalog, make_req

from brokercert.report import allure_labels
from brokercert.report._labels import AREAS, area_name

CAT = make_catalog(
    "buildmarkets",
    "1.0.0",
    (
        make_req("BM-DOC-004", url="https://docs.example.invalid/upload", operation="POST /x"),
        make_req("BM-ERR-002", level="SHOULD"),
        make_req("GEN-SRV-001"),
    ),
)


def test_labels_for_one_requirement() -> None:
    labels = allure_labels(CAT, ["BM-DOC-004"], "POST /v1/accounts/{accountId}/documents/upload")
    assert labels.epic == "buildmarkets 1.0.0"
    assert labels.features == ("Documents",) and labels.feature == "Documents"
    assert labels.story == "POST /v1/accounts/{accountId}/documents/upload"
    assert labels.severity == "critical"
    assert ("requirement", "BM-DOC-004") in labels.labels
    assert labels.requirements == ("BM-DOC-004",)
    assert labels.links == (("BM-DOC-004", "https://docs.example.invalid/upload"),)


def test_several_requirements_one_label_each_highest_severity() -> None:
    labels = allure_labels(CAT, ["BM-ERR-002", "GEN-SRV-001", "BM-ERR-002"], "GET /v1/accounts")
    assert labels.requirements == ("BM-ERR-002", "GEN-SRV-001")
    assert labels.features == ("Errors", "Server")
    assert labels.severity == "critical"
    # no url in the catalogue: the source is carried as a label instead of a link
    assert ("source", "BM-ERR-002: source of BM-ERR-002, section 1") in labels.labels
    assert labels.links == ()


def test_should_only_is_normal_and_unknown_ids_are_labelled() -> None:
    labels = allure_labels(CAT, ["BM-ERR-002", "BM-ZZZ-001"], "GET /x")
    assert labels.severity == "normal"
    assert labels.requirements == ("BM-ERR-002", "BM-ZZZ-001")
    assert labels.features == ("Errors", "ZZZ")


def test_story_defaults_to_the_requirement_operation() -> None:
    assert allure_labels(CAT, ["GEN-SRV-001", "BM-DOC-004"], None).story == "POST /x"
    assert allure_labels(CAT, ["GEN-SRV-001"], None).story == "every operation"


def test_area_names() -> None:
    assert area_name("ALP-ACC-001") == "Accounts"
    assert area_name("GEN-STATE-001") == "Stateful"
    assert area_name("BM-STATUS-002") == "Status"
    assert set(AREAS.values()) >= {"Accounts", "Documents", "CIP", "Auth", "List", "Schema"}


class FakeDynamic:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return record


def test_apply_calls_allure_dynamic() -> None:
    dyn = FakeDynamic()
    allure_labels(CAT, ["BM-DOC-004", "GEN-SRV-001"], "POST /x").apply(dyn)
    assert dyn.calls == [
        ("epic", ("buildmarkets 1.0.0",), {}),
        ("feature", ("Documents", "Server"), {}),
        ("story", ("POST /x",), {}),
        ("severity", ("critical",), {}),
        ("label", ("dialect", "buildmarkets"), {}),
        ("label", ("requirement", "BM-DOC-004"), {}),
        ("label", ("requirement", "GEN-SRV-001"), {}),
        ("label", ("source", "GEN-SRV-001: source of GEN-SRV-001, section 1"), {}),
        ("link", ("https://docs.example.invalid/upload",), {"name": "BM-DOC-004"}),
    ]
