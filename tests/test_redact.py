"""Redaction: nothing secret or personal survives, evidence stays comparable, 40 MB is fine."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from brokercert.redact import REDACTED, Redactor, blob

KEY, SECRET = "bm_key_abc123", "bm_secret_xyz789"
BASIC = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()


@pytest.fixture
def redactor() -> Redactor:
    return Redactor([KEY, SECRET])


def assert_clean(text: str) -> None:
    for needle in (KEY, SECRET, BASIC, "123456789", "900-12-3456"):
        assert needle not in text


def test_curl_command(redactor: Redactor) -> None:
    body = json.dumps({"identity": {"tax_id": "123456789"}, "content": "QUJD" * 100})
    curl = (
        f"curl -X POST -H 'Authorization: Basic {BASIC}' -H 'X-API-Key: {KEY}' "
        f"-H 'X-API-Secret: {SECRET}' -H 'Content-Type: application/json' "
        f"-d '{body}' http://127.0.0.1:8000/v1/accounts"
    )
    out = redactor.text(curl)
    assert_clean(out)
    assert "-H 'Authorization: [redacted]'" in out
    assert "-H 'X-API-Key: [redacted]'" in out
    assert "Content-Type: application/json" in out
    assert f'"tax_id": "{REDACTED}"' in out
    assert f'"content": "{blob("QUJD" * 100)}"' in out
    assert out.endswith("http://127.0.0.1:8000/v1/accounts")


def test_raw_http_dump(redactor: Redactor) -> None:
    dump = (
        "POST /v1/accounts HTTP/1.1\r\n"
        f"authorization: Basic {BASIC}\r\n"
        "X-API-KEY: something-else\r\n"
        "Cookie: session=abc\r\n"
        "Host: example.com\r\n\r\n"
        "applicant SSN 900-12-3456 submitted"
    )
    out = redactor.text(dump)
    assert_clean(out)
    assert "something-else" not in out and "session=abc" not in out
    assert "Host: example.com\r\n" in out
    assert "applicant SSN [redacted] submitted" in out


def test_secrets_anywhere_and_escaped_spellings() -> None:
    secret = "s3cr/t+key"
    r = Redactor(["id-1", secret])
    basic = base64.b64encode(b"id-1:" + secret.encode()).decode()
    text = f"k={secret} url=https://x/?s=s3cr%2Ft%2Bkey basic={basic}"
    out = r.text(text)
    assert secret not in out and "s3cr%2Ft%2Bkey" not in out and "id-1" not in out
    assert out.count(REDACTED) == 3


def test_url_userinfo(redactor: Redactor) -> None:
    assert redactor.text("GET https://alice:pw@host/v1") == f"GET https://{REDACTED}@host/v1"


def test_json_text_and_repr_forms(redactor: Redactor) -> None:
    text = json.dumps({"headers": {"X-API-Secret": "zzz"}, "identity": {"ssn": 123456789}})
    out = redactor.text(text)
    assert "zzz" not in out and "123456789" not in out
    assert json.loads(out)["identity"]["ssn"] == REDACTED
    pyrepr = str({"authorization": "Bearer tok", "foreign_tax_id": "AB12"})
    out = redactor.text(pyrepr)
    assert "tok" not in out and "AB12" not in out


def test_ssn_pattern_is_precise(redactor: Redactor) -> None:
    keep = "date 2024-01-15, uuid 3f2b1c4e-1234-4abc-9def-0123456789ab, 1234-56-7890"
    assert redactor.text(keep) == keep
    assert redactor.text("ssn:900-12-3456.") == f"ssn:{REDACTED}."


def test_headers(redactor: Redactor) -> None:
    out = redactor.headers(
        {"Authorization": "Basic x", "x-api-key": "k", "Content-Type": "application/json",
         "X-Note": f"made with {KEY}"}
    )
    assert out == {
        "Authorization": REDACTED, "x-api-key": REDACTED,
        "Content-Type": "application/json", "X-Note": f"made with {REDACTED}",
    }


def test_json_structure_is_copied_not_mutated(redactor: Redactor) -> None:
    doc = {
        "identity": {"tax_id": "123456789", "given_name": "Ann"},
        "documents": [{"content": "QUJD", "content_data": {"foreign_tax_id": "X1"}}],
        "kyc": {"id_number": 42},
        "note": f"key {KEY} ssn 900-12-3456",
        "empty_tax": None,
    }
    before = json.dumps(doc)
    out = redactor.json(doc)
    assert json.dumps(doc) == before
    assert out["identity"] == {"tax_id": REDACTED, "given_name": "Ann"}
    assert out["documents"][0]["content"] == blob("QUJD")
    assert out["documents"][0]["content_data"]["foreign_tax_id"] == REDACTED
    assert out["kyc"]["id_number"] == REDACTED
    assert out["note"] == f"key {REDACTED} ssn {REDACTED}"
    assert_clean(json.dumps(out))


def test_blob_placeholder_has_length_and_digest() -> None:
    value = "QUJD" * 64
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    assert blob(value) == f"<base64 256 chars sha256={digest}…>"
    r = Redactor()
    # a long run anywhere is a blob; a short one is left alone; same content, same text
    assert r.text(f"x {value} y") == f"x {blob(value)} y"
    assert r.text("x QUJD y") == "x QUJD y"
    as_json = json.dumps({"content": blob(value)}, ensure_ascii=False)
    assert r.text(json.dumps({"content": value})) == as_json
    assert r.json({"content": value}) == {"content": blob(value)}


def test_added_secrets_apply_from_then_on() -> None:
    r = Redactor()
    assert r.text("tax 987654321") == "tax 987654321"
    r.add("987654321")
    assert r.text("tax 987654321") == f"tax {REDACTED}"
    assert "987654321" in r.secrets


def test_many_secrets_use_one_pass_and_keep_key_and_basic_token() -> None:
    """A run adds a tax id per account; the key, secret and Basic token stay covered."""
    r = Redactor([KEY, SECRET])
    tax_ids = [f"9{n * 7919 % 10**8:08d}" for n in range(1, 3001)]
    r.add(*tax_ids)
    r.add("x-" * 250)  # long secrets are handled outside the trie
    text = f"{tax_ids[0]} {tax_ids[-1]} {tax_ids[5][:-1]} {KEY} {SECRET} {BASIC} {'x-' * 250}"
    out = r.text(text)
    assert out == " ".join([REDACTED] * 2 + [tax_ids[5][:-1]] + [REDACTED] * 4)
    big = "1234567890 " * 3_700_000
    assert len(r.text(big)) == len(big)


@pytest.mark.parametrize(
    "shape",
    ["json_upload", "bare_base64", "words", "short_runs", "quotes", "digits"],
)
def test_40_mb_inputs_complete_and_shrink_where_blobs(redactor: Redactor, shape: str) -> None:
    """Linear patterns: 40 MB of hostile shapes complete; blob-shaped input becomes tiny."""
    size = 40_000_000
    text = {
        "json_upload": '[{"document_type": "identity_verification", "content": "'
        + "QUJD" * (size // 4)
        + '", "mime_type": "application/pdf"}]',
        "bare_base64": "QUJD" * (size // 4),
        "words": "ab.cd-ef authorization 12 " * (size // 26),
        "short_runs": ("a" * 255 + " ") * (size // 256),
        "quotes": "\"'" * (size // 2),
        "digits": "1234567-89-" * (size // 11),
    }[shape]
    out = redactor.text(text)
    if shape in ("json_upload", "bare_base64"):
        assert len(out) < 200
        assert "<base64 40000000 chars sha256=" in out
    else:
        assert len(out) <= len(text) + 1000
    del text, out
