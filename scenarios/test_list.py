"""Listing accounts: the response shape, sorting, filters, page size and the cursor walk.

Rules from specs/<dialect>/<version>/requirements.yaml (areas LIST), which cite the alpaca
accounts docs (seed 003, Listing All Accounts), alpaca-py's repeated status parameter, the
Buildmarkets llms.txt pagination conventions and docs repo platform/accounts.mdx@638ef9cc, and
the reference sheets (shared/reference/alpaca.md sections 1 and 9, buildmarkets.md section 10).
Page sizes, the envelope paths and the default sort come from profile.yaml (pagination).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from brokercert.catalog import Profile
from brokercert.datagen import RunData, get
from brokercert.pytest_plugin import check, expect_status, json_body, violation

BATCH = 30  # accounts created for the page-size and cursor-walk tests
WALK_LIMIT = 7
MAX_PAGES = 60  # bound on any walk: BATCH / WALK_LIMIT pages are enough, with room to spare


def _path(profile: Profile, op_name: str, account_id: str) -> str:
    return profile.operation(op_name).path.replace("{" + profile.id_param + "}", account_id)


def _token() -> str:
    """A run-unique word of letters only (a valid family name), e.g. Bcqhfkamdpeob."""
    return "Bc" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


def _moment(text: Any, req: str, response: httpx.Response | None = None) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).replace("z", "Z"))
    except ValueError:
        raise violation(req, "created_at as an RFC 3339 timestamp", repr(text), response) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ids(items: Sequence[dict[str, Any]]) -> list[str]:
    return [str(item.get("id")) for item in items]


def _check_order(
    items: Sequence[dict[str, Any]], descending: bool, req: str, response: httpx.Response
) -> None:
    """Fail ``req`` at the first neighbours out of created_at order (equal times are fine)."""
    times = [_moment(item.get("created_at"), req, response) for item in items]
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


def _close(client: httpx.Client, profile: Profile, account_id: str, req: str, cleanup: Any) -> None:
    op = profile.operation(profile.close.operation)
    response = client.request(op.method, _path(profile, profile.close.operation, account_id))
    check(
        200 <= response.status_code < 300,
        req,
        "closing the test account succeeds (2xx)",
        f"HTTP {response.status_code}",
        response,
    )
    cleanup.forget(account_id)


def _read_status(client: httpx.Client, profile: Profile, account_id: str, req: str) -> str:
    response = client.get(_path(profile, "get_account", account_id))
    expect_status(response, profile.operation("get_account").success, req)
    return str(json_body(response, req).get("status"))


def _listed_in_own_status(
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
    status = _read_status(client, profile, account_id, req)
    for _ in range(3):
        items = fetch(status)
        if account_id in _ids(items):
            return status, items
        now = _read_status(client, profile, account_id, req)
        if now == status:
            break
        status = now
    raise violation(
        req,
        f"the account {account_id} (status {status}) in the list filtered by status={status}",
        f"{len(items)} accounts without it",
    )


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
    _check_order(items, profile.pagination.default_sort == "desc", "ALP-LIST-002", response)
    ids = _ids(items)
    check(
        newer["id"] in ids and older["id"] in ids,
        "ALP-LIST-002",
        "the two accounts just created among the newest",
        f"{len(items)} accounts without them",
        response,
    )
    if _moment(newer["created_at"], "ALP-LIST-002") > _moment(older["created_at"], "ALP-LIST-002"):
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
    _check_order(items, False, "ALP-LIST-003", response)
    ids = _ids(items)
    later = _moment(newer["created_at"], "ALP-LIST-003") > _moment(
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
    _close(client, profile, shut["id"], req, cleanup)

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
        shut["id"] in _ids(fetch(closed)),
        req,
        f"the closed account {shut['id']} in the list filtered by status={closed}",
        "missing",
    )
    _listed_in_own_status(client, profile, fresh["id"], req, fetch)


@pytest.mark.requirement("ALP-LIST-005")
def test_alpaca_status_filter_repeated(new_account, client, profile, cleanup):
    """A repeated status filter (status=A&status=B) returns only accounts in one of them."""
    req = "ALP-LIST-005"
    closed = profile.state_machine.closed
    shut, fresh = new_account(), new_account()
    _close(client, profile, shut["id"], req, cleanup)

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
            shut["id"] in _ids(items),
            req,
            f"the closed account {shut['id']} in the list (status={closed}&status={status})",
            "missing",
            response,
        )
        return items

    _listed_in_own_status(client, profile, fresh["id"], req, fetch)


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
            account["id"] in _ids(items),
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
    created = _moment(account.get("created_at"), req)
    second = timedelta(seconds=1)
    day = created.astimezone(UTC).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    # Dates are read generously (either time zone, either end of the day): the window
    # [day-1, day+1] holds the account under every reading, [day+2, ...) and (..., day-2) never.
    windows = [
        (
            "timestamps",
            {"created_after": _stamp(created - second), "created_before": _stamp(created + second)},
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
        ("timestamp after", {"created_after": _stamp(created + second)}, created, None, False),
        ("timestamp before", {"created_before": _stamp(created - second)}, None, created, False),
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
        listed = account["id"] in _ids(items)
        check(
            listed == inside,
            req,
            f"the account created {account['created_at']} {'in' if inside else 'not in'} "
            f"the list for {name} {params}",
            "listed" if listed else "not listed",
            response,
        )
        for item in items:
            at = _moment(item.get("created_at"), req, response)
            outside = (low is not None and at < low) or (high is not None and at > high)
            check(
                not outside,
                req,
                f"only accounts created inside {name} {params}",
                f"account {item.get('id')} created {item.get('created_at')}",
                response,
            )


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
        if (want is not None and want in _ids(items)) or not more or not cursor:
            break
        query[profile.pagination.cursor_param or "cursor"] = cursor
    return out


@pytest.fixture(scope="module")
def name_batch(target, profile, run_data: RunData, dialect, cleanup) -> tuple[str, list[str]]:
    """BATCH accounts sharing one unique family name (the query token), oldest first."""
    token = _token()
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
        for account_id in _ids(items):
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
    _close(client, profile, shut["id"], req, cleanup)
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
        shut["id"] in _ids(fetch(closed, shut["id"])),
        req,
        f"the closed account {shut['id']} in the list filtered by status={closed}",
        "missing",
    )
    _listed_in_own_status(
        client, profile, fresh["id"], req, lambda status: fetch(status, fresh["id"])
    )


@pytest.mark.requirement("BM-LIST-006")
def test_buildmarkets_query_by_name_and_account_number(new_account, client, profile):
    """The query filter finds an account by its holder's name, and by its account number when it has
    one."""
    req = "BM-LIST-006"
    token = _token()
    account = new_account(**{"identity.family_name": token})
    number = account.get("account_number")
    for value in (token, number):
        if not value:  # an account without a number is found by name only
            continue
        items = _bm_collect(client, profile, req, {"query": value}, account["id"])
        check(
            account["id"] in _ids(items),
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
    created = _moment(account.get("created_at"), req)
    second = timedelta(seconds=1)
    limit = {profile.pagination.limit_param or "limit": profile.pagination.max_limit}
    windows = [
        (
            {"created_after": _stamp(created - second), "created_before": _stamp(created + second)},
            created - second,
            created + second,
            True,
        ),
        ({"created_after": _stamp(created + second)}, created, None, False),
        ({"created_before": _stamp(created - second)}, None, created, False),
    ]
    for params, low, high, inside in windows:
        items = _bm_collect(
            client, profile, req, {**params, **limit}, account["id"] if inside else None
        )
        listed = account["id"] in _ids(items)
        check(
            listed == inside,
            req,
            f"the account created {account['created_at']} {'in' if inside else 'not in'} "
            f"the list for {params}",
            "listed" if listed else "not listed",
        )
        for item in items:
            at = _moment(item.get("created_at"), req)
            outside = (low is not None and at < low) or (high is not None and at > high)
            check(
                not outside,
                req,
                f"only accounts created inside {params}",
                f"account {item.get('id')} created {item.get('created_at')}",
            )


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
        _check_order(items, descending, req, response)
        pages[order] = items
    first = [_moment(p[0].get("created_at"), req) for p in pages.values()]
    check(
        first[0] <= first[1],
        req,
        "the ascending page starts no later than the descending one",
        f"asc starts {pages['created_at:asc'][0].get('created_at')}, desc starts "
        f"{pages['created_at:desc'][0].get('created_at')}",
    )
