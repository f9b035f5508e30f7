"""Helpers of the list scenarios (test_list_alpaca.py, test_list_buildmarkets.py): timestamps,
order checks, closing a test account, and finding an account in a status-filtered list."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from brokercert.catalog import Profile
from brokercert.pytest_plugin import check, expect_status, json_body, violation

BATCH = 30  # accounts created for the page-size and cursor-walk tests
WALK_LIMIT = 7
MAX_PAGES = 60  # bound on any walk: BATCH / WALK_LIMIT pages are enough, with room to spare


def account_path(profile: Profile, op_name: str, account_id: str) -> str:
    return profile.operation(op_name).path.replace("{" + profile.id_param + "}", account_id)


def unique_family_name() -> str:
    """A run-unique word of letters only (a valid family name), e.g. Bcqhfkamdpeob."""
    return "Bc" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


def parse_created_at(text: Any, req: str, response: httpx.Response | None = None) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).replace("z", "Z"))
    except ValueError:
        raise violation(req, "created_at as an RFC 3339 timestamp", repr(text), response) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ids_of(items: Sequence[dict[str, Any]]) -> list[str]:
    return [str(item.get("id")) for item in items]


def check_created_order(
    items: Sequence[dict[str, Any]], descending: bool, req: str, response: httpx.Response
) -> None:
    """Fail ``req`` at the first neighbours out of created_at order (equal times are fine)."""
    times = [parse_created_at(item.get("created_at"), req, response) for item in items]
    for i, (a, b) in enumerate(itertools.pairwise(times)):
        wrong = a < b if descending else a > b
        if wrong:
            order = "newest first (descending)" if descending else "oldest first (ascending)"
            raise violation(
                req,
                f"items ordered by created_at, {order}",
                f"item {i} created {items[i].get('created_at')} then item {i + 1} created "
                f"{items[i + 1].get('created_at')}",
                response,
            )


def close_test_account(
    client: httpx.Client, profile: Profile, account_id: str, req: str, cleanup: Any
) -> None:
    op = profile.operation(profile.close.operation)
    response = client.request(op.method, account_path(profile, profile.close.operation, account_id))
    check(
        200 <= response.status_code < 300,
        req,
        "closing the test account succeeds (2xx)",
        f"HTTP {response.status_code}",
        response,
    )
    cleanup.forget(account_id)


def read_status(client: httpx.Client, profile: Profile, account_id: str, req: str) -> str:
    response = client.get(account_path(profile, "get_account", account_id))
    expect_status(response, profile.operation("get_account").success, req)
    return str(json_body(response, req).get("status"))


def listed_in_own_status(
    client: httpx.Client,
    profile: Profile,
    account_id: str,
    req: str,
    fetch: Callable[[str], list[dict[str, Any]]],
) -> tuple[str, list[dict[str, Any]]]:
    """Read the account's status S and list with status=S until the account is in it.

    A live target may move the account between the read and the list, so a miss is
    retried (at most three times) while the status keeps changing.
    """
    items: list[dict[str, Any]] = []
    status = read_status(client, profile, account_id, req)
    for _ in range(3):
        items = fetch(status)
        if account_id in ids_of(items):
            return status, items
        now = read_status(client, profile, account_id, req)
        if now == status:
            break
        status = now
    raise violation(
        req,
        f"the account {account_id} (status {status}) in the list filtered by status={status}",
        f"{len(items)} accounts without it",
    )


def check_created_window(
    account: dict[str, Any],
    items: Sequence[dict[str, Any]],
    window: str,
    bounds: tuple[datetime | None, datetime | None],
    inside: bool,
    req: str,
    response: httpx.Response | None = None,
) -> None:
    """The list for ``window`` holds ``account`` exactly when it was created ``inside``,
    and no account created outside ``bounds`` (low, high; None: open)."""
    low, high = bounds
    listed = account["id"] in ids_of(items)
    check(
        listed == inside,
        req,
        f"the account created {account['created_at']} {'in' if inside else 'not in'} "
        f"the list for {window}",
        "listed" if listed else "not listed",
        response,
    )
    for item in items:
        at = parse_created_at(item.get("created_at"), req, response)
        outside = (low is not None and at < low) or (high is not None and at > high)
        check(
            not outside,
            req,
            f"only accounts created inside {window}",
            f"account {item.get('id')} created {item.get('created_at')}",
            response,
        )
