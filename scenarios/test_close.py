"""Closing an account: 204 with an empty body, ACCOUNT_CLOSED afterwards, twice, unknown ids.

Rules from specs/<dialect>/<version>/requirements.yaml (alpaca ALP-ACC-022..026, buildmarkets
BM-ACC-027..029 and BM-STATE-006), which cite the alpaca accounts docs (seed 003, Deleting an
Account), the current Broker API close action, the Buildmarkets Accounts and Error Codes pages,
and the reference sheets (shared/reference/alpaca.md section 9, buildmarkets.md section 10).
The close operation, its success status and the "closed twice" answers come from profile.yaml.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from brokercert.catalog import Profile
from brokercert.datagen import get
from brokercert.pytest_plugin import check, expect_status, json_body


def _path(profile: Profile, op_name: str, account_id: str) -> str:
    return profile.operation(op_name).path.replace("{" + profile.id_param + "}", account_id)


def _close(
    client: httpx.Client, profile: Profile, account_id: str, op_name: str | None = None
) -> httpx.Response:
    name = op_name or profile.close.operation
    return client.request(profile.operation(name).method, _path(profile, name, account_id))


def _read_status(client: httpx.Client, profile: Profile, account_id: str, req: str) -> str:
    response = client.get(_path(profile, "get_account", account_id))
    expect_status(response, profile.operation("get_account").success, req)
    body = json_body(response, req)
    check(isinstance(body, dict), req, "the account object", body, response)
    return str(body.get("status"))


def _expect_empty_success(response: httpx.Response, success: int, req: str) -> None:
    expect_status(response, success, req)
    check(response.content == b"", req, "an empty body", repr(response.content[:200]), response)


@pytest.mark.requirement("ALP-ACC-022", "BM-ACC-027")
def test_close_answers_204_with_empty_body(new_account, client, profile, cleanup, dialect):
    """Closing an open account answers 204 with an empty body."""
    req = "ALP-ACC-022" if dialect == "alpaca" else "BM-ACC-027"
    account = new_account()
    response = _close(client, profile, account["id"])
    cleanup.forget(account["id"])
    _expect_empty_success(response, profile.operation(profile.close.operation).success, req)


@pytest.mark.requirement("ALP-ACC-023", "BM-STATE-006")
def test_closed_account_reads_account_closed(new_account, client, profile, cleanup, dialect):
    """After a successful close the account is still readable and reads ACCOUNT_CLOSED."""
    req = "ALP-ACC-023" if dialect == "alpaca" else "BM-STATE-006"
    closed = profile.state_machine.closed
    account = new_account()
    response = _close(client, profile, account["id"])
    check(
        200 <= response.status_code < 300,
        req,
        "the close succeeds (2xx)",
        f"HTTP {response.status_code}",
        response,
    )
    cleanup.forget(account["id"])
    for _ in range(2):  # read twice: it stays readable and closed
        status = _read_status(client, profile, account["id"], req)
        check(status == closed, req, f"status {closed}", f"status {status}")


@pytest.mark.requirement("ALP-ACC-024")
def test_close_action_answers_204_and_closes(new_account, client, profile, cleanup):
    """POST actions/close on an open account answers 204, then the account reads ACCOUNT_CLOSED."""
    closed = profile.state_machine.closed
    account = new_account()
    response = _close(client, profile, account["id"], "close_account_action")
    cleanup.forget(account["id"])
    _expect_empty_success(
        response, profile.operation("close_account_action").success, "ALP-ACC-024"
    )
    status = _read_status(client, profile, account["id"], "ALP-ACC-024")
    check(status == closed, "ALP-ACC-024", f"status {closed}", f"status {status}")


@pytest.mark.requirement("ALP-ACC-025", "BM-ACC-028")
def test_close_twice_is_refused(new_account, client, profile, cleanup, dialect):
    """Closing an already closed account is refused with the profile's status (alpaca 409/422,
    buildmarkets 409 ACCOUNT_ALREADY_CLOSED) and it stays closed."""
    req = "ALP-ACC-025" if dialect == "alpaca" else "BM-ACC-028"
    account = new_account()
    first = _close(client, profile, account["id"])
    check(
        200 <= first.status_code < 300,
        req,
        "the first close succeeds (2xx)",
        f"HTTP {first.status_code}",
        first,
    )
    cleanup.forget(account["id"])
    again = _close(client, profile, account["id"])
    expect_status(again, profile.close.again_status, req)
    if profile.close.again_code is not None:
        body = json_body(again, req)
        try:
            code = get(body, profile.error_envelope.code_path)
        except (KeyError, TypeError):
            code = "<absent>"
        check(
            code == profile.close.again_code,
            req,
            f"error code {profile.close.again_code} at {profile.error_envelope.code_path}",
            code,
            again,
        )
    status = _read_status(client, profile, account["id"], req)
    check(
        status == profile.state_machine.closed,
        req,
        f"status {profile.state_machine.closed} after the second close",
        f"status {status}",
    )


@pytest.mark.requirement("ALP-ACC-026", "BM-ACC-029")
def test_close_unknown_account(client, profile, dialect):
    """Closing an id that does not exist answers the profile's unknown-account status (alpaca 404 or
    401, buildmarkets 404 ACCOUNT_NOT_FOUND)."""
    req = "ALP-ACC-026" if dialect == "alpaca" else "BM-ACC-029"
    response = _close(client, profile, str(uuid.uuid4()))
    expect_status(response, profile.unknown_account_status, req)
    if dialect == "buildmarkets":
        body = json_body(response, req)
        try:
            code = get(body, profile.error_envelope.code_path)
        except (KeyError, TypeError):
            code = "<absent>"
        # The code is in the requirement's title, not in profile.yaml.
        check(
            code == "ACCOUNT_NOT_FOUND",
            req,
            f"error code ACCOUNT_NOT_FOUND at {profile.error_envelope.code_path}",
            code,
            response,
        )
