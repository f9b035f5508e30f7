"""Stateful sequences through the spec's OpenAPI links (standard depth and deeper).

Hypothesis drives a state machine: create an account, then call the operations
its links name with the returned id, checking every response on the way.
"""

import hypothesis
import pytest
from schemathesis.checks import positive_data_acceptance

from brokercert import fuzzing
from brokercert.pytest_plugin import note_failed_requirements, session_settings
from brokercert.pytest_plugin._state import register_created

SUITE = session_settings()

if SUITE.depth.stateful_examples:
    schema = fuzzing.load_schema(SUITE.catalog, SUITE.target, SUITE.depth, SUITE.request_timeout)
    # Links are followed only when the stateful phase is enabled on the schema.
    schema.config.phases.update(phases=[*SUITE.depth.phases, "stateful"])
    _exempt = fuzzing.positive_data_exempt_labels(SUITE.catalog.profile)
    _session = fuzzing.keepalive_session(SUITE.target)

    class AccountWorkflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {**super().get_call_kwargs(case), "session": _session}

        def after_call(self, response, case):
            try:
                body = response.json()
            except ValueError:
                body = None
            register_created(case.method, case.path, response.status_code, body)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            excluded = [positive_data_acceptance] if case.operation.label in _exempt else None
            try:
                case.validate_response(
                    response,
                    additional_checks=additional_checks,
                    excluded_checks=excluded,
                    transport_kwargs=kwargs or None,
                    recorder=getattr(self, "recorder", None),
                )
            except BaseException as exc:  # FailureGroup is a BaseExceptionGroup
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
        # Each run starts from fresh sequences, as when Hypothesis kept its files in the
        # run's own folder; its home is now the user cache (see the plugin), where a
        # sequence saved by one run would be replayed by every later one.
        database=None,
    )
