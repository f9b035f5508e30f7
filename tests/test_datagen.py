"""Test data: valid per the shipped specs, unique per run, invalid variants, cheap big uploads."""

from __future__ import annotations

import base64
import binascii
import json
import re
import tracemalloc
from typing import Any

import pytest
from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker

from brokercert import catalog
from brokercert.datagen import (
    MISSING,
    RunData,
    base64_of_decoded,
    base64_text,
    get,
    limit_upload_bytes,
    upload_body_bytes,
    with_value,
    without,
)
from brokercert.redact import Redactor

RUN_ID = "20261123T190000Z-abc123"


def request_schema(dialect: str, operation: str) -> OAS30WriteValidator:
    """Validator for the JSON request body of a profile operation, from the shipped spec."""
    cat = catalog.load(dialect)
    op = cat.profile.operation(operation)
    spec_op = cat.spec["paths"][op.path][op.method.lower()]
    body_schema = spec_op["requestBody"]["content"]["application/json"]["schema"]
    schema = {"components": cat.spec["components"], **body_schema}
    return OAS30WriteValidator(schema, format_checker=oas30_format_checker)


def errors(dialect: str, operation: str, body: Any) -> list[str]:
    return [e.message for e in request_schema(dialect, operation).iter_errors(body)]


@pytest.fixture
def data() -> RunData:
    return RunData(RUN_ID)


DIALECTS = ["alpaca", "buildmarkets"]


# -- run-unique values ----------------------------------------------------------------


def test_emails_are_unique_tagged_and_reserved(data: RunData) -> None:
    emails = [data.email() for _ in range(500)]
    assert len(set(emails)) == 500
    assert emails[0] == "bc-20261123t190000z-abc123-1@example.com"
    assert all(e.startswith(data.email_prefix) and e.endswith("@example.com") for e in emails)
    other = RunData("another run!")
    assert other.email().startswith("bc-another-run-")
    with pytest.raises(ValueError):
        RunData("---")


def test_alpaca_tax_ids_are_unissued_ssns(data: RunData) -> None:
    ids = [data.tax_id("alpaca") for _ in range(3000)]
    assert len(set(ids)) == 3000
    for tax_id in ids:
        assert re.fullmatch(r"9\d\d-\d\d-\d{4}", tax_id), tax_id
        assert tax_id[4:6] != "00" and tax_id[-4:] != "0000"


def test_buildmarkets_tax_ids_avoid_triggers_unless_asked(data: RunData) -> None:
    ids = [data.tax_id("buildmarkets") for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"9\d{8}", t) for t in ids)
    assert not [t for t in ids if t[-4:] in {"0001", "0002", "0003"}]
    for trigger, suffix in (("approve", "0001"), ("reject", "0002"), ("manual_review", "0003")):
        tax_id = data.tax_id("buildmarkets", trigger=trigger)
        assert re.fullmatch(r"9\d{4}" + suffix, tax_id)
    with pytest.raises(ValueError, match="approve"):
        data.tax_id("buildmarkets", trigger="explode")
    with pytest.raises(ValueError, match="no tax id trigger"):
        data.tax_id("alpaca", trigger="approve")


def test_issued_tax_ids_reach_the_redactor() -> None:
    redactor = Redactor()
    data = RunData(RUN_ID, on_sensitive=redactor.add)
    body = data.create_body("buildmarkets")
    tax_id = body["identity"]["tax_id"]
    assert tax_id in redactor.secrets
    said = redactor.text(f"server said: {tax_id} is invalid")
    assert said == "server said: [redacted] is invalid"
    w8 = data.document("buildmarkets", "w8ben")
    assert w8["content_data"]["foreign_tax_id"] in redactor.secrets


def test_status_overrides_come_from_profile_triggers(data: RunData) -> None:
    assert data.status_overrides("alpaca", "APPROVED") == {
        "additional_information": "/fixtures/status=APPROVED/fixtures/"
    }
    approve = data.status_overrides("buildmarkets", "ACTIVE")
    assert list(approve) == ["identity.tax_id"] and approve["identity.tax_id"].endswith("0001")
    assert data.status_overrides("buildmarkets", "REJECTED")["identity.tax_id"].endswith("0002")
    assert data.status_overrides("buildmarkets", "APPROVAL_PENDING")["identity.tax_id"].endswith(
        "0003"
    )
    body = data.create_body("buildmarkets", **data.status_overrides("buildmarkets", "ACTIVE"))
    assert body["identity"]["tax_id"].endswith("0001")
    assert errors("buildmarkets", "create_account", body) == []
    with pytest.raises(ValueError, match="no sandbox trigger"):
        data.status_overrides("buildmarkets", "DISABLED")


# -- valid bodies ---------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_create_body_is_valid_and_fresh(data: RunData, dialect: str) -> None:
    first, second = data.create_body(dialect), data.create_body(dialect)
    assert errors(dialect, "create_account", first) == []
    assert first["contact"]["email_address"] != second["contact"]["email_address"]
    assert first["identity"]["tax_id"] != second["identity"]["tax_id"]
    flags = [v for v in first.get("disclosures", {}).values() if isinstance(v, bool)]
    assert flags and not any(flags)  # a true disclosure sends the account to review


@pytest.mark.parametrize("dialect", DIALECTS)
def test_create_body_overrides(data: RunData, dialect: str) -> None:
    body = data.create_body(
        dialect,
        contact__city="Boston",
        **{"identity.middle_name": "Q", "agreements[0].ip_address": "192.0.2.99"},
        identity__country_of_citizenship=MISSING,
    )
    assert body["contact"]["city"] == "Boston"
    assert body["identity"]["middle_name"] == "Q"
    assert body["agreements"][0]["ip_address"] == "192.0.2.99"
    assert "country_of_citizenship" not in body["identity"]
    assert errors(dialect, "create_account", body) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_update_body_is_valid(data: RunData, dialect: str) -> None:
    assert errors(dialect, "update_account", data.update_body(dialect)) == []


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("document_type", ["identity_verification", "w8ben", "cip_result"])
def test_documents_are_valid_uploads(data: RunData, dialect: str, document_type: str) -> None:
    doc = data.document(dialect, document_type, n_bytes=100)
    body = data.upload_body(dialect, doc)
    assert errors(dialect, "upload_documents", body) == []
    if document_type != "w8ben":
        assert len(base64.b64decode(doc["content"], validate=True)) == 100
    else:
        assert "content" not in doc and doc["content_data"]["foreign_tax_id"]


def test_upload_body_shapes(data: RunData) -> None:
    ten = [data.document("alpaca", n_bytes=10) for _ in range(10)]
    assert errors("alpaca", "upload_documents", data.upload_body("alpaca", *ten)) == []
    assert errors("alpaca", "upload_documents", ten + ten[:1])  # 11 is over maxItems
    assert isinstance(data.upload_body("alpaca"), list)
    assert isinstance(data.upload_body("buildmarkets"), dict)
    with pytest.raises(ValueError, match="exactly one"):
        data.upload_body("buildmarkets", *ten[:2])
    png = data.document("buildmarkets", mime_type="image/png", sub_type=None)
    assert png["mime_type"] == "image/png" and "document_sub_type" not in png


def test_cip_body_is_valid(data: RunData) -> None:
    body = data.cip_body()
    assert errors("alpaca", "submit_cip", body) == []
    assert errors("alpaca", "submit_cip", data.cip_body(provider_name=["nobody"]))


def test_unknown_dialect(data: RunData) -> None:
    with pytest.raises(ValueError, match="known: alpaca, buildmarkets"):
        data.create_body("robinhood")


# -- invalid variants -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "path"),
    [
        ("alpaca", "contact.email_address"),
        ("alpaca", "agreements[0].signed_at"),
        ("alpaca", "disclosures"),
        ("buildmarkets", "contact.email_address"),
        ("buildmarkets", "identity.tax_id"),
        ("buildmarkets", "investment_profile.risk_tolerance"),
        ("buildmarkets", "agreements"),
    ],
)
def test_without_breaks_exactly_one_thing(data: RunData, dialect: str, path: str) -> None:
    body = data.create_body(dialect)
    before = json.dumps(body)
    broken = without(body, path)
    assert json.dumps(body) == before  # the original is untouched
    with pytest.raises(KeyError):
        get(broken, path)
    found = errors(dialect, "create_account", broken)
    assert len(found) == 1 and "required" in found[0]


@pytest.mark.parametrize(
    ("dialect", "path", "value"),
    [
        ("alpaca", "identity.date_of_birth", "01/02/1990"),
        ("alpaca", "identity.country_of_tax_residence", "US"),
        ("alpaca", "contact.street_address", ["a", "b", "c", "d"]),
        ("buildmarkets", "identity.date_of_birth", "01/02/1990"),
        ("buildmarkets", "identity.tax_id", "1234567890"),
        ("buildmarkets", "contact.state", "Texas"),
        ("buildmarkets", "agreements[0].signed_at", "yesterday"),
        ("buildmarkets", "investment_profile.investment_objective", "get_rich"),
    ],
)
def test_with_value_makes_the_spec_refuse(
    data: RunData, dialect: str, path: str, value: Any
) -> None:
    body = data.create_body(dialect)
    broken = with_value(body, path, value)
    assert get(broken, path) == value and get(body, path) != value
    assert errors(dialect, "create_account", broken)


def test_paths() -> None:
    doc: dict[str, Any] = {"a": [{"b": 1}, {"b": 2}]}
    assert get(doc, "a[1].b") == 2
    assert with_value(doc, "a[2]", {"b": 3})["a"][2] == {"b": 3}  # append at the end
    assert with_value(doc, "x.y[0]", 5) == {"a": doc["a"], "x": {"y": [5]}}
    assert without(doc, "a[0]") == {"a": [{"b": 2}]}
    for bad in ("", "a..b", ".a", "a.", "a[x]", "a]"):
        with pytest.raises(ValueError, match="bad path"):
            get(doc, bad)
    for missing in ("a[5]", "a[0].c", "z"):
        with pytest.raises(KeyError):
            without(doc, missing)
    with pytest.raises(KeyError):
        with_value(doc, "a[7]", 1)


# -- big payloads ---------------------------------------------------------------------


@pytest.mark.parametrize("n_chars", [0, 4, 8, 4092, 4096, 4100, 12_288, 100_000])
def test_base64_text_exact_and_valid(n_chars: int) -> None:
    text = base64_text(n_chars)
    assert len(text) == n_chars
    assert len(base64.b64decode(text, validate=True)) == n_chars // 4 * 3


@pytest.mark.parametrize("n_bytes", [*range(0, 12), 3071, 3072, 3073, 10_000_000])
def test_base64_of_decoded_exact(n_bytes: int) -> None:
    text = base64_of_decoded(n_bytes)
    assert len(text) % 4 == 0
    assert len(base64.b64decode(text, validate=True)) == n_bytes


def test_base64_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        base64_text(6)
    with pytest.raises(ValueError):
        base64_of_decoded(-1)
    with pytest.raises(ValueError, match="exactly one"):
        upload_body_bytes("alpaca")
    with pytest.raises(ValueError, match="multiple of 4"):
        upload_body_bytes("alpaca", encoded_chars=5)
    with pytest.raises(binascii.Error):  # sanity: the checker itself catches bad text
        base64.b64decode("abc", validate=True)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_small_upload_bytes_are_a_valid_request(dialect: str) -> None:
    raw = upload_body_bytes(dialect, decoded_bytes=1000)
    body = json.loads(raw)
    assert errors(dialect, "upload_documents", body) == []
    doc = body[0] if dialect == "alpaca" else body
    assert len(base64.b64decode(doc["content"], validate=True)) == 1000


def _peak_while(fn: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_large_payloads_are_built_with_one_allocation() -> None:
    """32 MB text and a 34 MB request body cost about their own size, not several copies."""
    n = 33_554_436
    text, peak = _peak_while(lambda: base64_text(n))
    assert len(text) == n and peak < n * 1.1
    del text
    raw, peak = _peak_while(lambda: upload_body_bytes("alpaca", encoded_chars=n))
    assert n < len(raw) < n + 200 and peak < len(raw) * 1.1
    assert raw.startswith(b'[{"document_type":"identity_verification"') and raw.endswith(b'"}]')
    del raw


@pytest.mark.parametrize("dialect", DIALECTS)
def test_limit_bodies_sit_on_the_profile_boundaries(dialect: str) -> None:
    limit = catalog.load(dialect).profile.limit("document_content")
    for accept in (True, False):
        raw = limit_upload_bytes(dialect, limit, accept=accept)
        size = limit.accept_at if accept else limit.reject_at
        body = json.loads(raw)
        content = (body[0] if dialect == "alpaca" else body)["content"]
        measured = len(content) if limit.measured == "encoded" else len(base64.b64decode(content))
        assert measured == size
        del raw, body, content
    if dialect == "alpaca":
        with pytest.raises(ValueError, match="counts items"):
            limit_upload_bytes(dialect, catalog.load(dialect).profile.limit(
                "documents_per_upload"), accept=True)
