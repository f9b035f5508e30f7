"""Error answers: the dialect's JSON envelope on every 4xx, malformed JSON, and 429 Retry-After.

Rules from specs/<dialect>/<version>/requirements.yaml (areas ERR), which cite the archived
Broker API spec (components.schemas.Error) and the alpaca reference sheet (sections 5 and 9),
and the Buildmarkets Error Codes page and llms.txt (envelope, request_id, 400 for malformed
JSON, 429 with Retry-After; shared/reference/buildmarkets.md sections 5, 9 and 10). The
envelope's paths and code type come from profile.yaml (error_envelope).
"""

from __future__ import annotations

import email.utils
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from brokercert.catalog import Profile
from brokercert.datagen import get, with_value, without
from brokercert.pytest_plugin import check, expect_status, json_body

MALFORMED = b'{"contact": {"email_address": "x@example.com",'  # cut off: not valid JSON
BURST = 30  # requests in the rate-limit burst
JSON = {"Content-Type": "application/json"}


def _path(profile: Profile, op_name: str, account_id: str) -> str:
    return profile.operation(op_name).path.replace("{" + profile.id_param + "}", account_id)


def check_envelope(response: httpx.Response, profile: Profile, req: str) -> None:
    """Fail ``req`` unless the body is the dialect's error envelope (profile.error_envelope)."""
    env = profile.error_envelope
    body = json_body(response, req)

    def at(path: str) -> Any:
        try:
            return get(body, path)
        except (KeyError, TypeError):
            return "<absent>"

    code = at(env.code_path)
    if env.code_type == "integer":
        good = isinstance(code, int) and not isinstance(code, bool)
    else:
        good = isinstance(code, str) and code not in ("", "<absent>")
    check(good, req, f"an {env.code_type} code at {env.code_path}", f"{code!r} in {body}", response)
    message = at(env.message_path)
    check(
        isinstance(message, str) and message != "<absent>",
        req,
        f"a string message at {env.message_path}",
        f"{message!r}",
        response,
    )
    if env.field_path is not None:
        field = at(env.field_path)
        check(
            field is None or isinstance(field, str),
            req,
            f"{env.field_path} a string or null when present",
            f"{field!r}",
            response,
        )
    if env.request_id_path is not None:
        rid = at(env.request_id_path)
        check(
            isinstance(rid, str) and rid.startswith("req_"),
            req,
            f"a request_id starting with req_ at {env.request_id_path}",
            f"{rid!r}",
            response,
        )


# -- ways to provoke a 4xx ---------------------------------------------------------------

Provoke = Callable[
    [httpx.Client, httpx.Client, Profile, Any, str, Callable[..., Any]], httpx.Response
]


def _unknown_account(client, anon, profile, run_data, dialect, new_account):
    return client.get(_path(profile, "get_account", str(uuid.uuid4())))


def _malformed_json(client, anon, profile, run_data, dialect, new_account):
    op = profile.operation("create_account")
    return client.request(op.method, op.path, content=MALFORMED, headers=JSON)


def _no_credentials(client, anon, profile, run_data, dialect, new_account):
    return anon.get(profile.operation("list_accounts").path)


def _missing_field(client, anon, profile, run_data, dialect, new_account):
    op = profile.operation("create_account")
    return client.request(
        op.method, op.path, json=without(run_data.create_body(dialect), "contact")
    )


def _bad_enum(client, anon, profile, run_data, dialect, new_account):
    op = profile.operation("create_account")
    body = with_value(run_data.create_body(dialect), "identity.tax_id_type", "NOT_A_TAX_ID_TYPE")
    return client.request(op.method, op.path, json=body)


def _bad_query(client, anon, profile, run_data, dialect, new_account):
    return client.get(profile.operation("list_accounts").path, params={"sort": "sideways"})


def _wrong_content_type(client, anon, profile, run_data, dialect, new_account):
    op = profile.operation("create_account")
    return client.request(
        op.method, op.path, content=b"contact=none", headers={"Content-Type": "text/plain"}
    )


def _upload_unknown_account(client, anon, profile, run_data, dialect, new_account):
    op = profile.operation("upload_documents")
    return client.request(
        op.method,
        _path(profile, "upload_documents", str(uuid.uuid4())),
        json=run_data.upload_body(dialect),
    )


def _close_twice(client, anon, profile, run_data, dialect, new_account):
    account_id = new_account()["id"]
    op = profile.operation(profile.close.operation)
    path = _path(profile, profile.close.operation, account_id)
    client.request(op.method, path)
    return client.request(op.method, path)


PROVOCATIONS: dict[str, Provoke] = {
    "unknown-account": _unknown_account,
    "malformed-json": _malformed_json,
    "no-credentials": _no_credentials,
    "missing-required-field": _missing_field,
    "bad-enum-value": _bad_enum,
    "bad-query-parameter": _bad_query,
    "wrong-content-type": _wrong_content_type,
    "upload-to-unknown-account": _upload_unknown_account,
    "close-twice": _close_twice,
}


@pytest.mark.requirement("ALP-ERR-001", "BM-ERR-001")
@pytest.mark.parametrize("case", list(PROVOCATIONS))
def test_4xx_uses_the_error_envelope(
    case, client, anon_client, profile, run_data, dialect, new_account
):
    """Every 4xx answer has the dialect's JSON error body (alpaca {code: integer, message};
    buildmarkets {"error": {code: string, message, field, request_id "req_..."}})."""
    req = "ALP-ERR-001" if dialect == "alpaca" else "BM-ERR-001"
    response = PROVOCATIONS[case](client, anon_client, profile, run_data, dialect, new_account)
    # Each case is meant to be refused; whether it is refused is other requirements'
    # business (auth, validation, close). This rule is about the body of every 4xx.
    if 400 <= response.status_code < 500:
        check_envelope(response, profile, req)


# -- malformed JSON (buildmarkets) -------------------------------------------------------


def _malformed(
    client: httpx.Client, profile: Profile, op_name: str, account_id: str, req: str
) -> None:
    op = profile.operation(op_name)
    response = client.request(
        op.method, _path(profile, op_name, account_id), content=MALFORMED, headers=JSON
    )
    expect_status(response, 400, req)
    check_envelope(response, profile, req)


@pytest.mark.requirement("BM-ERR-002")
def test_create_with_malformed_json(client, profile):
    """A create request whose body is not valid JSON answers 400 in the error envelope."""
    _malformed(client, profile, "create_account", "", "BM-ERR-002")


@pytest.mark.requirement("BM-ERR-003")
def test_patch_with_malformed_json(client, profile, new_account):
    """A PATCH whose body is not valid JSON answers 400 in the error envelope."""
    _malformed(client, profile, "update_account", new_account()["id"], "BM-ERR-003")


@pytest.mark.requirement("BM-ERR-004")
def test_upload_with_malformed_json(client, profile, new_account):
    """A document upload whose body is not valid JSON answers 400 in the error envelope."""
    _malformed(client, profile, "upload_documents", new_account()["id"], "BM-ERR-004")


# -- 429 ---------------------------------------------------------------------------------


def _valid_retry_after(value: str | None) -> bool:
    if value is None:
        return False
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        return True
    try:
        return email.utils.parsedate_to_datetime(text) is not None
    except (TypeError, ValueError, IndexError):
        return False


@pytest.mark.requirement("BM-ERR-005")
def test_429_carries_retry_after(target, profile):
    """Every 429 the target gives to a short burst of list requests carries a Retry-After header (a
    target that does not throttle the burst passes)."""
    op = profile.operation("list_accounts")
    params = {profile.pagination.limit_param: 1} if profile.pagination.limit_param else None
    # max_retries=0: a 429 comes straight back instead of being waited out and retried.
    # Against a remote target the run's rate limiter still paces the burst.
    with target.client(max_retries=0) as burst, ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: burst.get(op.path, params=params), range(BURST)))
    for response in responses:
        if response.status_code == 429:
            check(
                _valid_retry_after(response.headers.get("Retry-After")),
                "BM-ERR-005",
                "a Retry-After header of delta-seconds or an HTTP date on the 429",
                repr(response.headers.get("Retry-After")),
                response,
            )
