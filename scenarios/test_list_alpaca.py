"""Listing alpaca accounts: one bare array, sorting, status filters, the query and
created-window filters, nested entities and the 1,000-account cap.

Rules from specs/alpaca/<version>/requirements.yaml (area LIST), which cite the alpaca
accounts docs (seed 003, Listing All Accounts), alpaca-py's repeated status parameter and
the reference sheet (shared/reference/alpaca.md sections 1 and 9). Page sizes and the
default sort come from profile.yaml (pagination).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from _listing import (
    check_created_order,
    check_created_window,
    close_test_account,
    ids_of,
    listed_in_own_status,
    parse_created_at,
    rfc3339,
)

from brokercert.catalog import Profile
from brokercert.pytest_plugin import check, expect_status, json_body

# == alpaca: one bare array ==============================================================


def _alp_list(
    client: httpx.Client, profile: Profile, req: str, params: Any = None
) -> tuple[list[dict[str, Any]], httpx.Response]:
    op = profile.operation("list_accounts")
    response = client.get(op.path, params=params)
    expect_status(response, op.success, req)
    body = json_body(response, req)
    check(
        isinstance(body, list) and all(isinstance(i, dict) for i in body),
        req,
        "a bare JSON array of account objects",
        type(body).__name__,
        response,
    )
    return body, response


@pytest.mark.requirement("ALP-LIST-001")
def test_alpaca_list_is_a_bare_array(new_account, client, profile):
    """Listing accounts answers 200 with a bare JSON array of accounts, with no envelope."""
    new_account()
    items, response = _alp_list(client, profile, "ALP-LIST-001")
    check(len(items) > 0, "ALP-LIST-001", "at least the account just created", "[]", response)
    check(
        all(isinstance(i.get("id"), str) and "status" in i for i in items),
        "ALP-LIST-001",
        "each item an account with id and status",
        items[:1],
        response,
    )


@pytest.mark.requirement("ALP-LIST-002")
def test_alpaca_list_defaults_to_newest_first(new_account, client, profile):
    """Without a sort parameter the list is ordered by created_at, newest first."""
    older, newer = new_account(), new_account()
    items, response = _alp_list(client, profile, "ALP-LIST-002")
    check_created_order(items, profile.pagination.default_sort == "desc", "ALP-LIST-002", response)
    ids = ids_of(items)
    check(
        newer["id"] in ids and older["id"] in ids,
        "ALP-LIST-002",
        "the two accounts just created among the newest",
        f"{len(items)} accounts without them",
        response,
    )
    if parse_created_at(newer["created_at"], "ALP-LIST-002") > parse_created_at(
        older["created_at"], "ALP-LIST-002"
    ):
        check(
            ids.index(newer["id"]) < ids.index(older["id"]),
            "ALP-LIST-002",
            "the newer account listed before the older one",
            "the older one first",
            response,
        )


@pytest.mark.requirement("ALP-LIST-003")
def test_alpaca_list_sort_asc_is_oldest_first(new_account, client, profile):
    """With sort=asc the list is ordered by created_at, oldest first."""
    older, newer = new_account(), new_account()
    items, response = _alp_list(client, profile, "ALP-LIST-003", {"sort": "asc"})
    check_created_order(items, False, "ALP-LIST-003", response)
    ids = ids_of(items)
    later = parse_created_at(newer["created_at"], "ALP-LIST-003") > parse_created_at(
        older["created_at"], "ALP-LIST-003"
    )
    if later and newer["id"] in ids and older["id"] in ids:
        check(
            ids.index(older["id"]) < ids.index(newer["id"]),
            "ALP-LIST-003",
            "the older account listed before the newer one",
            "the newer one first",
            response,
        )


@pytest.mark.requirement("ALP-LIST-004")
def test_alpaca_status_filter_single(new_account, client, profile, cleanup):
    """A single status filter returns only accounts in that status, including the run's account in
    it."""
    req = "ALP-LIST-004"
    closed = profile.state_machine.closed
    shut, fresh = new_account(), new_account()
    close_test_account(client, profile, shut["id"], req, cleanup)

    def fetch(status: str) -> list[dict[str, Any]]:
        items, response = _alp_list(client, profile, req, {"status": status})
        wrong = [i for i in items if i.get("status") != status]
        check(
            not wrong,
            req,
            f"only accounts in status {status}",
            f"{len(wrong)} others, e.g. {wrong[:1]}",
            response,
        )
        return items

    check(
        shut["id"] in ids_of(fetch(closed)),
        req,
        f"the closed account {shut['id']} in the list filtered by status={closed}",
        "missing",
    )
    listed_in_own_status(client, profile, fresh["id"], req, fetch)


@pytest.mark.requirement("ALP-LIST-005")
def test_alpaca_status_filter_repeated(new_account, client, profile, cleanup):
    """A repeated status filter (status=A&status=B) returns only accounts in one of them."""
    req = "ALP-LIST-005"
    closed = profile.state_machine.closed
    shut, fresh = new_account(), new_account()
    close_test_account(client, profile, shut["id"], req, cleanup)

    def fetch(status: str) -> list[dict[str, Any]]:
        wanted = {closed, status}
        items, response = _alp_list(client, profile, req, [("status", closed), ("status", status)])
        wrong = [i for i in items if i.get("status") not in wanted]
        check(
            not wrong,
            req,
            f"only accounts in status {closed} or {status}",
            f"{len(wrong)} others, e.g. {wrong[:1]}",
            response,
        )
        check(
            shut["id"] in ids_of(items),
            req,
            f"the closed account {shut['id']} in the list (status={closed}&status={status})",
            "missing",
            response,
        )
        return items

    listed_in_own_status(client, profile, fresh["id"], req, fetch)


@pytest.mark.requirement("ALP-LIST-006")
def test_alpaca_query_by_email_or_account_number(new_account, client, profile, run_data):
    """A one-token query matching an account's email or account number returns that account and only
    matching accounts."""
    req = "ALP-LIST-006"
    email = run_data.email()
    account = new_account(**{"contact.email_address": email})
    for token in (email, account.get("account_number")):
        check(
            isinstance(token, str) and token != "",
            req,
            "an account number in the create response to search for",
            repr(token),
        )
        items, response = _alp_list(client, profile, req, {"query": token})
        check(
            account["id"] in ids_of(items),
            req,
            f"the account {account['id']} for query={token}",
            f"{len(items)} accounts without it",
            response,
        )
        others = [
            i for i in items if i.get("id") != account["id"] and token.lower() not in str(i).lower()
        ]
        check(
            not others,
            req,
            f"only accounts matching {token!r}",
            f"{len(others)} accounts that do not match, e.g. {others[0]['id']}" if others else "",
            response,
        )


@pytest.mark.requirement("ALP-LIST-007")
def test_alpaca_created_window(new_account, client, profile):
    """created_after and created_before keep only accounts created inside the window, given as
    timestamps or as dates."""
    req = "ALP-LIST-007"
    account = new_account()
    created = parse_created_at(account.get("created_at"), req)
    second = timedelta(seconds=1)
    day = created.astimezone(UTC).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    # Dates are read generously (either time zone, either end of the day): the window
    # [day-1, day+1] holds the account under every reading, [day+2, ...) and (..., day-2) never.
    windows = [
        (
            "timestamps",
            {
                "created_after": rfc3339(created - second),
                "created_before": rfc3339(created + second),
            },
            created - second,
            created + second,
            True,
        ),
        (
            "dates",
            {
                "created_after": (day - timedelta(days=1)).isoformat(),
                "created_before": (day + timedelta(days=1)).isoformat(),
            },
            midnight - timedelta(days=2),
            midnight + timedelta(days=3),
            True,
        ),
        ("timestamp after", {"created_after": rfc3339(created + second)}, created, None, False),
        ("timestamp before", {"created_before": rfc3339(created - second)}, None, created, False),
        (
            "date after",
            {"created_after": (day + timedelta(days=2)).isoformat()},
            midnight + timedelta(days=1),
            None,
            False,
        ),
        (
            "date before",
            {"created_before": (day - timedelta(days=2)).isoformat()},
            None,
            midnight,
            False,
        ),
    ]
    for name, params, low, high, inside in windows:
        items, response = _alp_list(client, profile, req, params)
        check_created_window(account, items, f"{name} {params}", (low, high), inside, req, response)


@pytest.mark.requirement("ALP-LIST-008")
def test_alpaca_entities_include_nested_objects(new_account, client, profile):
    """entities=contact,identity makes every listed account carry contact and identity objects."""
    req = "ALP-LIST-008"
    new_account()
    items, response = _alp_list(client, profile, req, {"entities": "contact,identity"})
    check(len(items) > 0, req, "at least the account just created", "[]", response)
    bare = [
        i.get("id")
        for i in items
        if not isinstance(i.get("contact"), dict) or not isinstance(i.get("identity"), dict)
    ]
    check(
        not bare,
        req,
        "contact and identity objects on every listed account",
        f"{len(bare)} accounts without them, e.g. {bare[:1]}",
        response,
    )


@pytest.mark.requirement("ALP-LIST-009")
def test_alpaca_list_holds_at_most_1000(new_account, client, profile):
    """A list response never holds more than 1,000 accounts."""
    new_account()
    cap = profile.pagination.max_limit
    for params in (None, {"sort": "asc"}, {"entities": "contact"}):
        items, response = _alp_list(client, profile, "ALP-LIST-009", params)
        check(
            len(items) <= cap,
            "ALP-LIST-009",
            f"at most {cap} accounts",
            f"{len(items)} accounts",
            response,
        )
