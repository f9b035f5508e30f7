"""Registers brokercert's own checks before the fuzzing modules load, and tells
the fuzzing module's case store which operations passed (only those are stored)."""

import pytest

from brokercert import case_cache, fuzzing
from brokercert.pytest_plugin import session_settings

fuzzing.register_checks(lambda: session_settings().catalog.profile)


def pytest_itemcollected(item):
    # Replayed operations are plain parametrized items: give them the operation label
    # Schemathesis' own items carry, for the Allure labels.
    callspec = getattr(item, "callspec", None)
    if item.originalname == "test_operation" and callspec is not None:
        label = callspec.params.get("operation")
        if isinstance(label, str) and not getattr(item, "operation_label", None):
            item.operation_label = label


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    flush = getattr(item.module, "flush_secrets", None)
    cases = getattr(item.module, "CASES", None)
    label = getattr(item, "operation_label", None)
    storing = isinstance(cases, case_cache.CaseCache) and label is not None
    try:
        result = yield
    except BaseException:
        if storing:
            cases.discard(label)
        raise
    finally:
        if flush is not None:  # before the report of the test is written and redacted
            flush()
    if storing:
        cases.commit(label)
    return result
