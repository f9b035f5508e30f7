"""Create-request validation: required members, formats, enumerations, agreement rules, bodies.

Rules: specs/alpaca/1.1.1/requirements.yaml (Alpaca accounts docs, seed 003, Creating an
Account; reference sheet shared/reference/alpaca.md section 9, Create, Invalid values and
Case) and specs/buildmarkets/1.0.0/requirements.yaml (Buildmarkets Compliance & KYC page,
seed 004, and Error Codes page; reference sheet shared/reference/buildmarkets.md
section 10, Create validation).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from brokercert.datagen import MISSING
from brokercert.pytest_plugin import check, expect_4xx, expect_status, json_body
from brokercert.pytest_plugin import requirement_for as _rid
from brokercert.pytest_plugin import value_at as _at

# Error codes of the buildmarkets reference sheet, section 10 (Create validation).
MISSING_FIELD = "MISSING_REQUIRED_FIELD"
VALIDATION_ERROR = "VALIDATION_ERROR"
INVALID_ENUM = "INVALID_ENUM_VALUE"
# Business-rule refusals may be 400 or 422 (BM-ACC-016 .. 019).
RULE_REFUSAL = (400, 422)


def _create(client: httpx.Client, profile: Any, body: Any) -> httpx.Response:
    op = profile.operation("create_account")
    return client.request(op.method, op.path, json=body)


def _send_raw(client: httpx.Client, profile: Any, raw: bytes) -> httpx.Response:
    op = profile.operation("create_account")
    return client.request(
        op.method, op.path, content=raw, headers={"Content-Type": "application/json"}
    )


def _expect_created(response: httpx.Response, profile: Any, requirement: str) -> None:
    """The dialect's create success status (for titles that name it: "answers 201")."""
    expect_status(response, profile.operation("create_account").success, requirement)


def _expect_accepted(response: httpx.Response, requirement: str) -> None:
    """Accepted: a 2xx with the new account (the exact create status is ALP-ACC-001/BM-ACC-001)."""
    check(
        200 <= response.status_code < 300,
        requirement,
        "a 2xx answer (accepted)",
        f"HTTP {response.status_code}",
        response,
    )
    body = json_body(response, requirement)
    check(
        isinstance(body, dict) and "id" in body,
        requirement,
        "the created account",
        repr(body)[:200],
        response,
    )


def _expect_error(
    response: httpx.Response,
    profile: Any,
    requirement: str,
    status: int | tuple[int, ...],
    code: str | None = None,
    field: str | None = None,
) -> None:
    """Status, then the dialect's error envelope: a code (``code`` if given) and ``field``."""
    expect_status(response, status, requirement)
    env = profile.error_envelope
    body = json_body(response, requirement)
    got_code = _at(body, env.code_path)
    kind = str if env.code_type == "string" else int
    check(
        isinstance(got_code, kind) and not isinstance(got_code, bool),
        requirement,
        f"an error envelope with a {env.code_type} code at {env.code_path}",
        repr(got_code),
        response,
    )
    if code is not None:
        check(got_code == code, requirement, f"error code {code}", repr(got_code), response)
    if field is not None:
        got_field = _at(body, env.field_path)
        check(
            got_field == field,
            requirement,
            f"{env.field_path} = {field!r}",
            repr(got_field),
            response,
        )


def _listed_ids(client: httpx.Client, profile: Any, requirement: str, token: str) -> list[str]:
    op = profile.operation("list_accounts")
    response = client.request(op.method, op.path, params={"query": token})
    expect_status(response, op.success, requirement)
    body = json_body(response, requirement)
    items = _at(body, profile.pagination.items_path) if profile.pagination.items_path else body
    check(isinstance(items, list), requirement, "a list of accounts", repr(items)[:200], response)
    return [a.get("id") for a in items if isinstance(a, dict)]


# ------------------------------------------------------------------ required members

_ALP_004 = pytest.mark.requirement("ALP-ACC-004")
_ALP_005 = pytest.mark.requirement("ALP-ACC-005")
_ALP_006 = pytest.mark.requirement("ALP-ACC-006")
_ALP_007 = pytest.mark.requirement("ALP-ACC-007")


@pytest.mark.parametrize(
    ("section", "requirement"),
    [
        pytest.param("contact", "ALP-ACC-004", marks=_ALP_004, id="contact"),
        pytest.param("identity", "ALP-ACC-005", marks=_ALP_005, id="identity"),
        pytest.param("disclosures", "ALP-ACC-006", marks=_ALP_006, id="disclosures"),
        pytest.param("agreements", "ALP-ACC-007", marks=_ALP_007, id="agreements"),
    ],
)
def test_create_without_required_section_opens_nothing(
    client, profile, run_data, dialect, section, requirement
):
    """Create without one of contact, identity, disclosures or agreements is refused with a 4xx
    and opens no account."""
    email = run_data.email()
    name = f"Nobody{uuid.uuid4().hex[:12]}"  # findable through the list query when kept
    body = run_data.create_body(
        dialect, **{"contact.email_address": email, "identity.given_name": name}
    )
    del body[section]
    response = _create(client, profile, body)
    expect_4xx(response, requirement)
    for token in ([email] if section != "contact" else []) + (
        [name] if section != "identity" else []
    ):
        ids = _listed_ids(client, profile, requirement, token)
        check(not ids, requirement, f"no account matching {token!r}", f"accounts {ids}")


_BM_003 = pytest.mark.requirement("BM-ACC-003")
_BM_004 = pytest.mark.requirement("BM-ACC-004")
_BM_005 = pytest.mark.requirement("BM-ACC-005")
_BM_006 = pytest.mark.requirement("BM-ACC-006")
_BM_REQUIRED = [
    *[
        ("BM-ACC-003", _BM_003, p)
        for p in (
            "contact",
            "contact.email_address",
            "contact.city",
            "contact.state",
            "contact.postal_code",
        )
    ],
    *[
        ("BM-ACC-004", _BM_004, p)
        for p in (
            "identity",
            "identity.given_name",
            "identity.family_name",
            "identity.date_of_birth",
            "identity.tax_id",
        )
    ],
    ("BM-ACC-005", _BM_005, "agreements"),
    *[
        ("BM-ACC-006", _BM_006, p)
        for p in (
            "investment_profile",
            "investment_profile.risk_tolerance",
            "investment_profile.investment_objective",
            "investment_profile.annual_income_range",
            "investment_profile.net_worth_range",
            "investment_profile.liquid_net_worth_range",
        )
    ],
]


@pytest.mark.parametrize(
    ("path", "requirement"),
    [pytest.param(path, rid, marks=mark, id=path) for rid, mark, path in _BM_REQUIRED],
)
def test_create_missing_required_field_names_its_path(
    client, profile, run_data, dialect, path, requirement
):
    """A create request missing a required member answers 400 MISSING_REQUIRED_FIELD with field
    set to that member's dotted path."""
    response = _create(client, profile, run_data.create_body(dialect, **{path: MISSING}))
    _expect_error(response, profile, requirement, 400, MISSING_FIELD, path)


# ------------------------------------------------------------------ formats

_BAD_BIRTH_DATES = ["15/01/1990", "1990-1-15", "19900115", "1990-02-30", "1990-13-01", "soon"]


@pytest.mark.requirement("ALP-ACC-009", "BM-ACC-007")
@pytest.mark.parametrize("value", _BAD_BIRTH_DATES)
def test_create_refuses_date_of_birth_that_is_not_a_date(
    client, profile, catalog, run_data, dialect, value
):
    """An identity.date_of_birth that is not a real YYYY-MM-DD date is refused (alpaca 422,
    buildmarkets 400 VALIDATION_ERROR with field identity.date_of_birth)."""
    rid = _rid(catalog, "ALP-ACC-009", "BM-ACC-007")
    response = _create(
        client, profile, run_data.create_body(dialect, **{"identity.date_of_birth": value})
    )
    if dialect == "buildmarkets":
        _expect_error(response, profile, rid, 400, VALIDATION_ERROR, "identity.date_of_birth")
    else:
        expect_status(response, 422, rid)


_BM_008 = pytest.mark.requirement("BM-ACC-008")
_BM_009 = pytest.mark.requirement("BM-ACC-009")
_BM_010 = pytest.mark.requirement("BM-ACC-010")
_BM_011 = pytest.mark.requirement("BM-ACC-011")
_BM_FORMATS = [
    *[
        ("BM-ACC-008", _BM_008, "agreements[0].signed_at", v)
        for v in (
            "yesterday",
            "15/01/2024 10:00",
            "2024-13-01T10:00:00Z",
            "2024-01-15T25:00:00Z",
        )
    ],
    # shorter than 9 or longer than 11 characters
    *[
        ("BM-ACC-009", _BM_009, "identity.tax_id", v)
        for v in (
            "12345678",
            "1234-5678",
            "123456789012",
            "123-45-678901",
        )
    ],
    *[("BM-ACC-010", _BM_010, "contact.state", v) for v in ("Texas", "T", "12", "TXS")],
    *[
        ("BM-ACC-011", _BM_011, "contact.postal_code", v)
        for v in (
            "7870",
            "787011",
            "78701123",
            "7870112345",
            "ABCDE",
            "12345-678",
        )
    ],
]


@pytest.mark.parametrize(
    ("path", "value", "requirement"),
    [pytest.param(p, v, rid, marks=mark, id=f"{p}={v}") for rid, mark, p, v in _BM_FORMATS],
)
def test_create_refuses_badly_formatted_value(
    client, profile, run_data, dialect, path, value, requirement
):
    """A value that breaks its documented format answers 400 VALIDATION_ERROR with field set to
    its path."""
    response = _create(client, profile, run_data.create_body(dialect, **{path: value}))
    _expect_error(response, profile, requirement, 400, VALIDATION_ERROR, path)


@pytest.mark.requirement("BM-ACC-020")
@pytest.mark.parametrize("length", [256, 1000])
def test_create_refuses_corr_metadata_over_255_characters(
    client, profile, run_data, dialect, length
):
    """A corr_metadata longer than 255 characters answers 400 VALIDATION_ERROR with field
    corr_metadata."""
    body = run_data.create_body(dialect, corr_metadata="x" * length)
    response = _create(client, profile, body)
    _expect_error(response, profile, "BM-ACC-020", 400, VALIDATION_ERROR, "corr_metadata")


@pytest.mark.requirement("BM-ACC-012")
@pytest.mark.parametrize("form", ["digits", "ssn-dashes", "ein-dash"])
def test_create_accepts_tax_id_with_or_without_dashes(client, profile, run_data, dialect, form):
    """A tax_id of nine digits is accepted as 123456789, 123-45-6789 or 12-3456789."""
    digits = run_data.tax_id(dialect)  # nine digits, run-unique, no sandbox trigger suffix
    value = {
        "digits": digits,
        "ssn-dashes": f"{digits[:3]}-{digits[3:5]}-{digits[5:]}",
        "ein-dash": f"{digits[:2]}-{digits[2:]}",
    }[form]
    body = run_data.create_body(dialect, **{"identity.tax_id": value})
    _expect_accepted(_create(client, profile, body), "BM-ACC-012")


@pytest.mark.requirement("BM-ACC-013")
@pytest.mark.parametrize("zip_code", ["78701", "787011234"])
def test_create_accepts_five_and_nine_digit_zip(client, profile, run_data, dialect, zip_code):
    """A contact.postal_code of 5 digits and one of 9 digits are both accepted."""
    body = run_data.create_body(dialect, **{"contact.postal_code": zip_code})
    _expect_accepted(_create(client, profile, body), "BM-ACC-013")


# ------------------------------------------------------------------ enumerations

_ALP_008 = pytest.mark.requirement("ALP-ACC-008")
_BM_014 = pytest.mark.requirement("BM-ACC-014")
_ENUM_CASES = [
    *[
        pytest.param(p, v, "ALP-ACC-008", marks=_ALP_008, id=f"alpaca-{p}")
        for p, v in (
            ("identity.tax_id_type", "USA_PASSPORT_NUMBER"),
            ("identity.funding_source", ["lottery_winnings"]),
            ("agreements[0].agreement", "terms_of_service_agreement"),
            ("disclosures.employment_status", "SELF_EMPLOYED"),
            ("enabled_assets", ["us_futures"]),
        )
    ],
    *[
        pytest.param(p, v, "BM-ACC-014", marks=_BM_014, id=f"buildmarkets-{p}")
        for p, v in (
            ("account_type", "corporate"),
            ("identity.tax_id_type", "PASSPORT"),
            # appended after customer_agreement, so no agreement rule is broken as well
            ("agreements[1].agreement", "terms_of_service_agreement"),
            ("investment_profile.risk_tolerance", "reckless"),
            ("investment_profile.investment_objective", "lottery"),
            ("investment_profile.time_horizon", "forever"),
        )
    ],
]


@pytest.mark.parametrize(("path", "value", "requirement"), _ENUM_CASES)
def test_create_refuses_value_outside_enumeration(
    client, profile, run_data, dialect, path, value, requirement
):
    """A value outside a documented enumeration is refused (alpaca 422, buildmarkets 400
    INVALID_ENUM_VALUE with field set to its path)."""
    if path == "agreements[1].agreement":
        body = run_data.create_body(
            dialect, agreements=_agreements(run_data, dialect, "customer_agreement", value)
        )
    else:
        body = run_data.create_body(dialect, **{path: value})
    response = _create(client, profile, body)
    if dialect == "buildmarkets":
        _expect_error(response, profile, requirement, 400, INVALID_ENUM, path)
    else:
        expect_status(response, 422, requirement)


@pytest.mark.requirement("BM-ACC-015")
@pytest.mark.parametrize(
    "objective", ["growth", "income", "speculation", "capital_preservation", "other"]
)
def test_create_accepts_each_investment_objective(client, profile, run_data, dialect, objective):
    """Each investment_objective value growth, income, speculation, capital_preservation and
    other is accepted at creation."""
    body = run_data.create_body(dialect, **{"investment_profile.investment_objective": objective})
    _expect_accepted(_create(client, profile, body), "BM-ACC-015")


@pytest.mark.requirement("ALP-ACC-014")
@pytest.mark.parametrize(
    "employment_status",
    [
        "employed",
        "unemployed",
        "student",
        "retired",
        "EMPLOYED",
        "UNEMPLOYED",
        "STUDENT",
        "RETIRED",
    ],
)
def test_create_accepts_employment_status_in_either_case(
    client, profile, run_data, dialect, employment_status
):
    """Create accepts employment_status in lower case and in upper case."""
    body = run_data.create_body(dialect, **{"disclosures.employment_status": employment_status})
    _expect_accepted(_create(client, profile, body), "ALP-ACC-014")


# ------------------------------------------------------------------ agreement rules


def _agreements(run_data: Any, dialect: str, *names: str) -> list[dict[str, Any]]:
    template = run_data.create_body(dialect)["agreements"][0]
    return [{**template, "agreement": name} for name in names]


@pytest.mark.requirement("BM-ACC-016")
def test_create_without_customer_agreement_is_refused(client, profile, run_data, dialect):
    """A create request whose agreements hold no customer_agreement is refused with 400 or 422 in
    the error envelope."""
    body = run_data.create_body(
        dialect, agreements=_agreements(run_data, dialect, "account_agreement")
    )
    _expect_error(_create(client, profile, body), profile, "BM-ACC-016", RULE_REFUSAL)


@pytest.mark.requirement("BM-ACC-017")
def test_margin_requires_margin_agreement(client, profile, run_data, dialect):
    """With trading_configurations.margin_enabled true, create is refused without a
    margin_agreement and answers 201 with one."""
    config = {"trading_configurations.margin_enabled": True}
    without = run_data.create_body(
        dialect, agreements=_agreements(run_data, dialect, "customer_agreement"), **config
    )
    _expect_error(_create(client, profile, without), profile, "BM-ACC-017", RULE_REFUSAL)
    signed = _agreements(run_data, dialect, "customer_agreement", "margin_agreement")
    with_it = run_data.create_body(dialect, agreements=signed, **config)
    _expect_created(_create(client, profile, with_it), profile, "BM-ACC-017")


@pytest.mark.requirement("BM-ACC-018")
@pytest.mark.parametrize("level", [1, 3])
def test_options_level_requires_options_agreement(client, profile, run_data, dialect, level):
    """With trading_configurations.options_level above 0, create is refused without an
    options_agreement and answers 201 with one."""
    config = {"trading_configurations.options_level": level}
    without = run_data.create_body(
        dialect, agreements=_agreements(run_data, dialect, "customer_agreement"), **config
    )
    _expect_error(_create(client, profile, without), profile, "BM-ACC-018", RULE_REFUSAL)
    signed = _agreements(run_data, dialect, "customer_agreement", "options_agreement")
    with_it = run_data.create_body(dialect, agreements=signed, **config)
    _expect_created(_create(client, profile, with_it), profile, "BM-ACC-018")


@pytest.mark.requirement("BM-ACC-019")
def test_joint_account_requires_joint_owner(client, profile, run_data, dialect):
    """With account_type joint, create is refused without a joint_owner and answers 201 with
    one."""
    without = run_data.create_body(dialect, account_type="joint")
    _expect_error(_create(client, profile, without), profile, "BM-ACC-019", RULE_REFUSAL)
    owner = {
        "given_name": "Grace",
        "family_name": "Testperson",
        "date_of_birth": "1988-03-09",
        "tax_id": run_data.tax_id(dialect),
        "relationship": "spouse",
    }
    with_it = run_data.create_body(dialect, account_type="joint", joint_owner=owner)
    _expect_created(_create(client, profile, with_it), profile, "BM-ACC-019")


# ------------------------------------------------------------------ bodies

_NOT_JSON = [b"{", b"not json", b'{"contact": }', b"{'contact': {}}", b'{"a": 1}}']


@pytest.mark.requirement("ALP-ACC-010", "BM-ERR-002")
@pytest.mark.parametrize("raw", _NOT_JSON, ids=[r.decode() for r in _NOT_JSON])
def test_create_refuses_body_that_is_not_json(client, profile, catalog, raw):
    """A create request whose body is not valid JSON is refused with 400 (buildmarkets: in the
    error envelope)."""
    rid = _rid(catalog, "ALP-ACC-010", "BM-ERR-002")
    response = _send_raw(client, profile, raw)
    if rid == "BM-ERR-002":
        _expect_error(response, profile, rid, 400)
    else:
        expect_status(response, 400, rid)


@pytest.mark.requirement("ALP-ACC-011")
@pytest.mark.parametrize("kind", ["array", "array-of-account", "string", "number", "null", "true"])
def test_create_refuses_json_that_is_not_an_object(client, profile, run_data, dialect, kind):
    """Create with a JSON body that is not an object (array, string, number, null) is refused
    with 400."""
    value = {
        "array": [],
        "array-of-account": [run_data.create_body(dialect)],
        "string": "account",
        "number": 42,
        "null": None,
        "true": True,
    }[kind]
    response = _send_raw(client, profile, json.dumps(value).encode())
    expect_status(response, 400, "ALP-ACC-011")
