"""Redacting what pytest and its reporters write about a failure.

A failure's text reaches files through consumers the suite does not control: the
terminal (the per-dialect pytest log of `brokercert run`), junit XML and
allure-pytest's ``statusDetails`` (message from the exception, trace from the
report). Schemathesis failure messages quote the request body and the response, tax
ids included, so the report and the exception info are redacted before those
consumers read them (this hook runs innermost: see ``pytest_runtest_makereport``).
"""

from __future__ import annotations

import pytest

from brokercert.redact import Redactor


def redact_report(
    report: pytest.TestReport, call: pytest.CallInfo[None], redactor: Redactor
) -> None:
    """Redact ``report`` (long representation, captured output) and ``call.excinfo`` in place.

    Nothing is replaced when redaction changes nothing, so ordinary failures keep
    pytest's own representation.
    """
    if report.sections:
        report.sections = [(title, redactor.text(body)) for title, body in report.sections]
    if not report.failed:
        return
    if report.longrepr is not None:
        text = report.longreprtext
        clean = redactor.text(text)
        if clean != text:
            report.longrepr = clean
    excinfo = call.excinfo
    if excinfo is not None:
        original = excinfo.exconly()
        clean = redactor.text(original)
        if clean != original:
            call.excinfo = _stand_in(excinfo, original, clean)


def _stand_in(
    excinfo: pytest.ExceptionInfo[BaseException], original: str, clean: str
) -> pytest.ExceptionInfo[BaseException]:
    """An exception info that reads like the original (same type name, failure or error
    kind, traceback) but carries the redacted message."""
    etype = excinfo.type
    base: type[Exception] = AssertionError if issubclass(etype, AssertionError) else Exception
    stand_in = type(
        etype.__name__,
        (base,),
        {"__module__": etype.__module__, "__qualname__": etype.__qualname__},
    )
    prefix = original.partition(": ")[0] + ": "
    message = clean[len(prefix) :] if clean.startswith(prefix) else clean
    exc = stand_in(message).with_traceback(excinfo.tb)
    return pytest.ExceptionInfo.from_exception(exc)
