"""The buildmarkets dialect of the reference server over real HTTP; every response is
checked against specs/buildmarkets/<version>/openapi.yaml with openapi-core."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from _server_support import bm_account, bm_document, client, running

from brokercert.server import RunningServer

CLOSED = "ACCOUNT_CLOSED"
NOBODY = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running(tmp_path_factory.mktemp("buildmarkets")) as srv:
        yield srv


@pytest.fixture()
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with client(server, "buildmarkets") as c:
        yield c


def create(api: httpx.Client, tax_id: str = "321-54-9876", **overrides: Any) -> dict[str, Any]:
    r = api.post("/v1/accounts", json=bm_account(tax_id, **overrides))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def error(r: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text[:300]
    err = r.json()["error"]
    assert set(err) == {"code", "message", "field", "request_id"}
    assert err["code"] == code and err["field"] == field, err
    assert err["request_id"].startswith("req_")
    if field is not None and status == 400:
        assert err["message"] == f"{code}: {field}"


def without(body: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    del node[last]
    return out


def setting(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node: Any = out
    parts = [int(p) if p.isdigit() else p for p in path.replace("[", ".").replace("]", "")
             .split(".")]
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value
    return out


# ------------------------------------------------------------------ create


def test_create_answers_201_submitted(api: httpx.Client) -> None:
    account = create(api)
    assert (account["status"], account["kyc_status"]) == ("SUBMITTED", "SUBMITTED")
    assert account["account_type"] == "individual" and account["enabled_assets"]
    assert account["currency"] == "USD" and account["last_equity"] == "0.00"
    assert account["created_at"].endswith("Z") and "tax_id" not in account["identity"]
    read = api.get(f"/v1/accounts/{account['id']}").json()
    for key in ("id", "account_type", "created_at"):
        assert read[key] == account[key]
    assert read["contact"]["email_address"] == account["contact"]["email_address"]
    assert read["identity"]["given_name"] == "Sample"


@pytest.mark.parametrize("path", [
    "contact", "contact.email_address", "contact.city", "contact.state", "contact.postal_code",
    "identity", "identity.given_name", "identity.family_name", "identity.date_of_birth",
    "identity.tax_id", "agreements", "investment_profile", "investment_profile.risk_tolerance",
    "investment_profile.liquid_net_worth_range",
])
def test_a_missing_required_field_is_named(api: httpx.Client, path: str) -> None:
    error(api.post("/v1/accounts", json=without(bm_account(), path)), 400,
          "MISSING_REQUIRED_FIELD", path)


def test_a_null_required_field_counts_as_missing(api: httpx.Client) -> None:
    body = setting(bm_account(), "contact.email_address", None)
    error(api.post("/v1/accounts", json=body), 400, "MISSING_REQUIRED_FIELD",
          "contact.email_address")


@pytest.mark.parametrize(("path", "value"), [
    ("identity.date_of_birth", "30/09/1984"), ("identity.date_of_birth", "1990-02-30"),
    ("agreements[0].signed_at", "yesterday"), ("identity.tax_id", "12345678"),
    ("identity.tax_id", "123-45-67890"), ("identity.tax_id", "1234567890"),
    ("contact.state", "Colorado"), ("contact.postal_code", "8020"),
    ("contact.postal_code", "802021"), ("corr_metadata", "x" * 256),
    ("contact.email_address", "not-an-email"),
])
def test_a_badly_formed_value_is_validation_error(api: httpx.Client, path: str,
                                                  value: str) -> None:
    error(api.post("/v1/accounts", json=setting(bm_account(), path, value)), 400,
          "VALIDATION_ERROR", path)


@pytest.mark.parametrize(("path", "value"), [
    ("account_type", "ira"), ("identity.tax_id_type", "SSN"),
    ("agreements[0].agreement", "terms"), ("investment_profile.risk_tolerance", "reckless"),
    ("investment_profile.investment_objective", "preservation"),
    ("investment_profile.time_horizon", "forever"),
])
def test_an_unknown_enum_value_is_invalid_enum_value(api: httpx.Client, path: str,
                                                      value: str) -> None:
    error(api.post("/v1/accounts", json=setting(bm_account(), path, value)), 400,
          "INVALID_ENUM_VALUE", path)


def test_accepted_shapes(api: httpx.Client) -> None:
    for tax_id in ("123456789", "123-45-6789", "12-3456789"):
        create(api, tax_id)
    for zip_code in ("80202", "802021234", "80202-1234"):
        create(api, contact={**bm_account()["contact"], "postal_code": zip_code})
    for objective in ("growth", "income", "speculation", "capital_preservation", "other"):
        profile = {**bm_account()["investment_profile"], "investment_objective": objective}
        create(api, investment_profile=profile)


def test_malformed_bodies_are_invalid_format(api: httpx.Client) -> None:
    account = create(api)
    for method, url in (("POST", "/v1/accounts"), ("PATCH", f"/v1/accounts/{account['id']}"),
                        ("POST", f"/v1/accounts/{account['id']}/documents/upload")):
        r = api.request(method, url, content=b"{not json",
                        headers={"content-type": "application/json"})
        error(r, 400, "INVALID_FORMAT")
    error(api.post("/v1/accounts", json=[bm_account()]), 400, "VALIDATION_ERROR")


def customer() -> dict[str, Any]:
    return {"agreement": "customer_agreement", "signed_at": "2025-03-14T09:26:53Z"}


@pytest.mark.parametrize(("extra", "needs"), [
    ({"trading_configurations": {"margin_enabled": True}}, "margin_agreement"),
    ({"trading_configurations": {"options_level": 2}}, "options_agreement"),
])
def test_agreement_rules(api: httpx.Client, extra: dict[str, Any], needs: str) -> None:
    error(api.post("/v1/accounts", json=bm_account(**extra)), 400, "MISSING_REQUIRED_FIELD",
          "agreements")
    signed = [customer(), {**customer(), "agreement": needs}]
    create(api, agreements=signed, **extra)


def test_customer_agreement_and_joint_owner_rules(api: httpx.Client) -> None:
    only_margin = [{**customer(), "agreement": "margin_agreement"}]
    error(api.post("/v1/accounts", json=bm_account(agreements=only_margin)), 400,
          "MISSING_REQUIRED_FIELD", "agreements")
    error(api.post("/v1/accounts", json=bm_account(account_type="joint")), 400,
          "MISSING_REQUIRED_FIELD", "joint_owner")
    owner = {"given_name": "Alex", "family_name": "Investor", "tax_id": "123-45-6780"}
    joint = create(api, account_type="joint", joint_owner=owner)
    assert joint["account_type"] == "joint" and "tax_id" not in joint["joint_owner"]


# ------------------------------------------------------------------ status


@pytest.mark.parametrize(("tax_id", "path"), [
    ("900-00-0001", [("SUBMITTED", "SUBMITTED"), ("APPROVED", "APPROVED"),
                     ("ACTIVE", "APPROVED"), ("ACTIVE", "APPROVED")]),
    ("900000002", [("SUBMITTED", "SUBMITTED"), ("REJECTED", "REJECTED"),
                   ("REJECTED", "REJECTED")]),
    ("90-0000003", [("SUBMITTED", "SUBMITTED"), ("APPROVAL_PENDING", "MANUAL_REVIEW"),
                    ("APPROVAL_PENDING", "MANUAL_REVIEW")]),
    ("900-00-1234", [("SUBMITTED", "SUBMITTED"), ("SUBMITTED", "SUBMITTED")]),
])
def test_sandbox_outcomes_by_tax_id_suffix(api: httpx.Client, tax_id: str,
                                           path: list[tuple[str, str]]) -> None:
    account = create(api, tax_id)
    seen = [(account["status"], account["kyc_status"])]
    for _ in path[1:]:
        got = api.get(f"/v1/accounts/{account['id']}").json()
        seen.append((got["status"], got["kyc_status"]))
    assert seen == path


def test_unknown_account_is_account_not_found(api: httpx.Client) -> None:
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {}),
                                 ("POST", "/actions/close", None),
                                 ("POST", "/documents/upload", bm_document())):
        for account_id in (NOBODY, "not-a-uuid"):
            r = api.request(method, f"/v1/accounts/{account_id}{suffix}", json=body)
            error(r, 404, "ACCOUNT_NOT_FOUND", "accountId")


# ------------------------------------------------------------------ update and close


def test_patch_merges_mutable_members(api: httpx.Client) -> None:
    account = create(api)
    url = f"/v1/accounts/{account['id']}"
    change = {"contact": {"city": "Boulder", "postal_code": "80302"},
              "disclosures": {"is_politically_exposed": True},
              "trusted_contact": {"given_name": "Kim", "family_name": "Lee"},
              "employment": {"employment_status": "EMPLOYED", "employer_name": "Acme"},
              "investment_profile": {"risk_tolerance": "moderate"},
              "registered_rep_code": "REP-0042", "identity": {"given_name": "Samuel"}}
    r = api.patch(url, json=change)
    assert r.status_code == 200
    for got in (r.json(), api.get(url).json()):
        assert got["contact"]["city"] == "Boulder" and got["contact"]["state"] == "CO"
        assert got["disclosures"]["is_politically_exposed"] is True
        assert got["investment_profile"]["risk_tolerance"] == "moderate"
        assert got["investment_profile"]["investment_objective"] == "income"
        assert got["registered_rep_code"] == "REP-0042"
        assert got["identity"]["given_name"] == "Samuel"
        assert got["identity"]["date_of_birth"] == "1984-09-30"
    assert api.patch(url, json={}).status_code == 200


@pytest.mark.parametrize(("change", "field"), [
    ({"identity": {"date_of_birth": "1970-01-01"}}, "identity.date_of_birth"),
    ({"identity": {"tax_id": "123-45-6789"}}, "identity.tax_id"),
    ({"status": "ACTIVE"}, "status"),
])
def test_patch_refuses_immutable_members(api: httpx.Client, change: dict[str, Any],
                                         field: str) -> None:
    account = create(api)
    url = f"/v1/accounts/{account['id']}"
    error(api.patch(url, json=change), 400, "VALIDATION_ERROR", field)
    assert api.get(url).json()["identity"]["date_of_birth"] == "1984-09-30"


def test_close_then_close_again(api: httpx.Client) -> None:
    account = create(api, "900-00-0001")
    url = f"/v1/accounts/{account['id']}"
    assert api.get(url).json()["status"] == "APPROVED"
    r = api.post(url + "/actions/close")
    assert r.status_code == 204 and r.content == b""
    got = api.get(url).json()
    assert got["status"] == CLOSED and got["kyc_status"] == "APPROVED"
    error(api.post(url + "/actions/close"), 409, "ACCOUNT_ALREADY_CLOSED")
    error(api.patch(url, json={"registered_rep_code": "X"}), 409, "ACCOUNT_ALREADY_CLOSED")
    assert api.get(url).json()["status"] == CLOSED


def test_a_rejected_account_cannot_be_closed(api: httpx.Client) -> None:
    account = create(api, "900-00-0002")
    url = f"/v1/accounts/{account['id']}"
    assert api.get(url).json()["status"] == "REJECTED"
    assert api.post(url + "/actions/close").status_code == 422
    assert api.get(url).json()["status"] == "REJECTED"


# ------------------------------------------------------------------ documents

TYPES = ["identity_verification", "address_verification", "date_of_birth_verification",
         "tax_id_verification", "account_approval_letter", "cip_result", "w9",
         "company_formation", "entity_operating_document", "entity_registration",
         "hio_declaration_form", "limited_trading_authorization", "pep_declaration_form"]
MIMES = ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"]


def test_every_type_and_mime_type_is_accepted_with_204(api: httpx.Client) -> None:
    account = create(api)
    url = f"/v1/accounts/{account['id']}/documents/upload"
    for doc_type in TYPES:
        r = api.post(url, json=bm_document(document_type=doc_type))
        assert r.status_code == 204 and r.content == b"", doc_type
    for mime in MIMES:
        assert api.post(url, json=bm_document(mime_type=mime)).status_code == 204
    w8ben = {"document_type": "w8ben", "content_data": {"name": "Sample Investor"}}
    assert api.post(url, json=w8ben).status_code == 204


@pytest.mark.parametrize(("doc", "code", "field"), [
    (bm_document(document_type="passport_scan"), "INVALID_DOCUMENT_TYPE", "document_type"),
    (bm_document(mime_type="image/tiff"), "INVALID_MIME_TYPE", "mime_type"),
    ({"document_type": "identity_verification", "mime_type": "image/png"}, "CONTENT_REQUIRED",
     "content"),
    ({"document_type": "w8ben", "content": "iVBORw0KGgo="}, "CONTENT_DATA_REQUIRED",
     "content_data"),
    (bm_document(content="not base64"), "VALIDATION_ERROR", "content"),
    ({"content": "iVBORw0KGgo="}, "MISSING_REQUIRED_FIELD", "document_type"),
])
def test_upload_errors(api: httpx.Client, doc: dict[str, Any], code: str, field: str) -> None:
    account = create(api)
    error(api.post(f"/v1/accounts/{account['id']}/documents/upload", json=doc), 400, code, field)


def test_10mb_is_judged_on_the_decoded_file(api: httpx.Client) -> None:
    account = create(api)
    url = f"/v1/accounts/{account['id']}/documents/upload"
    ok = base64.b64encode(bytes(10_000_000)).decode()
    assert api.post(url, json=bm_document(content=ok, mime_type="application/pdf")
                    ).status_code == 204
    over = base64.b64encode(bytes(10_485_761)).decode()
    error(api.post(url, json=bm_document(content=over)), 400, "FILE_TOO_LARGE", "content")


# ------------------------------------------------------------------ list


def test_list_envelope_default_limit_and_max(server: RunningServer, api: httpx.Client) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: create(api), range(30)))
    page = api.get("/v1/accounts").json()
    assert len(page["data"]) == 25 and page["pagination"]["has_more"] is True
    assert isinstance(page["pagination"]["next_cursor"], str)
    for limit in (100, 101, 5000):
        page = api.get("/v1/accounts", params={"limit": limit}).json()
        assert 25 < len(page["data"]) <= 100
    error(api.get("/v1/accounts", params={"limit": 0}), 400, "VALIDATION_ERROR", "limit")
    error(api.get("/v1/accounts", params={"cursor": "forged"}), 400, "VALIDATION_ERROR",
          "cursor")
    error(api.get("/v1/accounts", params={"status": "OPEN"}), 400, "INVALID_ENUM_VALUE", "status")


@pytest.mark.parametrize("sort", ["created_at:desc", "created_at:asc"])
def test_a_cursor_walk_sees_every_account_once_while_accounts_are_created(
    api: httpx.Client, sort: str
) -> None:
    for _ in range(12):
        create(api)
    existing = {a["id"] for a in _walk(api, {"limit": 100, "sort": sort}, lambda: None)}
    added: list[str] = []
    seen = _walk(api, {"limit": 7, "sort": sort}, lambda: added.append(create(api)["id"]))
    ids = [a["id"] for a in seen]
    assert len(ids) == len(set(ids)), "an account was served twice"
    assert existing <= set(ids), "an account was skipped"
    assert set(ids) - existing <= set(added)
    stamps = [a["created_at"] for a in seen]
    assert stamps == sorted(stamps, reverse=sort.endswith("desc"))


def _walk(api: httpx.Client, params: dict[str, Any], between: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = api.get("/v1/accounts", params=params).json()
    while True:
        out += page["data"]
        if not page["pagination"]["has_more"]:
            assert page["pagination"]["next_cursor"] is None
            return out
        between()
        page = api.get("/v1/accounts", params={
            **params, "cursor": page["pagination"]["next_cursor"]}).json()


def test_list_filters(api: httpx.Client) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    named = create(api, "900-00-0003", identity={**bm_account()["identity"],
                                                 "given_name": "Quentin", "tax_id": "900000003"})
    api.get(f"/v1/accounts/{named['id']}")
    found = api.get("/v1/accounts", params={"query": "quentin"}).json()["data"]
    assert [a["id"] for a in found] == [named["id"]]
    by_number = api.get("/v1/accounts", params={"query": named["account_number"]}).json()["data"]
    assert [a["id"] for a in by_number] == [named["id"]]
    pending = api.get("/v1/accounts", params={"status": "APPROVAL_PENDING", "limit": 100})
    assert named["id"] in {a["id"] for a in pending.json()["data"]}
    assert {a["status"] for a in pending.json()["data"]} == {"APPROVAL_PENDING"}
    window = {"created_after": start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
              "created_before": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
              "limit": 100}
    inside = api.get("/v1/accounts", params=window).json()["data"]
    assert named["id"] in {a["id"] for a in inside}
    assert all(a["created_at"] > window["created_after"] for a in inside)
    later = {"created_after": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert api.get("/v1/accounts", params=later).json()["data"] == []


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize("headers", [
    {},
    {"X-API-Key": "brokercert-dev-key"},
    {"X-API-Secret": "brokercert-dev-secret"},
    {"X-API-Key": "brokercert-dev-key", "X-API-Secret": "wrong"},
    {"X-API-Key": "someone-else", "X-API-Secret": "brokercert-dev-secret"},
    {"Authorization": "Basic " + base64.b64encode(
        b"brokercert-dev-key:brokercert-dev-secret").decode()},
])
def test_every_operation_needs_both_headers(server: RunningServer, api: httpx.Client,
                                            headers: dict[str, str]) -> None:
    account = create(api)
    with client(server, "buildmarkets", auth=False) as anonymous:
        for method, suffix in (("POST", ""), ("GET", ""), ("GET", "/{id}"), ("PATCH", "/{id}"),
                               ("POST", "/{id}/actions/close"),
                               ("POST", "/{id}/documents/upload")):
            url = "/v1/accounts" + suffix.replace("{id}", account["id"])
            error(anonymous.request(method, url, headers=headers, json={}), 401, "UNAUTHORIZED")
    assert api.get(f"/v1/accounts/{account['id']}").json()["status"] == "SUBMITTED"
