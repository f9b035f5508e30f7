"""The alpaca dialect of the reference server over real HTTP; every response is checked
against specs/alpaca/<version>/openapi.yaml with openapi-core."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server_support import (
    PNG,
    alpaca_account,
    alpaca_document,
    client,
    running,
)

from brokercert.server import RunningServer
from brokercert.server._storage import Step, Storage

CLOSED = "ACCOUNT_CLOSED"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running(tmp_path_factory.mktemp("alpaca")) as srv:
        yield srv


@pytest.fixture()
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with client(server, "alpaca") as c:
        yield c


def create(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    r = api.post("/v1/accounts", json=alpaca_account(**overrides))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def error_code(r: httpx.Response) -> int:
    body = r.json()
    assert set(body) == {"code", "message"} and isinstance(body["message"], str)
    assert isinstance(body["code"], int) and len(str(body["code"])) == 8
    return int(body["code"])


# ------------------------------------------------------------------ create and read


def test_create_answers_200_with_the_bare_account(api: httpx.Client) -> None:
    account = create(api)
    assert account["status"] == "SUBMITTED" and account["currency"] == "USD"
    assert account["last_equity"] == "0" and account["account_number"].isdigit()
    assert account["disclosures"]["employment_status"] == "EMPLOYED"
    assert "tax_id" not in account["identity"] and "account" not in account
    # alpaca-py 0.44 parses every nested key present: none may be null (no trusted contact here)
    assert "trusted_contact" not in account
    assert all(account[k] is not None for k in ("contact", "identity", "disclosures",
                                                 "agreements", "documents"))
    read = api.get(f"/v1/accounts/{account['id']}").json()
    assert read["id"] == account["id"] and read["created_at"] == account["created_at"]
    assert read["contact"]["email_address"] == account["contact"]["email_address"]


@pytest.mark.parametrize("section", ["contact", "identity", "disclosures", "agreements"])
def test_create_without_a_required_section_is_422_and_opens_nothing(
    api: httpx.Client, section: str
) -> None:
    body = alpaca_account()
    del body[section]
    r = api.post("/v1/accounts", json=body)
    assert r.status_code == 422 and error_code(r) == 42210000
    if section != "contact":
        email = body["contact"]["email_address"]
        assert api.get("/v1/accounts", params={"query": email}).json() == []


@pytest.mark.parametrize("body", [b"{", b"[1]", b'"text"', b"null", b""])
def test_create_with_a_body_that_is_not_a_json_object_is_400(api: httpx.Client,
                                                             body: bytes) -> None:
    r = api.post("/v1/accounts", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and error_code(r) == 40010000


def test_create_with_another_content_type_is_400(api: httpx.Client) -> None:
    r = api.post("/v1/accounts", content=json.dumps(alpaca_account()),
                 headers={"content-type": "text/plain"})
    assert r.status_code == 400


@pytest.mark.parametrize(("part", "key", "value"), [
    ("identity", "tax_id_type", "SSN"),
    ("identity", "funding_source", ["lottery"]),
    ("identity", "date_of_birth", "1990-02-30"),
    ("identity", "date_of_birth", "12/04/1985"),
    ("contact", "country", "US"),
    ("disclosures", "employment_status", "Employed"),
])
def test_create_with_a_bad_value_is_422(api: httpx.Client, part: str, key: str,
                                        value: Any) -> None:
    body = alpaca_account()
    body[part][key] = value
    r = api.post("/v1/accounts", json=body)
    assert r.status_code == 422, r.text
    assert key in r.json()["message"]


def test_employment_status_is_accepted_in_either_case_and_answered_upper(
    api: httpx.Client,
) -> None:
    for given in ("student", "RETIRED"):
        body = alpaca_account()
        body["disclosures"]["employment_status"] = given
        assert create(api, **body)["disclosures"]["employment_status"] == given.upper()


def test_duplicate_email_is_409_whatever_its_case(api: httpx.Client) -> None:
    account = create(api)
    email = account["contact"]["email_address"]
    again = alpaca_account()
    again["contact"]["email_address"] = email.upper()
    r = api.post("/v1/accounts", json=again)
    assert r.status_code == 409 and error_code(r) == 40910000
    assert len(api.get("/v1/accounts", params={"query": email}).json()) == 1


def test_concurrent_creates_with_one_email_open_exactly_one_account(
    server: RunningServer,
) -> None:
    body = alpaca_account()
    with client(server, "alpaca") as c, ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: c.post("/v1/accounts", json=body).status_code,
                              range(20)))
    assert sorted(codes) == [200] + [409] * 19
    with client(server, "alpaca") as c:
        found = c.get("/v1/accounts", params={"query": body["contact"]["email_address"]})
    assert len(found.json()) == 1


def test_unknown_or_malformed_ids_are_404(api: httpx.Client) -> None:
    for path in ("/v1/accounts/00000000-0000-4000-8000-000000000000", "/v1/accounts/nope",
                 "/v1/accounts/00000000-0000-4000-8000-000000000000/cip",
                 "/v1/accounts/00000000-0000-4000-8000-000000000000/documents"):
        r = api.get(path)
        assert r.status_code == 404 and error_code(r) == 40410000


# ------------------------------------------------------------------ status


def test_default_path_is_submitted_approved_active_one_step_per_read(api: httpx.Client) -> None:
    account = create(api)
    seen = [api.get(f"/v1/accounts/{account['id']}").json()["status"] for _ in range(3)]
    assert [account["status"], *seen] == ["SUBMITTED", "APPROVED", "ACTIVE", "ACTIVE"]


@pytest.mark.parametrize("status", ["SUBMITTED", "ACTION_REQUIRED", "APPROVAL_PENDING",
                                    "APPROVED", "REJECTED", "ACTIVE", "DISABLED", CLOSED])
def test_fixture_brings_the_account_to_its_status(api: httpx.Client, status: str) -> None:
    account = create(api, additional_information=f"/fixtures/status={status}/fixtures/")
    assert account["status"] == "SUBMITTED"
    for _ in range(2):
        assert api.get(f"/v1/accounts/{account['id']}").json()["status"] == status


def test_status_follows_the_clock_when_kyc_delay_is_positive(tmp_path: Path) -> None:
    with running(tmp_path, kyc_delay=0.5) as srv, client(srv, "alpaca") as api:
        account = create(api)
        assert api.get(f"/v1/accounts/{account['id']}").json()["status"] == "SUBMITTED"
        time.sleep(1.1)
        assert api.get(f"/v1/accounts/{account['id']}").json()["status"] == "ACTIVE"


# ------------------------------------------------------------------ update


def test_update_changes_modifiable_fields(api: httpx.Client) -> None:
    account = create(api)
    change = {"contact": {"city": "Chicago", "street_address": ["2 New St", "Apt 4"]},
              "identity": {"given_name": "Robin"},
              "disclosures": {"employment_status": "retired"},
              "trusted_contact": {"given_name": "Sam", "family_name": "Doe",
                                  "phone_number": "+15555550100"}}
    r = api.patch(f"/v1/accounts/{account['id']}", json=change)
    assert r.status_code == 200
    for got in (r.json(), api.get(f"/v1/accounts/{account['id']}").json()):
        assert got["contact"]["city"] == "Chicago" and got["contact"]["postal_code"] == "62701"
        assert got["identity"]["given_name"] == "Robin"
        assert got["disclosures"]["employment_status"] == "RETIRED"
        assert got["trusted_contact"]["given_name"] == "Sam"


@pytest.mark.parametrize("change", [
    {"identity": {"tax_id": "900-70-9999"}},
    {"identity": {"date_of_birth": "1970-01-01"}},
    {"contact": {"country": "CAN"}},
    {"status": "ACTIVE"},
])
def test_update_of_an_immutable_field_is_422_and_changes_nothing(
    api: httpx.Client, change: dict[str, Any]
) -> None:
    account = create(api)
    r = api.patch(f"/v1/accounts/{account['id']}", json=change)
    assert r.status_code == 422 and error_code(r) == 42210000
    after = api.get(f"/v1/accounts/{account['id']}").json()
    assert after["identity"]["date_of_birth"] == "1985-04-12"
    assert after["contact"]["country"] == "USA"


def test_update_errors(api: httpx.Client) -> None:
    account = create(api)
    other = create(api)
    url = f"/v1/accounts/{account['id']}"
    bad = api.patch(url, content=b"{", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    taken = api.patch(url, json={"contact": {"email_address": other["contact"]["email_address"]}})
    assert taken.status_code == 422
    missing = api.patch("/v1/accounts/00000000-0000-4000-8000-000000000000", json={})
    assert missing.status_code == 404


# ------------------------------------------------------------------ close


@pytest.mark.parametrize(("method", "suffix"), [("DELETE", ""), ("POST", "/actions/close")])
def test_close_answers_204_and_the_account_stays_readable(api: httpx.Client, method: str,
                                                          suffix: str) -> None:
    account = create(api)
    url = f"/v1/accounts/{account['id']}"
    r = api.request(method, url + suffix)
    assert r.status_code == 204 and r.content == b""
    assert api.get(url).json()["status"] == CLOSED
    again = api.request(method, url + suffix)
    assert again.status_code == 409 and error_code(again) == 40910000
    assert api.patch(url, json={"contact": {"city": "X"}}).status_code == 409
    assert api.post(url + "/documents/upload", json=[alpaca_document()]).status_code == 204
    assert api.get(url).json()["status"] == CLOSED
    unknown = api.request(method, "/v1/accounts/00000000-0000-4000-8000-000000000000" + suffix)
    assert unknown.status_code == 404


def test_a_rejected_account_cannot_be_closed(api: httpx.Client) -> None:
    account = create(api, additional_information="/fixtures/status=REJECTED/fixtures/")
    url = f"/v1/accounts/{account['id']}"
    assert api.get(url).json()["status"] == "REJECTED"
    assert api.delete(url).status_code == 409
    assert api.get(url).json()["status"] == "REJECTED"


# ------------------------------------------------------------------ list


def test_list_is_a_bare_array_newest_first_without_nested_objects(api: httpx.Client) -> None:
    first, second = create(api), create(api)
    items = api.get("/v1/accounts").json()
    ids = [a["id"] for a in items]
    assert ids.index(second["id"]) < ids.index(first["id"])
    assert all("contact" not in a and "identity" not in a for a in items)
    asc = [a["id"] for a in api.get("/v1/accounts", params={"sort": "asc"}).json()]
    assert asc.index(first["id"]) < asc.index(second["id"])
    stamps = [a["created_at"] for a in items]
    assert stamps == sorted(stamps, reverse=True)


def test_list_filters(api: httpx.Client) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    active = create(api, additional_information="/fixtures/status=ACTIVE/fixtures/")
    pending = create(api, additional_information="/fixtures/status=APPROVAL_PENDING/fixtures/")
    for account in (active, pending):
        api.get(f"/v1/accounts/{account['id']}")
    one = api.get("/v1/accounts", params={"status": "ACTIVE"}).json()
    assert active["id"] in {a["id"] for a in one} and {a["status"] for a in one} == {"ACTIVE"}
    both = api.get("/v1/accounts", params=[("status", "ACTIVE"), ("status", "APPROVAL_PENDING")])
    assert {active["id"], pending["id"]} <= {a["id"] for a in both.json()}
    assert {a["status"] for a in both.json()} <= {"ACTIVE", "APPROVAL_PENDING"}
    for token in (active["contact"]["email_address"].upper(), active["account_number"]):
        found = api.get("/v1/accounts", params={"query": f"pat {token}"}).json()
        assert [a["id"] for a in found] == [active["id"]]
    window = {"created_after": before.isoformat(), "created_before":
              (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    inside = {a["id"] for a in api.get("/v1/accounts", params=window).json()}
    assert {active["id"], pending["id"]} <= inside
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert api.get("/v1/accounts", params={"created_after": tomorrow}).json() == []
    bad = api.get("/v1/accounts", params={"created_after": "yesterday"})
    assert bad.status_code == 422
    assert api.get("/v1/accounts", params={"status": "OPEN"}).status_code == 422


def test_list_entities_add_the_nested_objects(api: httpx.Client) -> None:
    account = create(api)
    api.post(f"/v1/accounts/{account['id']}/documents/upload", json=[alpaca_document()])
    items = api.get("/v1/accounts", params={"entities": "contact,identity,documents",
                                            "query": account["account_number"]}).json()
    assert len(items) == 1
    item = items[0]
    assert item["contact"]["email_address"] == account["contact"]["email_address"]
    assert "tax_id" not in item["identity"] and "disclosures" not in item
    assert len(item["documents"]) == 1


def test_list_holds_at_most_1000_accounts(tmp_path: Path) -> None:
    store = Storage(tmp_path / "server.sqlite3")
    body = {"account_number": "900000000", "contact": {}, "identity": {"given_name": "A",
            "family_name": "B", "country_of_tax_residence": "USA"}, "disclosures": {},
            "agreements": []}
    for i in range(1003):
        store.insert_account(id=f"00000000-0000-4000-8000-{i:012d}", dialect="alpaca",
                             email=None, plan=[Step("SUBMITTED")], now=0.0, body=dict(body))
    store.close()
    with running(tmp_path) as srv, client(srv, "alpaca", check=False) as api:
        items = api.get("/v1/accounts").json()
    assert len(items) == 1000 and items[0]["id"].endswith("000000001002")


# ------------------------------------------------------------------ documents


def test_upload_answers_204_and_the_documents_are_listed(api: httpx.Client) -> None:
    account = create(api)
    url = f"/v1/accounts/{account['id']}"
    docs = [alpaca_document(), {"document_type": "w8ben", "mime_type": "application/json",
                                "content_data": {"name": "Pat", "treaty_country": "DEU"}}]
    r = api.post(url + "/documents/upload", json=docs)
    assert r.status_code == 204 and r.content == b""
    listed = api.get(url + "/documents").json()
    assert [d["document_type"] for d in listed] == ["identity_verification", "w8ben"]
    read = api.get(url).json()["documents"]
    assert {d["id"] for d in read} == {d["id"] for d in listed}
    assert all(d["created_at"] for d in read)


@pytest.mark.parametrize("docs", [
    [alpaca_document()] * 11,
    [],
    [alpaca_document(content="not base64!")],
    [alpaca_document(content="QUJDRA")],
    [alpaca_document(document_type="w9")],
    [alpaca_document(mime_type="image/gif")],
])
def test_upload_refuses_bad_documents_with_422(api: httpx.Client, docs: list[Any]) -> None:
    account = create(api)
    r = api.post(f"/v1/accounts/{account['id']}/documents/upload", json=docs)
    assert r.status_code == 422, r.text


def test_upload_of_ten_documents_and_errors(api: httpx.Client) -> None:
    account = create(api)
    url = f"/v1/accounts/{account['id']}/documents/upload"
    assert api.post(url, json=[alpaca_document()] * 10).status_code == 204
    assert len(api.get(f"/v1/accounts/{account['id']}/documents").json()) == 10
    assert api.post(url, json=alpaca_document()).status_code == 400
    missing = "/v1/accounts/00000000-0000-4000-8000-000000000000/documents/upload"
    assert api.post(missing, json=[alpaca_document()]).status_code == 404


def _big_upload(chars: int) -> bytes:
    return (b'[{"document_type":"identity_verification","mime_type":"application/pdf",'
            b'"content":"' + b"A" * chars + b'"}]')


def test_32mb_of_base64_is_judged_both_ways(api: httpx.Client) -> None:
    """31,999,996 characters are accepted, 33,554,436 refused (by the handler, not the cap)."""
    account = create(api)
    url = f"/v1/accounts/{account['id']}/documents/upload"
    headers = {"content-type": "application/json"}
    assert api.post(url, content=_big_upload(31_999_996), headers=headers).status_code == 204
    over = api.post(url, content=_big_upload(33_554_436), headers=headers)
    assert over.status_code == 422 and "32 MB" in over.json()["message"]
    docs = api.get(f"/v1/accounts/{account['id']}/documents").json()
    assert len(docs) == 1


# ------------------------------------------------------------------ CIP

CIP = {
    "provider_name": ["onfido", "alloy"],
    "kyc": {"id": "8a8e3e0b-1b1a-4b9c-9a0e-3f3b7f0d2c11", "risk_level": "low",
            "applicant_name": "Pat Example", "approval_status": "approved",
            "approved_at": "2024-01-16T09:00:00Z"},
    "document": {"id": "doc-1", "result": "clear", "status": "complete",
                 "date_of_birth": "1985-04-12"},
    "photo": {"id": "photo-1", "result": "consider"},
    "identity": {"id": "id-1", "status": "withdrawn"},
    "watchlist": {"id": "wl-1", "result": "clear"},
}


def test_cip_is_stored_and_read_back(api: httpx.Client) -> None:
    account = create(api)
    url = f"/v1/accounts/{account['id']}/cip"
    empty = api.get(url)  # nothing submitted yet: an empty record, per the spec's getCip
    assert empty.status_code == 200 and empty.json() == {"account_id": account["id"]}
    r = api.post(url, json=CIP)
    assert r.status_code == 200
    got = api.get(url).json()
    assert got["account_id"] == account["id"] and got["id"] == r.json()["id"]
    assert {k: got[k] for k in CIP} == CIP
    again = api.post(url, json={**CIP, "provider_name": ["jumio"]}).json()
    assert again["id"] == got["id"] and again["created_at"] == got["created_at"]
    assert api.get(url).json()["provider_name"] == ["jumio"]


@pytest.mark.parametrize("change", [
    {"provider_name": "onfido"}, {"provider_name": ["acme"]}, {"kyc": {"risk_level": "low"}},
    {"photo": {"result": "clear"}}, {"document": {"id": "d", "result": "maybe"}},
    {"watchlist": {"id": "w", "status": "done"}},
])
def test_cip_refuses_bad_data(api: httpx.Client, change: dict[str, Any]) -> None:
    account = create(api)
    r = api.post(f"/v1/accounts/{account['id']}/cip", json={**CIP, **change})
    assert r.status_code == 422
    missing = "/v1/accounts/00000000-0000-4000-8000-000000000000/cip"
    assert api.post(missing, json=CIP).status_code == 404


# ------------------------------------------------------------------ auth

OPERATIONS = [
    ("POST", "/v1/accounts"), ("GET", "/v1/accounts"), ("GET", "/v1/accounts/{id}"),
    ("PATCH", "/v1/accounts/{id}"), ("DELETE", "/v1/accounts/{id}"),
    ("POST", "/v1/accounts/{id}/actions/close"), ("POST", "/v1/accounts/{id}/documents/upload"),
    ("GET", "/v1/accounts/{id}/documents"), ("POST", "/v1/accounts/{id}/cip"),
    ("GET", "/v1/accounts/{id}/cip"),
]


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic " + base64.b64encode(b"brokercert-dev-key:wrong").decode()},
    {"Authorization": "Basic not-base64"},
    {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    {"Authorization": "Bearer brokercert-dev-key"},
    {"X-API-Key": "brokercert-dev-key", "X-API-Secret": "brokercert-dev-secret"},
])
def test_every_operation_needs_http_basic(server: RunningServer, api: httpx.Client,
                                          headers: dict[str, str]) -> None:
    account = create(api)
    with client(server, "alpaca", auth=False) as anonymous:
        for method, path in OPERATIONS:
            r = anonymous.request(method, path.replace("{id}", account["id"]), headers=headers,
                                  json=[alpaca_document()] if "upload" in path else {})
            assert r.status_code == 401, (method, path)
            assert error_code(r) == 40110000 and r.json()["message"] == "request is not authorized"
    # Refused requests changed nothing: not closed, and this is the first read that counts.
    assert api.get(f"/v1/accounts/{account['id']}").json()["status"] == "APPROVED"


def test_unknown_routes_and_methods_answer_in_the_envelope(server: RunningServer) -> None:
    with client(server, "alpaca", check=False) as raw:
        r = raw.get("/v2/nothing")
        assert r.status_code == 404 and error_code(r) == 40410000
        r = raw.put("/v1/accounts")
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
        assert raw.head("/v1/accounts").status_code == 200
    assert httpx.get(server.base_url("alpaca") + "/v1/accounts").status_code == 401


def test_a_data_image_round_trip_keeps_nothing_but_metadata(api: httpx.Client) -> None:
    account = create(api, documents=[alpaca_document(content=PNG)])
    docs = api.get(f"/v1/accounts/{account['id']}").json()["documents"]
    assert len(docs) == 1 and "content" not in docs[0]
    assert account["documents"][0]["id"] == docs[0]["id"]


def test_a_fresh_email_after_a_refused_create_is_free(api: httpx.Client) -> None:
    body = alpaca_account()
    body["identity"]["date_of_birth"] = "nope"
    assert api.post("/v1/accounts", json=body).status_code == 422
    body["identity"]["date_of_birth"] = "1985-04-12"
    assert api.post("/v1/accounts", json=body).status_code == 200
