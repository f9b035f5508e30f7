"""Authentication on every operation: missing, wrong, malformed and foreign credentials give 401.

Rules from specs/<dialect>/<version>/requirements.yaml (areas AUTH), which cite the
reference sheets (shared/reference/alpaca.md sections 5, 6 and 9: HTTP Basic key:secret,
401 code 40110000; buildmarkets.md section 10 and the Buildmarkets Authentication and Error
Codes pages: X-API-Key + X-API-Secret, 401 UNAUTHORIZED) and RFC 7617 (the Basic scheme).
Each test runs once per operation in profile.yaml, with a request that is valid apart from
its credentials, against a real account where the path needs one.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from brokercert import catalog as catalog_mod
from brokercert.catalog import Profile
from brokercert.datagen import RunData, get
from brokercert.pytest_plugin import check, expect_status, json_body, session_settings

WRONG = "brokercert-wrong"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "op_name" in metafunc.fixturenames:
        metafunc.parametrize("op_name", list(session_settings().catalog.profile.operations))


@pytest.fixture(scope="module")
def account_id(target, profile, run_data: RunData, dialect, cleanup) -> str:
    """One real account for the paths that name an account (created with valid credentials)."""
    op = profile.operation("create_account")
    with target.client() as http:
        response = http.request(op.method, op.path, json=run_data.create_body(dialect))
    assert response.status_code == op.success, (
        f"creating the test account failed: HTTP {response.status_code} {response.text[:300]}"
    )
    new_id: str = response.json()["id"]
    cleanup.add(new_id)
    return new_id


def _send(
    anon_client: httpx.Client,
    profile: Profile,
    run_data: RunData,
    dialect: str,
    op_name: str,
    account_id: str,
    headers: dict[str, str],
) -> httpx.Response:
    """The operation with a valid request, sent with exactly ``headers`` as credentials."""
    op = profile.operation(op_name)
    path = op.path.replace("{" + profile.id_param + "}", account_id)
    bodies = {
        "create_account": lambda: run_data.create_body(dialect),
        "update_account": lambda: run_data.update_body(dialect),
        "upload_documents": lambda: run_data.upload_body(dialect),
        "submit_cip": lambda: run_data.cip_body(),
    }
    build = bodies.get(op_name)
    return anon_client.request(op.method, path, json=build() if build else None, headers=headers)


def _expect_401(response: httpx.Response, profile: Profile, req: str, case: str) -> None:
    """401 with the dialect's JSON error (and code UNAUTHORIZED where the dialect names codes)."""
    expect_status(response, 401, req)
    body = json_body(response, req)
    env = profile.error_envelope
    try:
        code = get(body, env.code_path)
        message = get(body, env.message_path)
    except (KeyError, TypeError):
        code = message = None
    check(
        code is not None and isinstance(message, str),
        req,
        f"a JSON error with {env.code_path} and {env.message_path} ({case})",
        str(body)[:300],
        response,
    )
    if env.code_type == "string":
        # buildmarkets: the requirement titles name the code.
        check(
            code == "UNAUTHORIZED", req, f"error code UNAUTHORIZED ({case})", repr(code), response
        )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _foreign_headers(profile: Profile, key: str, secret: str) -> list[tuple[str, dict[str, str]]]:
    """Valid key and secret, sent the way each other dialect sends them."""
    out = []
    for name in catalog_mod.dialects():
        auth = catalog_mod.load(name).profile.auth
        if name == profile.dialect or auth.scheme == profile.auth.scheme:
            continue
        if auth.scheme == "basic":
            out.append((f"{name} HTTP Basic", {"Authorization": _basic(key, secret)}))
        else:
            assert auth.key_header and auth.secret_header
            out.append(
                (
                    f"{name} {auth.key_header}/{auth.secret_header}",
                    {auth.key_header: key, auth.secret_header: secret},
                )
            )
    return out


def _run_cases(
    cases: list[tuple[str, dict[str, str]]],
    req: str,
    op_name: str,
    anon_client,
    profile,
    run_data,
    dialect,
    account_id,
) -> None:
    for case, headers in cases:
        response = _send(anon_client, profile, run_data, dialect, op_name, account_id, headers)
        _expect_401(response, profile, req, case)


@pytest.mark.requirement("ALP-AUTH-001", "BM-AUTH-001")
def test_no_credentials(op_name, anon_client, profile, run_data, dialect, account_id):
    """Every operation called without any credentials answers 401 with the dialect's JSON error."""
    req = "ALP-AUTH-001" if dialect == "alpaca" else "BM-AUTH-001"
    _run_cases(
        [("no credentials", {})], req, op_name, anon_client, profile, run_data, dialect, account_id
    )


@pytest.mark.requirement("ALP-AUTH-001", "BM-AUTH-001")
def test_other_dialects_credential_form(
    op_name, anon_client, profile, run_data, dialect, account_id, target
):
    """Every operation called with the right key and secret in another dialect's form (so without
    this dialect's credentials) answers 401."""
    req = "ALP-AUTH-001" if dialect == "alpaca" else "BM-AUTH-001"
    creds = target.credentials
    cases = _foreign_headers(profile, creds.key, creds.secret)
    check(bool(cases), req, "another dialect with another credential form", "none")
    _run_cases(cases, req, op_name, anon_client, profile, run_data, dialect, account_id)


@pytest.mark.requirement("ALP-AUTH-002", "BM-AUTH-003")
def test_wrong_key_or_secret(op_name, anon_client, profile, run_data, dialect, account_id, target):
    """Every operation called with an unknown key or a secret that does not match answers 401 with
    the dialect's JSON error."""
    req = "ALP-AUTH-002" if dialect == "alpaca" else "BM-AUTH-003"
    key, secret = target.credentials.key, target.credentials.secret
    auth = profile.auth
    cases: list[tuple[str, dict[str, Any]]]
    if auth.scheme == "basic":
        cases = [
            ("unknown key", {"Authorization": _basic(WRONG, secret)}),
            ("wrong secret", {"Authorization": _basic(key, WRONG)}),
        ]
    else:
        assert auth.key_header and auth.secret_header
        cases = [
            ("unknown key", {auth.key_header: WRONG, auth.secret_header: secret}),
            ("wrong secret", {auth.key_header: key, auth.secret_header: WRONG}),
        ]
    _run_cases(cases, req, op_name, anon_client, profile, run_data, dialect, account_id)


@pytest.mark.requirement("ALP-AUTH-003")
def test_malformed_basic_header(
    op_name, anon_client, profile, run_data, dialect, account_id, target
):
    """An Authorization header that is not well-formed HTTP Basic (other scheme, bad base64, no
    colon) answers 401."""
    key, secret = target.credentials.key, target.credentials.secret
    token = base64.b64encode(f"{key}:{secret}".encode()).decode("ascii")
    cases = [
        ("other scheme", {"Authorization": f"Bearer {token}"}),
        ("bad base64", {"Authorization": "Basic %%%not-base64%%%"}),
        (
            "no colon",
            {
                "Authorization": "Basic "
                + base64.b64encode(f"{key}{secret}".encode()).decode("ascii")
            },
        ),
        ("no credentials after the scheme", {"Authorization": "Basic"}),
    ]
    _run_cases(cases, "ALP-AUTH-003", op_name, anon_client, profile, run_data, dialect, account_id)


@pytest.mark.requirement("BM-AUTH-001")
def test_secret_without_key(op_name, anon_client, profile, run_data, dialect, account_id, target):
    """Every operation called with X-API-Secret but no X-API-Key answers 401 UNAUTHORIZED in the
    error envelope."""
    assert profile.auth.secret_header
    headers = {profile.auth.secret_header: target.credentials.secret}
    _run_cases(
        [("secret only", headers)],
        "BM-AUTH-001",
        op_name,
        anon_client,
        profile,
        run_data,
        dialect,
        account_id,
    )


@pytest.mark.requirement("BM-AUTH-002")
def test_key_without_secret(op_name, anon_client, profile, run_data, dialect, account_id, target):
    """Every operation called with a valid X-API-Key but no X-API-Secret answers 401 UNAUTHORIZED in
    the error envelope."""
    assert profile.auth.key_header
    headers = {profile.auth.key_header: target.credentials.key}
    _run_cases(
        [("key only", headers)],
        "BM-AUTH-002",
        op_name,
        anon_client,
        profile,
        run_data,
        dialect,
        account_id,
    )
