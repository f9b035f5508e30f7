"""CIP (Customer Identification Program) results: submit, read back, validation, unknown accounts.

Sources: the Broker API 1.1.1 CIP definition (seed 000: "Upload CIP information", CIPInfo,
CIPKYC, CIPDocument, CIPPhoto, CIPIdentity, CIPWatchlist, CIPProvider, CIPResult,
CIPStatus) and reference sheet sections 4 and 9 (CIP). alpaca only: buildmarkets has no
CIP operation (its CIP result is a document type, see test_documents.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from brokercert.catalog import Profile
from brokercert.datagen import RunData, with_value, without
from brokercert.pytest_plugin import check, expect_4xx, expect_status, json_body

CHECKS = ("kyc", "document", "photo", "identity", "watchlist")


def _path(profile: Profile, operation: str, account_id: str) -> str:
    return profile.operation(operation).path.format(**{profile.id_param: account_id})


def _submit(client: httpx.Client, profile: Profile, account_id: str, body: Any) -> httpx.Response:
    op = profile.operation("submit_cip")
    return client.request(op.method, _path(profile, "submit_cip", account_id), json=body)


def _same(sent: Any, got: Any) -> bool:
    """Equal, with date-time strings compared as instants (a server may reformat them)."""
    if sent == got:
        return True
    if isinstance(sent, str) and isinstance(got, str) and "T" in sent:
        try:
            return datetime.fromisoformat(sent) == datetime.fromisoformat(got)
        except (ValueError, TypeError):  # not a date-time, or naive against aware
            return False
    return False


def _create(client: httpx.Client, profile: Profile, run_data: RunData) -> str:
    """A fresh account's id; any 2xx counts here (the exact create status is another rule)."""
    op = profile.operation("create_account")
    response = client.request(op.method, op.path, json=run_data.create_body("alpaca"))
    body = response.json() if response.is_success else None
    assert isinstance(body, dict) and isinstance(body.get("id"), str), (
        f"precondition: creating a test account failed: HTTP {response.status_code} "
        f"{response.text[:300]}"
    )
    return body["id"]


@pytest.fixture(scope="module")
def account_id(_shared_client: httpx.Client, profile: Profile, run_data: RunData) -> str:
    """One account for the refusal checks (a wrongly accepted submit changes nothing they read)."""
    return _create(_shared_client, profile, run_data)


@pytest.mark.requirement("ALP-CIP-001")
def test_submit_valid_cip_answers_200(
    client: httpx.Client, profile: Profile, run_data: RunData, account_id: str
) -> None:
    """Submitting valid CIP information for an existing account answers 200."""
    response = _submit(client, profile, account_id, run_data.cip_body())
    expect_status(response, profile.operation("submit_cip").success, "ALP-CIP-001")


@pytest.mark.requirement("ALP-CIP-002")
def test_cip_reads_back_as_submitted(
    client: httpx.Client, profile: Profile, run_data: RunData
) -> None:
    """Reading CIP after a submit answers 200 with a CIP id, the account's id and the submitted
    provider_name and check objects unchanged."""
    acc_id = _create(client, profile, run_data)
    sent = run_data.cip_body(provider_name=["onfido", "jumio"])
    submitted = _submit(client, profile, acc_id, sent)
    assert submitted.is_success, f"the CIP submit failed: HTTP {submitted.status_code}"
    op = profile.operation("get_cip")
    response = client.request(op.method, _path(profile, "get_cip", acc_id))
    expect_status(response, op.success, "ALP-CIP-002")
    got = json_body(response, "ALP-CIP-002")
    check(isinstance(got, dict), "ALP-CIP-002", "a JSON object", type(got).__name__, response)
    check(
        isinstance(got.get("id"), str) and bool(got["id"]),
        "ALP-CIP-002",
        "a CIP id",
        got.get("id"),
        response,
    )
    check(
        got.get("account_id") == acc_id,
        "ALP-CIP-002",
        f"account_id {acc_id}",
        got.get("account_id"),
        response,
    )
    check(
        got.get("provider_name") == sent["provider_name"],
        "ALP-CIP-002",
        f"provider_name {sent['provider_name']}",
        got.get("provider_name"),
        response,
    )
    for part in CHECKS:
        stored = got.get(part)
        check(isinstance(stored, dict), "ALP-CIP-002", f"the {part} object", stored, response)
        changed = {k: stored.get(k) for k, v in sent[part].items() if not _same(v, stored.get(k))}
        check(
            not changed,
            "ALP-CIP-002",
            f"{part} as submitted: {sent[part]}",
            f"these fields differ: {changed}",
            response,
        )


@pytest.mark.requirement("ALP-CIP-003")
@pytest.mark.parametrize(
    "provider_name",
    ["onfido", ["brokercert_unknown_provider"], ["onfido", "acme_kyc"]],
    ids=["bare-string", "unknown-name", "one-unknown-among-known"],
)
def test_provider_name_must_be_array_of_listed_providers(
    client: httpx.Client,
    profile: Profile,
    run_data: RunData,
    account_id: str,
    provider_name: Any,
) -> None:
    """CIP with provider_name that is not an array of the listed providers (a bare string, an
    unknown name) is refused with a 4xx."""
    response = _submit(client, profile, account_id, run_data.cip_body(provider_name=provider_name))
    expect_4xx(response, "ALP-CIP-003")


@pytest.mark.requirement("ALP-CIP-004")
@pytest.mark.parametrize("part", CHECKS)
def test_check_object_without_id_is_refused(
    client: httpx.Client, profile: Profile, run_data: RunData, account_id: str, part: str
) -> None:
    """CIP whose kyc, document, photo, identity or watchlist object lacks an id is refused with a
    4xx."""
    response = _submit(client, profile, account_id, without(run_data.cip_body(), f"{part}.id"))
    expect_4xx(response, "ALP-CIP-004")


@pytest.mark.requirement("ALP-CIP-005")
@pytest.mark.parametrize("part", ["document", "photo", "identity", "watchlist"])
@pytest.mark.parametrize(
    ("field", "value"), [("result", "passed"), ("status", "pending")], ids=["result", "status"]
)
def test_result_and_status_outside_enum_are_refused(
    client: httpx.Client,
    profile: Profile,
    run_data: RunData,
    account_id: str,
    part: str,
    field: str,
    value: str,
) -> None:
    """CIP with a result other than clear/consider or a status other than complete/withdrawn is
    refused with a 4xx."""
    body = with_value(run_data.cip_body(), f"{part}.{field}", value)
    expect_4xx(_submit(client, profile, account_id, body), "ALP-CIP-005")


@pytest.mark.requirement("ALP-CIP-006")
def test_submit_for_unknown_account_is_not_found(
    client: httpx.Client, profile: Profile, run_data: RunData
) -> None:
    """Submitting CIP for an account id that does not exist answers 404 (401 also accepted)."""
    response = _submit(client, profile, str(uuid.uuid4()), run_data.cip_body())
    expect_status(response, profile.unknown_account_status, "ALP-CIP-006")


@pytest.mark.requirement("ALP-CIP-007")
def test_read_for_unknown_account_is_not_found(client: httpx.Client, profile: Profile) -> None:
    """Reading CIP for an account id that does not exist answers 404 (401 also accepted)."""
    op = profile.operation("get_cip")
    response = client.request(op.method, _path(profile, "get_cip", str(uuid.uuid4())))
    expect_status(response, profile.unknown_account_status, "ALP-CIP-007")
