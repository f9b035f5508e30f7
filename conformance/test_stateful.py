"""Stateful sequences through the spec's OpenAPI links (standard depth and deeper).

Hypothesis drives a state machine: create an account, then call the operations
its links name with the returned id, checking every response on the way.
"""

import hypothesis
import pytest

from brokercert import fuzzing
from brokercert.pytest_plugin import note_failed_requirements, session_settings
from brokercert.pytest_plugin._state import register_created

SUITE = session_settings()

if SUITE.depth.stateful_examples:
    schema = fuzzing.load_schema(SUITE.catalog, SUITE.target, SUITE.depth, SUITE.request_timeout)

    class AccountWorkflow(schema.as_state_machine()):
        def after_call(self, response, case):
            try:
                body = response.json()
            except ValueError:
                body = None
            register_created(case.method, case.path, response.status_code, body)

        def validate_response(self, response, case, additional_checks=(), **kwargs):
            try:
                return super().validate_response(
                    response, case, additional_checks=additional_checks, **kwargs
                )
            except BaseException as exc:
                note_failed_requirements(fuzzing.failed_requirements(SUITE.dialect, exc))
                raise

    TestAccountWorkflow = pytest.mark.requirement(
        *fuzzing.CHECK_REQUIREMENTS.values(), *fuzzing.ENVELOPE_REQUIREMENTS.values()
    )(AccountWorkflow.TestCase)
    TestAccountWorkflow.settings = hypothesis.settings(
        max_examples=SUITE.depth.stateful_examples,
        stateful_step_count=SUITE.depth.stateful_steps,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
