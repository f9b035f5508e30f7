"""brokercert.report._certification: certification.json content and determinism."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from test_report_support import (
    FINISHED,
    STARTED,
    alpaca_catalog,
    make_catalog,
    make_req,
    make_run,
    make_test,
)

from brokercert.errors import UserError
from brokercert.report import SCHEMA_ID, build_certification
from brokercert.report._certification import load_certification
from brokercert.results import Outcome


def _records(shuffle: int | None = None) -> tuple[list, dict]:  # type: ignore[type-arg]
    alp_tests = [
        make_test("s::acc", ["ALP-ACC-001"]),
        make_test("s::doc", ["ALP-DOC-001"], Outcome.FAILED, "expected 204, got 200"),
        make_test("s::doc2", ["ALP-DOC-001", "ALP-CIP-001"]),
        make_test("s::err", ["ALP-ERR-001"]),
    ]
    bm_tests = [make_test("s::bm", ["BM-ACC-001"])]
    if shuffle is not None:
        random.Random(shuffle).shuffle(alp_tests)
    records = [
        make_run("buildmarkets", "1.0.0", bm_tests, target="https://k:s@bm.example.com/api"),
        make_run("alpaca", "1.1.1", alp_tests, leftovers=["acc-2", "acc-1"]),
    ]
    if shuffle is not None:
        records.reverse()
    cats = {
        "alpaca": alpaca_catalog(),
        "buildmarkets": make_catalog("buildmarkets", "1.0.0", (make_req("BM-ACC-001"),)),
    }
    return records, cats


def test_document_shape_and_key_order() -> None:
    records, cats = _records()
    doc = build_certification(records, cats, run_id="run-1").to_json()
    assert list(doc) == [
        "schema",
        "suite_version",
        "run_id",
        "started_at",
        "finished_at",
        "verdict",
        "results",
    ]
    assert doc["schema"] == SCHEMA_ID == "brokercert.certification/1"
    assert doc["run_id"] == "run-1"
    assert (doc["started_at"], doc["finished_at"]) == (STARTED, FINISHED)
    assert doc["verdict"] == "not_conformant"
    assert [r["dialect"] for r in doc["results"]] == ["alpaca", "buildmarkets"]
    alp, bm = doc["results"]
    assert list(alp) == [
        "dialect",
        "spec_version",
        "spec_digest",
        "target",
        "depth",
        "started_at",
        "finished_at",
        "verdict",
        "counts",
        "requirements",
        "leftover_accounts",
    ]
    assert alp["verdict"] == "not_conformant" and bm["verdict"] == "conformant"
    assert alp["counts"] == {"passed": 3, "failed": 1, "warning": 0, "not_tested": 0}
    assert alp["leftover_accounts"] == ["acc-1", "acc-2"]
    assert bm["target"] == "https://bm.example.com/api"  # credentials stripped
    doc_req = alp["requirements"][1]
    assert list(doc_req) == [
        "id",
        "level",
        "title",
        "source",
        "url",
        "verdict",
        "tests",
        "messages",
    ]
    assert doc_req["id"] == "ALP-DOC-001"
    assert doc_req["verdict"] == "failed"
    assert doc_req["tests"] == ["s::doc", "s::doc2"]
    assert doc_req["messages"] == ["s::doc: expected 204, got 200"]
    assert alp["requirements"][0]["url"] == "https://docs.example.invalid/accounts"


def test_output_is_deterministic_whatever_the_record_order() -> None:
    texts = set()
    for seed in (None, 1, 2, 3):
        records, cats = _records(seed)
        texts.add(build_certification(records, cats, run_id="r").dumps())
    assert len(texts) == 1
    text = texts.pop()
    assert text.endswith("}\n")
    json.loads(text)


def test_conformant_only_when_every_dialect_is() -> None:
    cats = {"alpaca": make_catalog(reqs=(make_req("ALP-ACC-001"),))}
    ok = build_certification([make_run(tests=[make_test("a", ["ALP-ACC-001"])])], cats, run_id="r")
    assert ok.conformant and ok.verdict == "conformant"
    assert not build_certification([], cats, run_id="r").conformant


def test_missing_catalogue_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no catalogue"):
        build_certification([make_run()], {}, run_id="r")


def test_load_rejects_missing_bad_and_foreign_files(tmp_path: Path) -> None:
    records, cats = _records()
    good = tmp_path / "good.json"
    good.write_text(build_certification(records, cats, run_id="r").dumps())
    assert load_certification(good)["run_id"] == "r"
    cases = {
        "missing.json": None,
        "bad.json": "{not json",
        "foreign.json": json.dumps({"schema": "other/1", "results": []}),
        "list.json": "[1, 2]",
        "damaged.json": json.dumps({"schema": SCHEMA_ID, "results": [{"dialect": "x"}]}),
        "binary.json": b"\xff\xfe\x00",
    }
    for name, content in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        with pytest.raises(UserError) as info:
            load_certification(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message
    with pytest.raises(UserError, match="is a directory"):
        load_certification(tmp_path)
