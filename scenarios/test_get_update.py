"""Reading and updating an account: read-back, unknown ids, permitted and immutable changes.

Rules: specs/alpaca/1.1.1/requirements.yaml (Alpaca accounts docs, seed 003, Listing an
Account and Updating an Account; reference sheet shared/reference/alpaca.md sections 6 and 9,
Get / list and Update) and specs/buildmarkets/1.0.0/requirements.yaml (Buildmarkets docs,
Accounts page and Error Codes page; reference sheet shared/reference/buildmarkets.md
section 10, Update).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from brokercert.pytest_plugin import check, expect_4xx, expect_status, json_body
from brokercert.pytest_plugin import requirement_for as _rid
from brokercert.pytest_plugin import value_at as _at

# The error code an unknown id answers with, where the requirement names one.
_NOT_FOUND_CODE = {"BM-ACC-022": "ACCOUNT_NOT_FOUND", "BM-ACC-026": "ACCOUNT_NOT_FOUND"}


def _call(
    client: httpx.Client, profile: Any, operation: str, account_id: str, **kwargs: Any
) -> httpx.Response:
    op = profile.operation(operation)
    return client.request(op.method, op.path.format(**{profile.id_param: account_id}), **kwargs)


def _open(client: httpx.Client, profile: Any, body: dict[str, Any], requirement: str) -> str:
    """Create the account the test works on and return its id (any 2xx will do here: the
    create status has its own requirement)."""
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
    return str(account["id"])


def _read(client: httpx.Client, profile: Any, account_id: str, requirement: str) -> Any:
    response = _call(client, profile, "get_account", account_id)
    expect_status(response, profile.operation("get_account").success, requirement)
    return json_body(response, requirement)


def _expect_envelope(response: httpx.Response, profile: Any, requirement: str) -> Any:
    """The dialect's error envelope: a code of the documented type and a string message."""
    env = profile.error_envelope
    body = json_body(response, requirement)
    code = _at(body, env.code_path)
    kind = str if env.code_type == "string" else int
    check(
        isinstance(code, kind)
        and not isinstance(code, bool)
        and isinstance(_at(body, env.message_path), str),
        requirement,
        f"an error body with a {env.code_type} {env.code_path} and a string {env.message_path}",
        repr(body)[:300],
        response,
    )
    return code


# ------------------------------------------------------------------ get


@pytest.mark.requirement("ALP-ACC-015", "BM-ACC-021")
def test_read_returns_the_created_account(client, profile, catalog, run_data, dialect):
    """Reading a created account answers 200 with that account: same id, account_type and
    created_at, and the submitted contact email and identity names."""
    rid = _rid(catalog, "ALP-ACC-015", "BM-ACC-021")
    body = run_data.create_body(dialect)
    op = profile.operation("create_account")
    created_response = client.request(op.method, op.path, json=body)
    check(
        200 <= created_response.status_code < 300,
        rid,
        "the test account to be created",
        f"HTTP {created_response.status_code}",
        created_response,
    )
    created = json_body(created_response, rid)
    read = _read(client, profile, created["id"], rid)
    check(isinstance(read, dict), rid, "the account as a JSON object", repr(read)[:200])
    expected = {
        "id": created["id"],
        "account_type": created.get("account_type"),
        "created_at": created.get("created_at"),
        "contact.email_address": body["contact"]["email_address"],
        "identity.given_name": body["identity"]["given_name"],
        "identity.family_name": body["identity"]["family_name"],
    }
    differences = {
        path: (want, _at(read, path)) for path, want in expected.items() if _at(read, path) != want
    }
    check(
        not differences,
        rid,
        "the values of the created account",
        f"(expected, read) differ at {differences}",
    )


@pytest.mark.requirement("ALP-ACC-016", "BM-ACC-022")
def test_read_unknown_id(client, profile, catalog):
    """Reading an account id that does not exist answers the dialect's not-found status (alpaca
    404 or 401, buildmarkets 404 ACCOUNT_NOT_FOUND) with an error body."""
    rid = _rid(catalog, "ALP-ACC-016", "BM-ACC-022")
    response = _call(client, profile, "get_account", str(uuid.uuid4()))
    expect_status(response, profile.unknown_account_status, rid)
    code = _expect_envelope(response, profile, rid)
    if rid in _NOT_FOUND_CODE:
        check(
            code == _NOT_FOUND_CODE[rid],
            rid,
            f"error code {_NOT_FOUND_CODE[rid]}",
            repr(code),
            response,
        )


# ------------------------------------------------------------------ update

_ALP_017 = pytest.mark.requirement("ALP-ACC-017")
_BM_023 = pytest.mark.requirement("BM-ACC-023")
_TRUSTED = {"given_name": "Tess", "family_name": "Trustworthy", "phone_number": "+15555550142"}
# (member, new value): the modifiable members each dialect's docs list.
_ALPACA_CHANGES = [
    (
        "contact",
        {"city": "Denver", "phone_number": "+15555550199", "street_address": ["1 Other Street"]},
    ),
    ("identity", {"funding_source": ["savings", "investments"]}),
    ("disclosures", {"employer_name": "Other Corp", "employment_position": "Analyst"}),
    ("trusted_contact", _TRUSTED),
]
_BUILDMARKETS_CHANGES = [
    ("contact", {"city": "Denver", "phone_number": "+13035550199"}),
    ("disclosures", {"is_control_person": True, "control_person_company_name": "Example Corp"}),
    ("trusted_contact", _TRUSTED),
    ("employment", {"employment_status": "employed", "employer_name": "Example Corp"}),
    ("investment_profile", {"risk_tolerance": "aggressive", "time_horizon": "long"}),
    ("registered_rep_code", "RR-042"),
]
_PERMITTED = [
    *[
        pytest.param(m, v, "ALP-ACC-017", marks=_ALP_017, id=f"alpaca-{m}")
        for m, v in _ALPACA_CHANGES
    ],
    *[
        pytest.param(m, v, "BM-ACC-023", marks=_BM_023, id=f"buildmarkets-{m}")
        for m, v in _BUILDMARKETS_CHANGES
    ],
]


def _shows(account: Any, member: str, sent: Any) -> dict[str, Any]:
    """What of ``sent`` the account does not show under ``member`` (empty when all shows)."""
    got = account.get(member) if isinstance(account, dict) else None
    if not isinstance(sent, dict):
        return {} if got == sent else {member: got}
    if not isinstance(got, dict):
        return {member: got}
    return {f"{member}.{k}": got.get(k) for k, v in sent.items() if got.get(k) != v}


@pytest.mark.parametrize(("member", "change", "requirement"), _PERMITTED)
def test_update_of_modifiable_member_is_kept(
    client, profile, run_data, dialect, member, change, requirement
):
    """An update of a modifiable member answers 200 with the account showing the new value, and
    a later read shows it too."""
    account_id = _open(client, profile, run_data.create_body(dialect), requirement)
    response = _call(client, profile, "update_account", account_id, json={member: change})
    expect_status(response, profile.operation("update_account").success, requirement)
    answered = json_body(response, requirement)
    check(
        isinstance(answered, dict) and answered.get("id") == account_id,
        requirement,
        f"the account {account_id} in the answer",
        repr(answered)[:200],
        response,
    )
    stale = _shows(answered, member, change)
    check(not stale, requirement, f"the answer shows {member} = {change!r}", stale, response)
    stale = _shows(_read(client, profile, account_id, requirement), member, change)
    check(not stale, requirement, f"a later read shows {member} = {change!r}", stale)


@pytest.mark.requirement("ALP-ACC-018", "BM-ACC-025")
def test_update_of_tax_id_is_refused(client, profile, catalog, run_data, dialect):
    """An update that tries to change identity.tax_id is refused (alpaca 422, buildmarkets a 4xx
    in the error envelope) and any tax_id a read shows is still the original."""
    rid = _rid(catalog, "ALP-ACC-018", "BM-ACC-025")
    body = run_data.create_body(dialect)
    original = body["identity"]["tax_id"]
    account_id = _open(client, profile, body, rid)
    change = {"identity": {"tax_id": run_data.tax_id(dialect)}}
    response = _call(client, profile, "update_account", account_id, json=change)
    if dialect == "alpaca":
        expect_status(response, 422, rid)
    else:
        expect_4xx(response, rid)
        _expect_envelope(response, profile, rid)
    # Responses need not show the tax id at all (ALP-SCHEMA-004); when one does, it must not
    # have changed.
    shown = _at(_read(client, profile, account_id, rid), "identity.tax_id")
    check(shown in (None, original), rid, "the original tax_id (or none shown)", "a new tax_id")


@pytest.mark.requirement("ALP-ACC-019", "BM-ACC-024")
def test_update_of_date_of_birth_is_refused(client, profile, catalog, run_data, dialect):
    """An update that tries to change identity.date_of_birth is refused (alpaca 422, buildmarkets
    a 4xx in the error envelope) and the stored date of birth is unchanged."""
    rid = _rid(catalog, "ALP-ACC-019", "BM-ACC-024")
    body = run_data.create_body(dialect)
    original = body["identity"]["date_of_birth"]
    account_id = _open(client, profile, body, rid)
    response = _call(
        client,
        profile,
        "update_account",
        account_id,
        json={"identity": {"date_of_birth": "1985-06-30"}},
    )
    if dialect == "alpaca":
        expect_status(response, 422, rid)
    else:
        expect_4xx(response, rid)
        _expect_envelope(response, profile, rid)
    shown = _at(_read(client, profile, account_id, rid), "identity.date_of_birth")
    check(shown == original, rid, f"identity.date_of_birth still {original}", repr(shown))


_NOT_JSON = [b"{", b"not json", b'{"contact": {"city": }}', b"{'contact': {}}"]


@pytest.mark.requirement("ALP-ACC-020", "BM-ERR-003")
@pytest.mark.parametrize("raw", _NOT_JSON, ids=[r.decode() for r in _NOT_JSON])
def test_update_with_body_that_is_not_json(client, profile, catalog, run_data, dialect, raw):
    """An update whose body is not valid JSON is refused with 400 (buildmarkets: in the error
    envelope)."""
    rid = _rid(catalog, "ALP-ACC-020", "BM-ERR-003")
    account_id = _open(client, profile, run_data.create_body(dialect), rid)
    response = _call(
        client,
        profile,
        "update_account",
        account_id,
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    expect_status(response, 400, rid)
    if rid == "BM-ERR-003":
        _expect_envelope(response, profile, rid)


@pytest.mark.requirement("ALP-ACC-021", "BM-ACC-026")
def test_update_of_unknown_id(client, profile, catalog, run_data, dialect):
    """Updating an account id that does not exist answers the dialect's not-found status (alpaca
    404 or 401, buildmarkets 404 ACCOUNT_NOT_FOUND)."""
    rid = _rid(catalog, "ALP-ACC-021", "BM-ACC-026")
    response = _call(
        client, profile, "update_account", str(uuid.uuid4()), json=run_data.update_body(dialect)
    )
    expect_status(response, profile.unknown_account_status, rid)
    if rid in _NOT_FOUND_CODE:
        code = _expect_envelope(response, profile, rid)
        check(
            code == _NOT_FOUND_CODE[rid],
            rid,
            f"error code {_NOT_FOUND_CODE[rid]}",
            repr(code),
            response,
        )
