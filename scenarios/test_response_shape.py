"""Account answers in the shape clients rely on: status values, case, nested fields, timestamps.

Rules: specs/alpaca/1.1.1/requirements.yaml (Alpaca docs, Account Status enum and accounts
sample; reference sheet shared/reference/alpaca.md section 2, alpaca-py 0.44 parsing needs,
and section 9, Case; alpaca-py issue 212) and specs/buildmarkets/1.0.0/requirements.yaml
(Buildmarkets llms.txt, conventions: timestamps are ISO 8601 UTC).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from brokercert.pytest_plugin import check, expect_status, json_body

# ISO 8601 date and time with an explicit UTC designator (Z or a zero offset).
_UTC_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]00(?::?00)?)$"
)


def _create(
    client: httpx.Client, profile: Any, body: dict[str, Any], requirement: str
) -> tuple[httpx.Response, dict[str, Any]]:
    """Create an account (any 2xx: the create status has its own requirement)."""
    op = profile.operation("create_account")
    response = client.request(op.method, op.path, json=body)
    check(
        200 <= response.status_code < 300,
        requirement,
        "the test account to be created (2xx)",
        f"HTTP {response.status_code}",
        response,
    )
    account = json_body(response, requirement)
    check(
        isinstance(account, dict) and isinstance(account.get("id"), str),
        requirement,
        "the created account with its id",
        repr(account)[:200],
        response,
    )
    return response, account


def _call(
    client: httpx.Client, profile: Any, operation: str, account_id: str, **kwargs: Any
) -> httpx.Response:
    op = profile.operation(operation)
    return client.request(op.method, op.path.format(**{profile.id_param: account_id}), **kwargs)


def _read(client: httpx.Client, profile: Any, account_id: str, requirement: str):
    response = _call(client, profile, "get_account", account_id)
    expect_status(response, profile.operation("get_account").success, requirement)
    return response, json_body(response, requirement)


def _list(
    client: httpx.Client, profile: Any, requirement: str, **params: str
) -> tuple[httpx.Response, list[Any]]:
    op = profile.operation("list_accounts")
    response = client.request(op.method, op.path, params=params)
    expect_status(response, op.success, requirement)
    items = json_body(response, requirement)
    for key in (profile.pagination.items_path or "").split("."):
        if key:
            items = items.get(key) if isinstance(items, dict) else None
    check(isinstance(items, list), requirement, "a list of accounts", repr(items)[:200], response)
    return response, items


def _update(client, profile, account_id, change, requirement):
    response = _call(client, profile, "update_account", account_id, json=change)
    expect_status(response, profile.operation("update_account").success, requirement)
    return response, json_body(response, requirement)


# ------------------------------------------------------------------ alpaca


@pytest.mark.requirement("ALP-SCHEMA-001")
def test_every_reported_status_is_a_documented_status(client, profile, run_data, dialect):
    """The status of every account in a create, read, update or list answer is one of the
    twelve documented account statuses."""
    rid = "ALP-SCHEMA-001"
    statuses = profile.state_machine.states
    response, account = _create(client, profile, run_data.create_body(dialect), rid)
    answers: list[tuple[str, httpx.Response, list[Any]]] = [("create", response, [account])]
    response, read = _read(client, profile, account["id"], rid)
    answers.append(("read", response, [read]))
    response, updated = _update(client, profile, account["id"], run_data.update_body(dialect), rid)
    answers.append(("update", response, [updated]))
    response, items = _list(client, profile, rid)
    answers.append(("list", response, items))
    for name, response, accounts in answers:
        odd = [a.get("status") if isinstance(a, dict) else a for a in accounts]
        odd = [s for s in odd if s not in statuses]
        check(not odd, rid, f"{name}: statuses among {', '.join(statuses)}", odd, response)


@pytest.mark.requirement("ALP-SCHEMA-002")
@pytest.mark.parametrize(
    ("on_create", "on_update"), [("employed", "retired"), ("student", "unemployed")]
)
def test_employment_status_is_answered_in_upper_case(
    client, profile, run_data, dialect, on_create, on_update
):
    """Responses give disclosures.employment_status in upper case, whatever case the request
    used (lower case sent to create and update; create, read, update and list answers)."""
    rid = "ALP-SCHEMA-002"
    body = run_data.create_body(dialect, **{"disclosures.employment_status": on_create})
    response, account = _create(client, profile, body, rid)
    answers = [("create", response, account, on_create.upper())]
    response, read = _read(client, profile, account["id"], rid)
    answers.append(("read", response, read, on_create.upper()))
    response, updated = _update(
        client, profile, account["id"], {"disclosures": {"employment_status": on_update}}, rid
    )
    answers.append(("update", response, updated, on_update.upper()))
    response, items = _list(
        client, profile, rid, query=body["contact"]["email_address"], entities="disclosures"
    )
    mine = [a for a in items if isinstance(a, dict) and a.get("id") == account["id"]]
    check(len(mine) == 1, rid, "the account in the list", f"{len(mine)} matching items", response)
    answers.append(("list", response, mine[0], on_update.upper()))
    for name, response, answered, expected in answers:
        disclosures = answered.get("disclosures")
        got = disclosures.get("employment_status") if isinstance(disclosures, dict) else None
        check(got == expected, rid, f"{name}: employment_status {expected!r}", repr(got), response)


def _missing_for_alpaca_py(account: Any) -> list[str]:
    """Members alpaca-py 0.44 needs that the account lacks (reference sheet section 2)."""
    missing: list[str] = []
    contact, identity = account.get("contact"), account.get("identity")
    disclosures = account.get("disclosures")
    if not isinstance(contact, dict):
        missing.append("contact")
    else:
        if not isinstance(contact.get("email_address"), str):
            missing.append("contact.email_address")
        lines = contact.get("street_address")
        if not (isinstance(lines, list) and all(isinstance(x, str) for x in lines)):
            missing.append("contact.street_address (a list of strings)")
        if not isinstance(contact.get("city"), str):
            missing.append("contact.city")
    if not isinstance(identity, dict):
        missing.append("identity")
    else:
        missing += [
            f"identity.{k}"
            for k in ("given_name", "family_name", "country_of_tax_residence")
            if not isinstance(identity.get(k), str)
        ]
    if not isinstance(disclosures, dict):
        missing.append("disclosures")
    elif not isinstance(disclosures.get("immediate_family_exposed"), bool):
        missing.append("disclosures.immediate_family_exposed")
    documents = account.get("documents")
    if not isinstance(documents, list) or not documents:
        missing.append("documents (the one sent at creation)")
    else:
        missing += [
            f"documents[{i}].id"
            for i, d in enumerate(documents)
            if not (isinstance(d, dict) and isinstance(d.get("id"), str) and d["id"])
        ]
    return missing


@pytest.mark.requirement("ALP-SCHEMA-003")
def test_account_read_carries_what_alpaca_py_needs(client, profile, run_data, dialect):
    """An account read carries the nested fields alpaca-py needs: contact email, street lines and
    city; identity names and tax residence; disclosures; an id on every document."""
    rid = "ALP-SCHEMA-003"
    body = run_data.create_body(dialect, documents=[run_data.document(dialect)])
    _, account = _create(client, profile, body, rid)
    response, read = _read(client, profile, account["id"], rid)
    missing = _missing_for_alpaca_py(read) if isinstance(read, dict) else ["the account object"]
    check(
        not missing,
        rid,
        "every member alpaca-py needs",
        f"missing or malformed: {missing}",
        response,
    )


def _tax_id_leaks(response: httpx.Response, accounts: list[Any], tax_id: str) -> list[str]:
    leaks = [
        f"identity.tax_id of {a.get('id')}"
        for a in accounts
        if isinstance(a, dict) and isinstance(a.get("identity"), dict) and "tax_id" in a["identity"]
    ]
    digits = re.sub(r"\D", "", tax_id)
    if tax_id in response.text or digits in re.sub(r"[-\s]", "", response.text):
        leaks.append("the submitted tax id's digits in the body")
    return leaks


@pytest.mark.requirement("ALP-SCHEMA-004")
def test_no_answer_echoes_the_tax_id(client, profile, run_data, dialect):
    """No create, read, update or list answer echoes identity.tax_id."""
    rid = "ALP-SCHEMA-004"
    body = run_data.create_body(dialect)
    tax_id = body["identity"]["tax_id"]
    response, account = _create(client, profile, body, rid)
    answers = [("create", response, [account])]
    response, read = _read(client, profile, account["id"], rid)
    answers.append(("read", response, [read]))
    response, updated = _update(client, profile, account["id"], run_data.update_body(dialect), rid)
    answers.append(("update", response, [updated]))
    response, items = _list(
        client, profile, rid, query=body["contact"]["email_address"], entities="identity"
    )
    answers.append(("list", response, items))
    for name, response, accounts in answers:
        leaks = _tax_id_leaks(response, accounts, tax_id)
        check(not leaks, rid, f"{name}: no tax_id in the answer", leaks, response)


# ------------------------------------------------------------------ buildmarkets


def _not_utc(value: Any) -> bool:
    if not isinstance(value, str) or not _UTC_TIMESTAMP.match(value):
        return True
    try:
        moment = datetime.fromisoformat(value.replace(",", "."))
    except ValueError:
        return True
    return moment.utcoffset() != timedelta(0)


@pytest.mark.requirement("BM-SCHEMA-001")
def test_created_at_is_iso_8601_utc(client, profile, run_data, dialect):
    """Timestamps in account answers (created_at) are ISO 8601 in UTC, in the create answer, a
    read and a list page."""
    rid = "BM-SCHEMA-001"
    response, account = _create(client, profile, run_data.create_body(dialect), rid)
    answers = [("create", response, [account])]
    response, read = _read(client, profile, account["id"], rid)
    answers.append(("read", response, [read]))
    response, items = _list(client, profile, rid)
    answers.append(("list", response, items))
    for name, response, accounts in answers:
        bad = [a.get("created_at") if isinstance(a, dict) else a for a in accounts]
        bad = [v for v in bad if _not_utc(v)]
        check(not bad, rid, f"{name}: created_at like 2025-06-01T14:32:00Z", bad, response)
