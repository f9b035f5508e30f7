"""Account status: the first status, bounded polling against the state machine, sandbox triggers.

Rules from specs/<dialect>/<version>/requirements.yaml (areas STATE), which cite the
alpaca accounts docs (seed 003, Account Status and Fixtures), the current account-opening
guide, the Buildmarkets llms.txt status flow and sandbox SSN suffixes, and the reference
sheets (shared/reference/alpaca.md sections 7 and 9, buildmarkets.md section 10). The state
machine, the initial statuses and the sandbox triggers are read from profile.yaml.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
import pytest

from brokercert.catalog import Profile, SandboxTrigger, StateMachine
from brokercert.pytest_plugin import check, expect_status, json_body, session_settings, violation

# Polling bound: at most MAX_READS reads of one account and at most MAX_SECONDS seconds.
# Against a loopback target the reads go back to back (the reference server runs with
# kyc_delay 0, so each read advances the account); elsewhere they are spread over the time.
MAX_READS = 6
MAX_SECONDS = 20.0


def _reachable_statuses(machine: StateMachine) -> list[str]:
    """Every status a sandbox trigger of the profile can force."""
    out: list[str] = []
    for trig in machine.triggers:
        for status in trig.statuses if trig.match == "template" else (trig.reaches,):
            if status and status not in out:
                out.append(status)
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    machine = session_settings().catalog.profile.state_machine
    if "start" in metafunc.fixturenames:
        starts = ["default", *_reachable_statuses(machine)]
        metafunc.parametrize("start", starts)
    if "fixture_status" in metafunc.fixturenames:
        template = [s for t in machine.triggers if t.match == "template" for s in t.statuses]
        # A dialect without a template trigger does not hold the marked requirement, so
        # the single placeholder item is deselected, never run.
        metafunc.parametrize("fixture_status", template or ["none"])


def _path(profile: Profile, op_name: str, account_id: str) -> str:
    return profile.operation(op_name).path.replace("{" + profile.id_param + "}", account_id)


def read_status(
    client: httpx.Client, profile: Profile, account_id: str, requirement: str
) -> tuple[dict[str, Any], httpx.Response]:
    """One GET of the account: (body, response); fails ``requirement`` unless 200 with a status."""
    response = client.get(_path(profile, "get_account", account_id))
    expect_status(response, profile.operation("get_account").success, requirement)
    body = json_body(response, requirement)
    check(
        isinstance(body, dict) and isinstance(body.get("status"), str),
        requirement,
        "an account object with a string status",
        body,
        response,
    )
    return body, response


def poll(
    client: httpx.Client,
    profile: Profile,
    account_id: str,
    requirement: str,
    *,
    loopback: bool,
    until: str | None = None,
    reads: int = MAX_READS,
    seconds: float = MAX_SECONDS,
) -> list[tuple[dict[str, Any], httpx.Response]]:
    """Read the account at most ``reads`` times within ``seconds`` (stop early at ``until``)."""
    interval = 0.0 if loopback else seconds / reads
    deadline = time.monotonic() + seconds
    seen: list[tuple[dict[str, Any], httpx.Response]] = []
    for i in range(reads):
        if i and interval:
            time.sleep(min(interval, max(deadline - time.monotonic(), 0.0)))
        seen.append(read_status(client, profile, account_id, requirement))
        if until is not None and seen[-1][0]["status"] == until:
            break
        if time.monotonic() >= deadline:
            break
    return seen


def assert_path(
    machine: StateMachine,
    observed: list[str],
    requirement: str,
    response: httpx.Response | None = None,
) -> None:
    """Fail ``requirement`` naming the first observed step the state machine does not allow."""
    shown = " -> ".join(observed)
    for status in observed:
        check(
            status in machine.states,
            requirement,
            f"only statuses of the state machine ({', '.join(machine.states)})",
            f"unknown status {status!r} in {shown}",
            response,
        )
    for before, after in itertools.pairwise(observed):
        if not machine.allows(before, after):
            allowed = ", ".join(machine.transitions.get(before, ())) or "nothing (final)"
            raise violation(
                requirement,
                f"a path of the state machine; from {before} only {allowed}",
                f"illegal step {before} -> {after} in the observed sequence {shown}",
                response,
            )
    check(machine.is_path(observed), requirement, "a path of the state machine", shown, response)


def _forget_if_final(cleanup: Any, machine: StateMachine, account_id: str, status: str) -> None:
    """An account in a final status (REJECTED, ACCOUNT_CLOSED) is not closed again at the end."""
    if status in machine.terminal:
        cleanup.forget(account_id)


def _trigger_with_value(machine: StateMachine, value: str) -> SandboxTrigger:
    for trig in machine.triggers:
        if trig.value == value:
            return trig
    raise AssertionError(f"profile.yaml has no sandbox trigger with value {value!r}")


# -- the first status ------------------------------------------------------------------


@pytest.mark.requirement("ALP-STATE-001", "BM-STATE-001")
def test_new_account_reports_an_initial_status(new_account, profile):
    """Without a sandbox trigger, a new account reports one of the dialect's initial statuses."""
    account = new_account()
    allowed = profile.create_initial_status
    req = "ALP-STATE-001" if profile.dialect == "alpaca" else "BM-STATE-001"
    check(
        account.get("status") in allowed,
        req,
        f"status in {', '.join(allowed)}",
        f"status {account.get('status')!r}",
    )


@pytest.mark.requirement("BM-STATE-001")
def test_new_account_kyc_status_is_submitted(new_account):
    """A new buildmarkets account reports kyc_status SUBMITTED in the create response."""
    account = new_account()
    # The initial kyc_status is not in profile.yaml; the requirement title names it.
    check(
        account.get("kyc_status") == "SUBMITTED",
        "BM-STATE-001",
        "kyc_status SUBMITTED",
        f"kyc_status {account.get('kyc_status', '<absent>')!r}",
    )


# -- every observed sequence is a path ---------------------------------------------------


@pytest.mark.requirement("ALP-STATE-002", "BM-STATE-002")
def test_observed_statuses_follow_the_state_machine(
    start, new_account, client, profile, run_data, dialect, target, cleanup
):
    """Every status sequence seen polling one account (bounded) is a path of the state machine."""
    req = "ALP-STATE-002" if dialect == "alpaca" else "BM-STATE-002"
    machine = profile.state_machine
    overrides = {} if start == "default" else run_data.status_overrides(dialect, start)
    account = new_account(**overrides)
    observed = [account["status"]]
    last: httpx.Response | None = None
    for body, response in poll(client, profile, account["id"], req, loopback=target.is_loopback):
        observed.append(body["status"])
        last = response
        assert_path(machine, observed, req, last)
    assert_path(machine, observed, req, last)
    _forget_if_final(cleanup, machine, account["id"], observed[-1])


@pytest.mark.requirement("ALP-STATE-004", "BM-STATE-002")
def test_closed_account_stays_closed(new_account, client, profile, run_data, dialect, cleanup):
    """A closed account stays ACCOUNT_CLOSED (a final status) whatever is sent to it afterwards
    (update, upload, CIP, close)."""
    req = "ALP-STATE-004" if dialect == "alpaca" else "BM-STATE-002"
    machine = profile.state_machine
    account = new_account()
    account_id = account["id"]
    close = profile.operation(profile.close.operation)
    closed = client.request(close.method, _path(profile, profile.close.operation, account_id))
    check(
        200 <= closed.status_code < 300,
        req,
        "the first close succeeds (2xx)",
        f"HTTP {closed.status_code}",
        closed,
    )
    cleanup.forget(account_id)
    body, response = read_status(client, profile, account_id, req)
    observed = [account["status"], body["status"]]
    check(
        body["status"] == machine.closed,
        req,
        f"status {machine.closed} after close",
        body["status"],
        response,
    )
    builders = {
        "update_account": lambda: run_data.update_body(dialect),
        "upload_documents": lambda: run_data.upload_body(dialect),
        "submit_cip": lambda: run_data.cip_body(),
    }
    marker = "{" + profile.id_param + "}"
    for name, op in profile.operations.items():
        if marker not in op.path or op.method == "GET":
            continue
        build = builders.get(name)
        sent = client.request(
            op.method, _path(profile, name, account_id), json=build() if build else None
        )
        for body, response in poll(client, profile, account_id, req, loopback=True, reads=2):
            observed.append(body["status"])
            assert_path(machine, observed, req, response)
            check(
                body["status"] == machine.closed,
                req,
                f"status {machine.closed} after {op.method} {op.path} "
                f"(answered HTTP {sent.status_code})",
                f"status {body['status']} (observed {' -> '.join(observed)})",
                response,
            )


# -- sandbox triggers --------------------------------------------------------------------


def _assert_trigger_reaches(
    client: httpx.Client,
    profile: Profile,
    account: dict[str, Any],
    status: str,
    kyc_status: str | None,
    requirement: str,
    loopback: bool,
    cleanup: Any,
) -> None:
    observed = [account["status"]]
    final: tuple[dict[str, Any], httpx.Response | None] = (account, None)
    if account["status"] != status:
        seen = poll(client, profile, account["id"], requirement, loopback=loopback, until=status)
        observed += [body["status"] for body, _ in seen]
        final = seen[-1]
    body, response = final
    check(
        body["status"] == status,
        requirement,
        f"status {status} within {MAX_READS} reads / {MAX_SECONDS:g} s",
        f"observed {' -> '.join(observed)}",
        response,
    )
    _forget_if_final(cleanup, profile.state_machine, account["id"], status)
    if kyc_status is not None:
        check(
            body.get("kyc_status") == kyc_status,
            requirement,
            f"kyc_status {kyc_status} with status {status}",
            f"kyc_status {body.get('kyc_status', '<absent>')!r}",
            response,
        )


@pytest.mark.requirement("ALP-STATE-003")
def test_sandbox_fixture_reaches_its_status(
    fixture_status, new_account, client, profile, run_data, dialect, target, cleanup
):
    """additional_information "/fixtures/status=S/fixtures/" brings a new account to S, for each
    fixture status."""
    overrides = run_data.status_overrides(dialect, fixture_status)
    account = new_account(**overrides)
    _assert_trigger_reaches(
        client, profile, account, fixture_status, None, "ALP-STATE-003", target.is_loopback, cleanup
    )


def _bm_trigger(value, requirement, new_account, client, profile, run_data, target, cleanup):
    trig = _trigger_with_value(profile.state_machine, value)
    tax_id = run_data.tax_id("buildmarkets", trigger=trig.name)
    assert tax_id.endswith(value), f"datagen gave tax id without suffix {value}"
    account = new_account(**{trig.field: tax_id})
    assert trig.reaches is not None
    _assert_trigger_reaches(
        client,
        profile,
        account,
        trig.reaches,
        trig.kyc_status,
        requirement,
        target.is_loopback,
        cleanup,
    )


@pytest.mark.requirement("BM-STATE-003")
def test_tax_id_0001_reaches_active_approved(
    new_account, client, profile, run_data, target, cleanup
):
    """A tax_id ending in 0001 reaches status ACTIVE with kyc_status APPROVED."""
    _bm_trigger("0001", "BM-STATE-003", new_account, client, profile, run_data, target, cleanup)


@pytest.mark.requirement("BM-STATE-004")
def test_tax_id_0002_reaches_rejected(new_account, client, profile, run_data, target, cleanup):
    """A tax_id ending in 0002 reaches status REJECTED with kyc_status REJECTED."""
    _bm_trigger("0002", "BM-STATE-004", new_account, client, profile, run_data, target, cleanup)


@pytest.mark.requirement("BM-STATE-005")
def test_tax_id_0003_reaches_manual_review(new_account, client, profile, run_data, target, cleanup):
    """A tax_id ending in 0003 reaches status APPROVAL_PENDING with kyc_status MANUAL_REVIEW."""
    _bm_trigger("0003", "BM-STATE-005", new_account, client, profile, run_data, target, cleanup)
