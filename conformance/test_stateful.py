"""Stateful sequences through the spec's OpenAPI links (standard depth and deeper).

Hypothesis drives a state machine: create an account, then call the operations
its links name with the returned id, checking every response on the way.

A live target is external state to Hypothesis: the same drawn choices can enable other
rules on a later attempt (an account that moved on, a list that grew), and Hypothesis
then stops with an "inconsistent data generation" error that says nothing about the
target. As in Schemathesis' own stateful engine, that ends one exploration, not the test:
a check failure seen before it fails the test with its evidence; otherwise the
exploration starts afresh with what is left of the example budget, up to a bound on
restarts; past the bound the test passes on the responses it checked, and its report
says how many sequences ran.
"""

import hypothesis
import pytest
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import positive_data_acceptance
from schemathesis.engine.errors import is_inconsistent_replay

from brokercert import fuzzing
from brokercert.pytest_plugin import note_failed_requirements, session_settings
from brokercert.pytest_plugin._state import register_created

SUITE = session_settings()
_EXPLORATIONS = 10

if SUITE.depth.stateful_examples:
    schema = fuzzing.load_schema(SUITE.catalog, SUITE.target, SUITE.depth, SUITE.request_timeout)
    # Links are followed only when the stateful phase is enabled on the schema.
    schema.config.phases.update(phases=[*SUITE.depth.phases, "stateful"])
    _exempt = fuzzing.positive_data_exempt_labels(SUITE.catalog.profile)
    _session = fuzzing.keepalive_session(SUITE.target)
    _check_failures: list[BaseException] = []
    _sequences = [0]  # state machines Hypothesis started (one per example)

    class AccountWorkflow(schema.as_state_machine()):
        def setup(self):
            _sequences[0] += 1
            super().setup()

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
                _check_failures.append(exc)
                note_failed_requirements(fuzzing.failed_requirements(SUITE.dialect, exc))
                raise

    def _settings(examples: int) -> hypothesis.settings:
        return hypothesis.settings(
            max_examples=examples,
            stateful_step_count=SUITE.depth.stateful_steps,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            # Each run starts from fresh sequences: a sequence saved in the user-wide
            # Hypothesis home by one run would otherwise be replayed by every later one.
            database=None,
        )

    def _inconsistent(exc: BaseException) -> bool:
        return isinstance(exc, Flaky) or is_inconsistent_replay(exc)

    @pytest.mark.requirement(
        *fuzzing.CHECK_REQUIREMENTS.values(), *fuzzing.ENVELOPE_REQUIREMENTS.values()
    )
    def test_account_workflow():
        """Every response along sequences of linked operations conforms to the spec."""
        budget = SUITE.depth.stateful_examples
        _sequences[0] = 0
        explorations = 0
        while _sequences[0] < budget and explorations < _EXPLORATIONS:
            explorations += 1
            _check_failures.clear()
            try:
                run_state_machine_as_test(
                    AccountWorkflow, settings=_settings(budget - _sequences[0])
                )
                break
            except BaseException as exc:
                if not _inconsistent(exc):
                    raise
                if _check_failures:
                    # A failure the shrinking replay did not meet again: still a failure.
                    raise _check_failures[0] from exc
        # Every response sent was checked and conformed: say how much was explored.
        import allure

        allure.attach(
            f"{_sequences[0]} sequences (budget {budget}) in {explorations} exploration(s); "
            "Hypothesis restarts when the target's state changes under it.",
            "stateful exploration",
        )
