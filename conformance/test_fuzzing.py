"""Schema-driven fuzzing of every operation of the selected spec.

One test item per operation: positive and negative data, the coverage phase at
standard depth and above, and every check in brokercert.fuzzing.CHECK_REQUIREMENTS.
A failing check fails its own requirement (see the marker), not the whole list.

The cases come from Schemathesis' generators, or, when an earlier run of the same spec
at the same depth passed, are that run's cases sent again (brokercert.case_cache.CaseCache):
the same cases, requests and checks, without paying for their generation.
"""

import pytest
from hypothesis.control import current_build_context
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation

from brokercert import case_cache, fuzzing
from brokercert.datagen import RunData
from brokercert.pytest_plugin import note_failed_requirements, session_settings
from brokercert.pytest_plugin._state import redactor, register_created

SUITE = session_settings()
schema = fuzzing.load_schema(SUITE.catalog, SUITE.target, SUITE.depth, SUITE.request_timeout)
if SUITE.only_operations:
    schema = schema.include(name=list(SUITE.only_operations))
_exempt = fuzzing.positive_data_exempt_labels(SUITE.catalog.profile)
_session = fuzzing.keepalive_session(SUITE.target)
try:
    CASES = case_cache.case_cache(
        SUITE.catalog, SUITE.target, SUITE.depth, schema, SUITE.only_operations
    )
except ValueError as exc:
    raise pytest.UsageError(str(exc)) from None

_requirements = pytest.mark.requirement(
    *fuzzing.CHECK_REQUIREMENTS.values(), *fuzzing.ENVELOPE_REQUIREMENTS.values()
)


_ID = SUITE.catalog.profile.id_param
_CREATE = SUITE.catalog.profile.operation("create_account")
_CLOSING = {
    SUITE.catalog.profile.operation(name).key
    for name in ("close_account", "close_account_action")
    if name in SUITE.catalog.profile.operations
}
_client = SUITE.target.client()
# The tax ids the accounts below are created with reach the redactor in batches: each
# Redactor.add rebuilds its pattern of every secret so far (quadratic over a run), and
# nothing is redacted here until a check fails or the test ends (conftest.py).
_pending_secrets: list[str] = []
_data = RunData(f"{SUITE.run_id}-fz", on_sensitive=_pending_secrets.append)


def flush_secrets():
    if _pending_secrets:
        redactor().add(*_pending_secrets)
        _pending_secrets.clear()
_shared: dict[str, str] = {}


def _new_account():
    response = _client.request(_CREATE.method, _CREATE.path, json=_data.create_body(SUITE.dialect))
    body = _json_or_none(response)
    register_created(_CREATE.method, _CREATE.path, response.status_code, body)
    if 200 <= response.status_code < 300 and isinstance(body, dict):
        return body.get("id")
    return None


def aim_at_real_account(case):
    """Send positive cases to an account that exists: random ids only ever reach the 404
    path, so a wrong success status on upload or close would go unseen. Negative path
    values are left as generated. Closing operations get a fresh account each time."""
    params = case.path_parameters
    if not params or _ID not in params:
        return
    meta = getattr(case, "meta", None)
    if meta is not None and meta.is_negative_at(ParameterLocation.PATH):
        return
    if case.operation.label in _CLOSING:
        account = _new_account()
    else:
        account = _shared.get("id") or _new_account()
        if account:
            _shared["id"] = account
    if account:
        params[_ID] = account


def check_case(case, final):
    """Send one case and run every check on the response."""
    aim_at_real_account(case)
    excluded = [positive_data_acceptance] if case.operation.label in _exempt else []
    response = case.call(session=_session)
    register_created(case.method, case.path, response.status_code, _json_or_none(response))
    try:
        case.validate_response(response, excluded_checks=excluded)
    except BaseException as exc:  # FailureGroup is a BaseExceptionGroup
        flush_secrets()
        note_failed_requirements(fuzzing.failed_requirements(SUITE.dialect, exc))
        if final():
            import allure

            allure.attach(redactor().text(case.as_curl_command()), "request (curl, redacted)")
            allure.attach(
                redactor().text(f"HTTP {response.status_code}\n{response.text[:4000]}"),
                "response (redacted)",
            )
        raise


if CASES.replayable:

    @_requirements
    @pytest.mark.parametrize("operation", CASES.labels, ids=CASES.labels)
    def test_operation(operation):
        """Every response to generated data conforms to the spec and the error envelope."""
        CASES.replay(operation, check_case)

else:

    @_requirements
    @schema.parametrize()
    def test_operation(case):
        """Every response to generated data conforms to the spec and the error envelope."""
        CASES.record(case)
        check_case(case, lambda: current_build_context().is_final)


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None
