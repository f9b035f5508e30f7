"""case_cache: generated cases stored after a passing run and sent again by later runs of
the same spec, without the credentials ever reaching the disk."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from brokercert import catalog, fuzzing
from brokercert.case_cache import CachePolicy, CaseCache, cache_policy, cases_dir
from brokercert.depth import preset
from brokercert.target import Credentials, build_target

ALPACA = catalog.load("alpaca")


def _auth(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def _schema() -> Any:
    target = build_target("http://127.0.0.1:9/alpaca", ALPACA.profile, Credentials("k", "s"))
    return fuzzing.load_schema(ALPACA, target, preset("quick"), 5.0)


def _cache(folder: Path, schema: Any, key: str, secret: str, **policy: Any) -> CaseCache:
    return CaseCache(folder, schema, _auth(key, secret), CachePolicy(**policy),
                     credentials=(key, secret))


def _record_one_case_per_operation(cache: CaseCache, headers: dict[str, str]) -> None:
    for label, operation in cache.operations.items():
        case = operation.Case(headers=dict(headers))
        cache.record(case)
        cache.commit(label)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", CachePolicy()),
        ("off", CachePolicy(read=False, write=False)),
        ("refresh", CachePolicy(read=False)),
        ("3", CachePolicy(max_reuse=3)),
    ],
)
def test_the_policy_comes_from_the_environment(raw: str, expected: CachePolicy) -> None:
    assert cache_policy({"BROKERCERT_CASE_CACHE": raw}) == expected


def test_a_wrong_policy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="BROKERCERT_CASE_CACHE"):
        cache_policy({"BROKERCERT_CASE_CACHE": "sometimes"})


def test_each_depth_has_its_own_store() -> None:
    assert cases_dir(ALPACA, preset("quick")) != cases_dir(ALPACA, preset("standard"))


def test_stored_cases_come_back_with_the_current_runs_credentials(tmp_path: Path) -> None:
    schema = _schema()
    first = _cache(tmp_path, schema, "first-key-123", "first-secret-456")
    assert not first.replayable  # nothing stored yet: generate
    _record_one_case_per_operation(first, _auth("first-key-123", "first-secret-456"))
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"first-secret-456" not in stored
    assert _auth("first-key-123", "first-secret-456")["Authorization"].encode() not in stored

    second = _cache(tmp_path, schema, "second-key-789", "second-secret-012")
    assert second.replayable
    for label in second.labels:
        (case,) = list(second.cases(label))
        assert case.operation.label == label
        assert case.headers == _auth("second-key-789", "second-secret-012")


def test_stored_cases_are_used_at_most_max_reuse_times(tmp_path: Path) -> None:
    schema = _schema()
    _record_one_case_per_operation(_cache(tmp_path, schema, "key-123456", "secret-123456"),
                                   _auth("key-123456", "secret-123456"))
    assert _cache(tmp_path, schema, "key-123456", "secret-123456", max_reuse=2).replayable
    assert _cache(tmp_path, schema, "key-123456", "secret-123456", max_reuse=2).replayable
    assert not _cache(tmp_path, schema, "key-123456", "secret-123456", max_reuse=2).replayable


def test_a_run_with_a_failed_operation_stores_no_usable_set(tmp_path: Path) -> None:
    schema = _schema()
    cache = _cache(tmp_path, schema, "key-123456", "secret-123456")
    labels = list(cache.operations)
    for label in labels[1:]:
        cache.record(cache.operations[label].Case())
        cache.commit(label)
    cache.record(cache.operations[labels[0]].Case())
    cache.discard(labels[0])
    assert not _cache(tmp_path, schema, "key-123456", "secret-123456").replayable


def test_a_credential_that_leaked_into_a_case_keeps_the_operation_off_disk(
    tmp_path: Path,
) -> None:
    schema = _schema()
    cache = _cache(tmp_path, schema, "key-123456", "secret-123456")
    label, operation = next(iter(cache.operations.items()))
    cache.record(operation.Case(query={"note": "secret-123456"}))
    cache.commit(label)
    assert not any(tmp_path.iterdir())
