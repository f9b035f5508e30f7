"""Creating an account: success status, response body, defaults and duplicate emails.

Rules: specs/alpaca/1.1.1/requirements.yaml (Alpaca accounts docs, seed 003; reference sheet
shared/reference/alpaca.md section 9, Create and Duplicate email) and
specs/buildmarkets/1.0.0/requirements.yaml (Buildmarkets Compliance & KYC page, seed 004;
reference sheet shared/reference/buildmarkets.md section 10, Create).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from brokercert.datagen import MISSING
from brokercert.pytest_plugin import check, expect_status, json_body
from brokercert.pytest_plugin import requirement_for as _rid

# Members each create response must hold, as the requirement titles list them.
_CREATE_FIELDS = {
    "ALP-ACC-002": ("id", "account_number", "status", "currency", "last_equity", "created_at"),
    "BM-ACC-001": (
        "id",
        "status",
        "kyc_status",
        "currency",
        "last_equity",
        "created_at",
        "account_type",
        "enabled_assets",
    ),
}
_CONCURRENT_CREATES = 8


def _create(client: httpx.Client, profile: Any, body: Any) -> httpx.Response:
    op = profile.operation("create_account")
    return client.request(op.method, op.path, json=body)


def _created(response: httpx.Response, requirement: str) -> dict[str, Any]:
    """The account a create answered with; any 2xx counts here, the exact status has its own
    requirement (ALP-ACC-001, BM-ACC-001)."""
    check(
        200 <= response.status_code < 300,
        requirement,
        "a 2xx answer (account created)",
        f"HTTP {response.status_code}",
        response,
    )
    body = json_body(response, requirement)
    check(
        isinstance(body, dict) and isinstance(body.get("id"), str),
        requirement,
        "the created account with its id",
        repr(body)[:200],
        response,
    )
    return body


def _get(client: httpx.Client, profile: Any, account_id: str) -> httpx.Response:
    op = profile.operation("get_account")
    return client.request(op.method, op.path.format(**{profile.id_param: account_id}))


def _listed(client: httpx.Client, profile: Any, requirement: str, **params: str) -> list[Any]:
    """The accounts the list operation returns for ``params`` (first page)."""
    op = profile.operation("list_accounts")
    response = client.request(op.method, op.path, params=params)
    expect_status(response, op.success, requirement)
    body = json_body(response, requirement)
    items = body
    if profile.pagination.items_path:
        for key in profile.pagination.items_path.split("."):
            items = items.get(key) if isinstance(items, dict) else None
    check(isinstance(items, list), requirement, "a list of accounts", repr(items)[:200], response)
    return items


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


@pytest.mark.requirement("ALP-ACC-001", "BM-ACC-001")
def test_create_answers_success_status_with_the_account_itself(
    client, profile, catalog, run_data, dialect
):
    """Create answers the dialect's success status (alpaca 200, buildmarkets 201) with the
    account object itself as the body."""
    rid = _rid(catalog, "ALP-ACC-001", "BM-ACC-001")
    response = _create(client, profile, run_data.create_body(dialect))
    expect_status(response, profile.operation("create_account").success, rid)
    body = json_body(response, rid)
    check(
        isinstance(body, dict) and "id" in body and "status" in body,
        rid,
        'the account object at the top level (id and status keys), not wrapped in {"account": ...}',
        sorted(body) if isinstance(body, dict) else type(body).__name__,
        response,
    )


@pytest.mark.requirement("ALP-ACC-002", "BM-ACC-001")
def test_create_response_carries_required_fields(client, profile, catalog, run_data, dialect):
    """The create response carries every member the dialect documents for it, id being a UUID."""
    rid = _rid(catalog, "ALP-ACC-002", "BM-ACC-001")
    response = _create(client, profile, run_data.create_body(dialect))
    body = json_body(response, rid)
    check(isinstance(body, dict), rid, "a JSON object", type(body).__name__, response)
    missing = [f for f in _CREATE_FIELDS[rid] if body.get(f) is None]
    wanted = ", ".join(_CREATE_FIELDS[rid])
    check(not missing, rid, f"non-null {wanted}", f"missing or null: {missing}", response)
    check(_is_uuid(body["id"]), rid, "id is a UUID string", repr(body["id"]), response)


@pytest.mark.requirement("ALP-ACC-003")
def test_create_reports_currency_usd(client, profile, run_data, dialect):
    """The create response reports currency USD."""
    response = _create(client, profile, run_data.create_body(dialect))
    currency = _created(response, "ALP-ACC-003").get("currency")
    check(currency == "USD", "ALP-ACC-003", 'currency "USD"', repr(currency), response)


@pytest.mark.requirement("BM-ACC-002")
def test_create_without_account_type_is_individual(client, profile, run_data, dialect):
    """An account created without account_type reports account_type individual (create answer
    and a later read)."""
    body = run_data.create_body(dialect, account_type=MISSING)
    response = _create(client, profile, body)
    created = _created(response, "BM-ACC-002")
    got = created.get("account_type")
    check(got == "individual", "BM-ACC-002", 'account_type "individual"', repr(got), response)
    read = _get(client, profile, created["id"])
    expect_status(read, profile.operation("get_account").success, "BM-ACC-002")
    got = json_body(read, "BM-ACC-002").get("account_type")
    check(got == "individual", "BM-ACC-002", 'account_type "individual" on read', repr(got), read)


@pytest.mark.requirement("ALP-ACC-012")
def test_duplicate_email_is_refused_with_409(client, profile, run_data, dialect):
    """A second create with an email address already registered is refused with 409 and no
    second account appears."""
    rid = "ALP-ACC-012"
    email = run_data.email()
    same_email = {"contact.email_address": email}
    first = _create(client, profile, run_data.create_body(dialect, **same_email))
    first_id = _created(first, rid)["id"]
    second = _create(client, profile, run_data.create_body(dialect, **same_email))
    expect_status(second, 409, rid)
    ids = [a.get("id") for a in _listed(client, profile, rid, query=email)]
    check(ids == [first_id], rid, f"one account with that email ({first_id})", ids)


@pytest.mark.requirement("ALP-ACC-013")
def test_concurrent_creates_with_one_email_open_one_account(client, profile, run_data, dialect):
    """Concurrent creates with the same email address open exactly one account; every other
    request gets 409."""
    rid = "ALP-ACC-013"
    email = run_data.email()
    bodies = [
        run_data.create_body(dialect, **{"contact.email_address": email})
        for _ in range(_CONCURRENT_CREATES)
    ]
    start = threading.Barrier(_CONCURRENT_CREATES)

    def send(body: dict[str, Any]) -> httpx.Response:
        start.wait(timeout=30)  # release every request at once
        return _create(client, profile, body)

    with ThreadPoolExecutor(max_workers=_CONCURRENT_CREATES) as pool:
        responses = list(pool.map(send, bodies))
    statuses = sorted(r.status_code for r in responses)
    winners = [r for r in responses if 200 <= r.status_code < 300]
    check(
        len(winners) == 1 and statuses.count(409) == _CONCURRENT_CREATES - 1,
        rid,
        f"one 2xx (the account) and {_CONCURRENT_CREATES - 1} HTTP 409",
        f"statuses {statuses}",
        winners[-1] if winners else responses[0],
    )
    winner_id = _created(winners[0], rid)["id"]
    ids = [a.get("id") for a in _listed(client, profile, rid, query=email)]
    check(ids == [winner_id], rid, f"one account with that email ({winner_id})", ids)
