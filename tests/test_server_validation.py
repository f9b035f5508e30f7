"""The fast path of request validation (fastjsonschema) against the exact one.

A body the compiled check accepts is accepted without running the OAS 3.0 validator,
so the two must agree on accept/reject: a body the exact validator refuses must never
get through, and one it accepts should not be sent down the slow path needlessly.
Bodies come from the specs themselves (Schemathesis, positive and negative), from the
suite's own generator, and from one-change mutations of both.
"""

from __future__ import annotations

import base64
import copy
import random
import re
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core import NOT_SET

from brokercert import catalog
from brokercert.datagen import RunData
from brokercert.server._validation import (
    _LINEAR_FORMS,
    FORMATS,
    Invalid,
    OperationSchema,
    _validator,
    fast_accepts,
    fast_schema,
    fast_validator,
    first_problem,
    operation_schemas,
)

DIALECTS = ("alpaca", "buildmarkets")
EXAMPLES = 40  # per operation and generation mode; each example also yields mutants
MUTANTS = 3

_ODD_VALUES: list[Any] = [None, 0, -1, 1.5, True, False, "", "x", "2024-02-30", "a@b",
                          "2024-01-01T00:00:00", "00000000-0000-0000-0000-00000000000g",
                          [], {}, ["x"], {"x": 1}]


@cache
def _schemas(dialect: str) -> dict[tuple[str, str], OperationSchema]:
    return operation_schemas(catalog.load(dialect).spec)


@cache
def _st_schema(dialect: str) -> Any:
    return schemathesis.openapi.from_path(str(catalog.load(dialect).spec_path))


def _body_operations() -> list[Any]:
    return [pytest.param(d, m, p, id=f"{d}-{m}-{p}")
            for d in DIALECTS for (m, p), op in _schemas(d).items() if op.body is not None]


def _slow_accepts(validator: Any, instance: Any, location: str = "body") -> bool:
    return first_problem(validator, instance, location) is None


def _agree(validator: Any, fast: Any, instance: Any) -> None:
    slow = _slow_accepts(validator, instance)
    assert fast_accepts(fast, instance) == slow, (slow, instance)


def _mutate(body: Any, rng: random.Random) -> Any:
    """``body`` with one thing changed: a member dropped or added, a value replaced by
    one of another type, or a string slightly altered."""
    body = copy.deepcopy(body)
    spots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k in node:
                spots.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                spots.append((node, i))
                walk(node[i])

    walk(body)
    if not spots:
        return rng.choice(_ODD_VALUES)
    parent, key = rng.choice(spots)
    action = rng.randrange(6)
    value = parent[key]
    if action == 0 and isinstance(parent, dict):
        del parent[key]
    elif action == 1 and isinstance(parent, dict):
        parent["zz_unknown"] = rng.choice(_ODD_VALUES)
    elif action in (2, 3) and isinstance(value, str):
        parent[key] = rng.choice([value + "\n", value[:-1], value + "=", value.upper(),
                                  value.lower(), " " + value, value * 2, ""])
    elif action == 4 and isinstance(value, (int, float)) and not isinstance(value, bool):
        parent[key] = rng.choice([value - 1, -value, value + 0.5, float(value), str(value)])
    else:
        parent[key] = rng.choice(_ODD_VALUES)
    return body


def _mutants(body: Any, seed: int, n: int = MUTANTS) -> Iterator[Any]:
    rng = random.Random(seed)
    for _ in range(n):
        yield _mutate(body, rng)


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


# -- differential: every operation with a body, both dialects --------------------------------


@pytest.mark.parametrize(("dialect", "method", "path"), _body_operations())
def test_fast_and_exact_validation_agree_on_generated_bodies(dialect: str, method: str,
                                                             path: str) -> None:
    op = _schemas(dialect)[(method, path)]
    assert op.fast_body is not None, "every operation of the specs has a fast path"
    operation = _st_schema(dialect)[path][method]
    seen = {"accepted": 0, "refused": 0}

    def check(body: Any, seed: int) -> None:
        for candidate in (body, *_mutants(body, seed)):
            _agree(op.body, op.fast_body, candidate)
            seen["accepted" if fast_accepts(op.fast_body, candidate) else "refused"] += 1

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @settings(max_examples=EXAMPLES, database=None, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            if case.body is not NOT_SET and _is_json(case.body):
                check(case.body, hash(repr(case.body)) & 0xFFFF)

        run()
    if (method, path) == ("POST", "/v1/accounts"):
        data = RunData("validation")
        for i in range(40):
            body = data.create_body(dialect)
            assert fast_accepts(op.fast_body, body)
            check(body, i)
    assert seen["accepted"] and seen["refused"], seen


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_refused_body_gets_exactly_the_problem_of_the_exact_validator(dialect: str) -> None:
    op = _schemas(dialect)[("POST", "/v1/accounts")]
    data = RunData("problems")
    refused = 0
    for i in range(60):
        for body in _mutants(data.create_body(dialect), i):
            expected = first_problem(op.body, body, "body")
            if expected is None:
                op.validate_body(body)
                continue
            refused += 1
            with pytest.raises(Invalid) as caught:
                op.validate_body(body)
            assert caught.value.problem == expected
    assert refused > 50


@pytest.mark.parametrize("dialect", DIALECTS)
def test_query_parameters_agree(dialect: str) -> None:
    op = _schemas(dialect)[("GET", "/v1/accounts")]
    values: list[Any] = ["", "x", "2024-01-01", "2024-02-30", "2024-01-01T00:00:00Z",
                         "2024-01-01t00:00:00z", "2024-01-01T00:00:00", "2024-01-01\n",
                         "asc", "desc", "created_at:asc", "APPROVED", "approved", 0, 1, -1,
                         25, 1.5, True, None, [], ["APPROVED"], ["contact", "documents"],
                         ["contact", "nope"], [1]]
    for p in op.query:
        assert p.fast is not None, p.name
        for value in values:
            expected = first_problem(p.validator, value, "query", (p.name,)) is None
            assert fast_accepts(p.fast, value) == expected, (p.name, value)


# -- units: what the translation has to get exactly right ------------------------------------


def _pair(schema: dict[str, Any]) -> tuple[Any, Any]:
    fast = fast_validator(schema)
    assert fast is not None, schema
    return _validator(schema), fast


def test_nullable_widens_only_the_type_of_its_own_schema() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "nullable": True},
        "b": {"type": "string", "nullable": True, "enum": ["x"]},
        "c": {"type": "string", "nullable": True, "enum": ["x", None]},
        "d": {"type": "integer"},
        "e": {"nullable": True},
        "f": {"type": "string", "nullable": False, "format": "date", "minLength": 3},
        "g": {"allOf": [{"type": "string"}], "nullable": True},
        "h": {"type": "array", "nullable": True, "items": {"type": "integer", "nullable": True}},
    }}
    assert fast_schema(schema)["properties"]["a"] == {"type": ["string", "null"]}
    assert "type" not in fast_schema(schema)["properties"]["e"]
    slow, fast = _pair(schema)
    for name in "abcdefgh":
        values: list[Any] = [None, "x", "y", "2024-01-01", 1, 1.0, True, [None, 1], [1.5], {}]
        for value in values:
            _agree(slow, fast, {name: value})
    assert fast_accepts(fast, {"a": None}) and not fast_accepts(fast, {"b": None})
    assert fast_accepts(fast, {"c": None}) and not fast_accepts(fast, {"d": None})


def test_integers_numbers_and_booleans_are_told_apart() -> None:
    schema = {"type": "object", "properties": {
        "i": {"type": "integer", "minimum": 1, "maximum": 10},
        "n": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
        "b": {"type": "boolean"},
        "s": {"enum": ["1", "true"]},
        "m": {"minimum": 1},
    }}
    slow, fast = _pair(schema)
    values: list[Any] = [0, 1, 10, 11, 1.0, 0.5, 0.0, -0.0, True, False, "1", "true",
                         float("nan"), float("inf"), 10**30, None]
    for name in "inbsm":
        for value in values:
            _agree(slow, fast, {name: value})


_FORMAT_SAMPLES: dict[str, list[str]] = {
    "date": ["2024-02-29", "2023-02-29", "2024-13-01", "2024-1-01", "2024-01-01\n",
             "2024-01-01T00:00:00Z", "20240101", "\uff12\uff10\uff12\uff14-01-01",
             "2024-01-01 ", "0000-01-01", "9999-12-31", ""],
    "date-time": ["2024-01-01T00:00:00Z", "2024-01-01t00:00:00z", "2024-01-01T00:00:00",
                  "2024-01-01T23:59:60Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00.123+05:30",
                  "2024-01-01T00:00:00+0530", "2024-02-30T00:00:00Z", "2024-01-01 00:00:00Z",
                  "2024-01-01T00:00:00Z\n", "2024-01-01", ""],
    "email": ["a@example.com", "a", "@", "a@", "a@b@c", " a@b ", ""],
    "uuid": ["12345678-1234-4234-8234-123456789abc", "12345678123442348234123456789abc",
             "12345678-1234-4234-8234-123456789ABC", "{12345678-1234-4234-8234-123456789abc}",
             "urn:uuid:12345678-1234-4234-8234-123456789abc", "12345678-1234-4234-8234-12345678",
             "1234567-81234-4234-8234-123456789abc", ""],
    "byte": ["", "QQ==", "QUI=", "QUJD", "QQ", "QQ=", "Q===", "QQ==\n", "QU JD", "QUJD\n",
             "-_-_", "QQ==QQ=="],
    "ipv4": ["1.2.3.4", "256.1.1.1", "1.2.3", "01.2.3.4", ""],
}


@pytest.mark.parametrize("name", sorted(_FORMAT_SAMPLES))
def test_formats_are_judged_by_the_same_checker(name: str) -> None:
    assert name in FORMATS.checkers
    values: list[Any] = [*_FORMAT_SAMPLES[name], None, 1, 2.5, True, [], {}]
    for schema in ({"format": name}, {"type": "string", "format": name},
                   {"type": "string", "nullable": True, "format": name}):
        slow, fast = _pair(schema)
        for value in values:
            _agree(slow, fast, value)


def test_every_string_format_leaves_other_values_alone() -> None:
    """fastjsonschema calls a format on strings only: right for every format it is given."""
    for name in FORMATS.checkers:
        schema = {"format": name}
        fast = fast_validator(schema)
        if fast is None:
            assert name in ("int32", "int64", "float", "double")
            continue
        values: list[Any] = [None, 0, 2**40, -1.5, True, [], {}, ["x"]]
        for value in values:
            _agree(_validator(schema), fast, value)


def test_unknown_formats_are_ignored_as_the_exact_validator_ignores_them() -> None:
    slow, fast = _pair({"type": "string", "format": "no-such-format"})
    _agree(slow, fast, "anything")
    assert fast_accepts(fast, "anything")


def test_patterns_are_ecma_anchored_and_the_base64_ones_linear() -> None:
    rng = random.Random(11)
    alphabet = "AZaz09+/=-\n "
    samples = {base64.b64encode(rng.randbytes(n)).decode() for n in range(12)}
    samples |= {"".join(rng.choice(alphabet) for _ in range(rng.randrange(14)))
                for _ in range(3000)}
    samples |= {s + "\n" for s in list(samples)[:200]}
    for pattern in [*_LINEAR_FORMS, "^[A-Z]{2}$", "^[0-9]{5}(?:-?[0-9]{4})?$", "a$", "^a",
                    "[$]x"]:
        slow, fast = _pair({"type": "string", "pattern": pattern, "format": "byte"})
        for s in [*samples, "AB", "AB\n", "$x", "ba", "a\n"]:
            _agree(slow, fast, s)
    # a pattern and a format on the same schema are both checked
    slow, fast = _pair({"type": "string", "pattern": "^[0-9-]+$", "format": "date"})
    for s in ("2024-01-01", "2024-02-30", "2024-01-0x"):
        _agree(slow, fast, s)


def test_a_33_mb_document_is_judged_fast_and_the_same_way() -> None:
    for dialect, path in (("alpaca", "/v1/accounts/{account_id}/documents/upload"),
                          ("buildmarkets", "/v1/accounts/{accountId}/documents/upload")):
        op = _schemas(dialect)[("POST", path)]
        doc: dict[str, Any] = {"document_type": "identity_verification",
                               "mime_type": "application/pdf",
                               "content": "A" * 33_554_436}
        body: Any = [doc] if dialect == "alpaca" else doc
        start = time.perf_counter()
        assert fast_accepts(op.fast_body, body)
        assert time.perf_counter() - start < 2.0
        assert first_problem(op.body, body, "body") is None
        op.validate_body(body)
        for content in ("A" * 33_554_435 + "=", "A" * 33_554_434 + "==", "A" * 33_554_434 + "=A",
                        "A" * 33_554_436 + "\n", "A" * 33_554_435):
            doc["content"] = content
            expected = first_problem(op.body, body, "body")
            assert fast_accepts(op.fast_body, body) == (expected is None), content[-3:]
            if expected is not None:
                with pytest.raises(Invalid) as caught:
                    op.validate_body(body)
                assert caught.value.problem == expected


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"id": {"type": "string", "readOnly": True}}},
    {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    {"not": {"type": "string"}},
    {"anyOf": [{"type": "object"}], "discriminator": {"propertyName": "kind"}},
    {"type": "integer", "format": "int32"},
    {"type": ["string", "null"]},
    {"type": "null"},
    {"type": "array", "items": [{"type": "string"}]},
    {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
    {"enum": [["a"]]},
    {"uniqueItems": True},
    {"type": "string", "pattern": "("},
])
def test_what_cannot_be_translated_exactly_has_no_fast_path(schema: dict[str, Any]) -> None:
    assert fast_validator(schema) is None
    assert not fast_accepts(None, "anything")


def test_annotations_are_dropped_and_keywords_kept() -> None:
    schema = {"type": "object", "description": "d", "x-brokercert-source": "s",
              "required": ["a"], "additionalProperties": False,
              "properties": {"a": {"type": "string", "default": "z", "example": "e",
                                   "readOnly": False, "writeOnly": True, "minLength": 2}}}
    translated = fast_schema(schema)
    assert translated["properties"]["a"] == {"type": "string", "minLength": 2}
    slow, fast = _pair(schema)
    bodies: list[Any] = [{"a": "xy"}, {"a": "x"}, {}, {"a": "xy", "b": 1}, {"b": 1}, [], "a"]
    for body in bodies:
        _agree(slow, fast, body)
    body = {"b": 1}
    assert not fast_accepts(fast, body) and body == {"b": 1}  # no defaults filled in
    assert re.fullmatch(r"brokercert-\d+", fast_schema({"format": "date"})["format"])
