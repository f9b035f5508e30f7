"""Listing buildmarkets accounts: the {data, pagination} envelope, page sizes and their
bounds, a cursor walk that sees every account exactly once, filters and sorting.

Rules from specs/buildmarkets/<version>/requirements.yaml (area LIST), which cite the
Buildmarkets llms.txt pagination conventions, docs repo platform/accounts.mdx@638ef9cc and
the reference sheet (shared/reference/buildmarkets.md section 10). Page sizes and the
envelope paths come from profile.yaml (pagination).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from _listing import (
    BATCH,
    MAX_PAGES,
    WALK_LIMIT,
    check_created_order,
    check_created_window,
    close_test_account,
    ids_of,
    listed_in_own_status,
    parse_created_at,
    rfc3339,
    unique_family_name,
)

from brokercert.catalog import Profile
from brokercert.datagen import RunData, get
from brokercert.pytest_plugin import check, expect_status, json_body, violation

# == buildmarkets: {data, pagination{next_cursor, has_more}} ================================


def _bm_page(
    client: httpx.Client, profile: Profile, req: str, params: Any = None
) -> tuple[list[dict[str, Any]], Any, Any, httpx.Response]:
    """One page: (items, next_cursor, has_more, response), the envelope checked for ``req``."""
    pg = profile.pagination
    op = profile.operation("list_accounts")
    response = client.get(op.path, params=params)
    expect_status(response, op.success, req)
    body = json_body(response, req)
    try:
        items = get(body, pg.items_path or "data")
        cursor = get(body, pg.next_cursor_path or "pagination.next_cursor")
        more = get(body, pg.has_more_path or "pagination.has_more")
    except (KeyError, TypeError):
        raise violation(
            req,
            f"an object with {pg.items_path}, {pg.next_cursor_path} and {pg.has_more_path}",
            str(body)[:300],
            response,
        ) from None
    check(
        isinstance(items, list) and all(isinstance(i, dict) for i in items),
        req,
        f"{pg.items_path} an array of accounts",
        type(items).__name__,
        response,
    )
    return items, cursor, more, response


def _bm_collect(
    client: httpx.Client,
    profile: Profile,
    req: str,
    params: dict[str, Any],
    want: str | None = None,
) -> list[dict[str, Any]]:
    """Items of every page (at most MAX_PAGES), or up to the page holding ``want``."""
    out: list[dict[str, Any]] = []
    query = dict(params)
    for _ in range(MAX_PAGES):
        items, cursor, more, _ = _bm_page(client, profile, req, query)
        out += items
        if (want is not None and want in ids_of(items)) or not more or not cursor:
            break
        query[profile.pagination.cursor_param or "cursor"] = cursor
    return out


@pytest.fixture(scope="module")
def name_batch(target, profile, run_data: RunData, dialect, cleanup) -> tuple[str, list[str]]:
    """BATCH accounts sharing one unique family name (the query token), oldest first."""
    token = unique_family_name()
    op = profile.operation("create_account")
    ids: list[str] = []
    with target.client() as http:
        for _ in range(BATCH):
            body = run_data.create_body(dialect, **{"identity.family_name": token})
            response = http.request(op.method, op.path, json=body)
            assert response.status_code == op.success, (
                f"creating a test account failed: HTTP {response.status_code} {response.text[:300]}"
            )
            ids.append(response.json()["id"])
            cleanup.add(ids[-1])
    return token, ids


@pytest.mark.requirement("BM-LIST-001")
def test_buildmarkets_list_envelope(new_account, client, profile):
    """Listing accounts answers 200 with an object holding a data array and pagination with
    next_cursor and has_more."""
    req = "BM-LIST-001"
    new_account()
    items, cursor, more, response = _bm_page(client, profile, req)
    check(len(items) > 0, req, "at least the account just created", "[]", response)
    check(isinstance(more, bool), req, "pagination.has_more a boolean", repr(more), response)
    check(
        cursor is None or isinstance(cursor, str),
        req,
        "pagination.next_cursor a string or null",
        repr(cursor),
        response,
    )
    check(
        not more or isinstance(cursor, str),
        req,
        "a next_cursor while has_more is true",
        repr(cursor),
        response,
    )


@pytest.mark.requirement("BM-LIST-002")
def test_buildmarkets_default_page_size(name_batch, client, profile):
    """Without a limit parameter a page never holds more than 25 accounts, and holds 25 when more
    accounts remain."""
    req = "BM-LIST-002"
    size = profile.pagination.default_limit or 25
    items, _, more, response = _bm_page(client, profile, req)
    # The batch alone is more than one default page, so the first page must be full.
    check(
        len(items) == size,
        req,
        f"exactly {size} accounts (the target holds at least {BATCH})",
        f"{len(items)} accounts",
        response,
    )
    check(more is True, req, "has_more true while accounts remain", repr(more), response)


@pytest.mark.requirement("BM-LIST-003")
def test_buildmarkets_limit_bounds(new_account, client, profile):
    """A limit of 100 returns at most 100 accounts, and a limit above 100 is refused with 400 in the
    error envelope or clamped to 100."""
    req = "BM-LIST-003"
    pg = profile.pagination
    new_account()
    param = pg.limit_param or "limit"
    items, _, _, response = _bm_page(client, profile, req, {param: pg.max_limit})
    check(
        len(items) <= pg.max_limit,
        req,
        f"at most {pg.max_limit} accounts",
        f"{len(items)} accounts",
        response,
    )
    op = profile.operation("list_accounts")
    over = client.get(op.path, params={param: pg.max_limit + 1})
    allowed = ([400] if "reject" in pg.over_max else []) + (
        [op.success] if "clamp" in pg.over_max else []
    )
    expect_status(over, allowed, req)
    body = json_body(over, req)
    if over.status_code == 400:
        try:
            code = get(body, profile.error_envelope.code_path)
        except (KeyError, TypeError):
            code = None
        check(
            isinstance(code, str),
            req,
            f"the error envelope with a code at {profile.error_envelope.code_path}",
            str(body)[:300],
            over,
        )
    else:
        try:
            listed = get(body, pg.items_path or "data")
        except (KeyError, TypeError):
            listed = None
        check(
            isinstance(listed, list) and len(listed) <= pg.max_limit,
            req,
            f"a page clamped to at most {pg.max_limit} accounts",
            f"{len(listed) if isinstance(listed, list) else listed!r} accounts",
            over,
        )


@pytest.mark.requirement("BM-LIST-004")
def test_buildmarkets_cursor_walk_sees_every_account_once(name_batch, client, profile):
    """Following next_cursor while has_more is true visits every account exactly once and ends on a
    page with has_more false."""
    req = "BM-LIST-004"
    token, created = name_batch
    pg = profile.pagination
    query: dict[str, Any] = {"query": token, pg.limit_param or "limit": WALK_LIMIT}
    seen: dict[str, int] = {}
    for page in range(1, MAX_PAGES + 1):
        items, cursor, more, response = _bm_page(client, profile, req, query)
        for account_id in ids_of(items):
            check(
                account_id not in seen,
                req,
                "each account on exactly one page",
                f"account {account_id} on page {seen.get(account_id)} and again on page {page}",
                response,
            )
            seen[account_id] = page
        if not more:
            break
        check(
            isinstance(cursor, str) and cursor != "",
            req,
            "a next_cursor while has_more is true",
            repr(cursor),
            response,
        )
        query[pg.cursor_param or "cursor"] = cursor
    else:
        raise violation(
            req,
            f"the walk ends (has_more false) within {MAX_PAGES} pages",
            f"has_more still true after {MAX_PAGES} pages of {WALK_LIMIT}",
        )
    missing = [i for i in created if i not in seen]
    check(
        not missing,
        req,
        f"all {len(created)} accounts named {token} visited",
        f"{len(missing)} never listed, e.g. {missing[:2]}",
        response,
    )


@pytest.mark.requirement("BM-LIST-005")
def test_buildmarkets_status_filter(new_account, client, profile, cleanup):
    """The status filter returns only accounts with that status."""
    req = "BM-LIST-005"
    closed = profile.state_machine.closed
    shut, fresh = new_account(), new_account()
    close_test_account(client, profile, shut["id"], req, cleanup)
    limit = {profile.pagination.limit_param or "limit": profile.pagination.max_limit}

    def fetch(status: str, want: str | None = None) -> list[dict[str, Any]]:
        items = _bm_collect(client, profile, req, {"status": status, **limit}, want)
        wrong = [i for i in items if i.get("status") != status]
        check(
            not wrong,
            req,
            f"only accounts with status {status}",
            f"{len(wrong)} others, e.g. {wrong[:1]}",
        )
        return items

    check(
        shut["id"] in ids_of(fetch(closed, shut["id"])),
        req,
        f"the closed account {shut['id']} in the list filtered by status={closed}",
        "missing",
    )
    listed_in_own_status(
        client, profile, fresh["id"], req, lambda status: fetch(status, fresh["id"])
    )


@pytest.mark.requirement("BM-LIST-006")
def test_buildmarkets_query_by_name_and_account_number(new_account, client, profile):
    """The query filter finds an account by its holder's name, and by its account number when it has
    one."""
    req = "BM-LIST-006"
    token = unique_family_name()
    account = new_account(**{"identity.family_name": token})
    number = account.get("account_number")
    for value in (token, number):
        if not value:  # an account without a number is found by name only
            continue
        items = _bm_collect(client, profile, req, {"query": value}, account["id"])
        check(
            account["id"] in ids_of(items),
            req,
            f"the account {account['id']} for query={value}",
            f"{len(items)} accounts without it",
        )
        others = [i for i in items if str(value).lower() not in str(i).lower()]
        check(
            not others,
            req,
            f"only accounts matching {value!r} (name or account number)",
            f"{len(others)} that do not, e.g. {others[0].get('id')}" if others else "",
        )


@pytest.mark.requirement("BM-LIST-007")
def test_buildmarkets_created_window(new_account, client, profile):
    """The created_after and created_before filters return only accounts created inside the window,
    including one known to be created inside it."""
    req = "BM-LIST-007"
    account = new_account()
    created = parse_created_at(account.get("created_at"), req)
    second = timedelta(seconds=1)
    limit = {profile.pagination.limit_param or "limit": profile.pagination.max_limit}
    windows = [
        (
            {
                "created_after": rfc3339(created - second),
                "created_before": rfc3339(created + second),
            },
            created - second,
            created + second,
            True,
        ),
        ({"created_after": rfc3339(created + second)}, created, None, False),
        ({"created_before": rfc3339(created - second)}, None, created, False),
    ]
    for params, low, high, inside in windows:
        items = _bm_collect(
            client, profile, req, {**params, **limit}, account["id"] if inside else None
        )
        check_created_window(account, items, str(params), (low, high), inside, req)


@pytest.mark.requirement("BM-LIST-008")
def test_buildmarkets_sort(new_account, client, profile):
    """sort=created_at:asc orders a page by created_at ascending and sort=created_at:desc by
    created_at descending."""
    req = "BM-LIST-008"
    new_account()
    new_account()
    limit = {profile.pagination.limit_param or "limit": profile.pagination.max_limit}
    pages = {}
    for order, descending in (("created_at:asc", False), ("created_at:desc", True)):
        items, _, _, response = _bm_page(client, profile, req, {"sort": order, **limit})
        check(
            len(items) >= 2,
            req,
            "at least the two accounts just created",
            f"{len(items)} accounts",
            response,
        )
        check_created_order(items, descending, req, response)
        pages[order] = items
    first = [parse_created_at(p[0].get("created_at"), req) for p in pages.values()]
    check(
        first[0] <= first[1],
        req,
        "the ascending page starts no later than the descending one",
        f"asc starts {pages['created_at:asc'][0].get('created_at')}, desc starts "
        f"{pages['created_at:desc'][0].get('created_at')}",
    )
