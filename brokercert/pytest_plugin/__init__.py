"""The brokercert pytest plugin: options, fixtures, the `requirement` marker, result records.

Loaded by the top-level conftest.py. Without --target/--dialect it stays out of the
way (the project's own tests run with it loaded).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from brokercert import __version__
from brokercert._paths import suite_root
from brokercert.cleanup import CleanupRegistry
from brokercert.pytest_plugin import _interrupt, _state
from brokercert.pytest_plugin._allure import apply_labels, attach_failure
from brokercert.pytest_plugin._expect import (
    check,
    expect_4xx,
    expect_status,
    json_body,
    requirement_for,
    value_at,
    violation,
)
from brokercert.pytest_plugin._fixtures import (
    Exchange,
    ExchangeLog,
    _shared_anon_client,
    _shared_client,
    anon_client,
    catalog,
    cleanup,
    client,
    dialect,
    exchanges,
    new_account,
    profile,
    run_data,
    suite,
    target,
)
from brokercert.pytest_plugin._records import (
    Collector,
    note_failed_requirements,
    requirement_ids,
    set_current_item,
)
from brokercert.pytest_plugin._redaction import redact_report
from brokercert.pytest_plugin._settings import SuiteSettings, add_options, from_config
from brokercert.results import RunRecord

__all__ = [
    "Exchange",
    "ExchangeLog",
    "SuiteSettings",
    "check",
    "expect_4xx",
    "expect_status",
    "json_body",
    "note_failed_requirements",
    "requirement_for",
    "session_settings",
    "value_at",
    "violation",
]

# Fixtures are found by pytest through this module's namespace.
_FIXTURES = (
    suite,
    dialect,
    catalog,
    profile,
    target,
    run_data,
    cleanup,
    exchanges,
    client,
    anon_client,
    new_account,
    _shared_client,
    _shared_anon_client,
)

_SUITE_DIRS = ("conformance", "scenarios")
_collector: Collector | None = None
_record: RunRecord | None = None
_PHASE_REPORTS: pytest.StashKey[dict[str, pytest.TestReport]] = pytest.StashKey()


def session_settings() -> SuiteSettings:
    """Settings for test modules that need them at import time (conformance/)."""
    settings = _state.settings()
    if settings is None:
        raise pytest.UsageError(
            "the suite needs --target URL and --dialect NAME (or run `brokercert run`)"
        )
    return settings


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    global _collector, _record
    config.addinivalue_line(
        "markers", "requirement(*ids): the catalogue requirement(s) a test verifies"
    )
    settings = from_config(config)
    registry = CleanupRegistry()
    if settings is not None and settings.report_dir is not None:
        out = settings.report_dir
        out.mkdir(parents=True, exist_ok=True)
        registry = CleanupRegistry(journal=out / f"created-{settings.dialect}.txt")
        # allure-pytest and junitxml read these in their own pytest_configure, after ours.
        if not getattr(config.option, "allure_report_dir", None):
            config.option.allure_report_dir = str(out / "allure-results")
        if not getattr(config.option, "xmlpath", None):
            config.option.xmlpath = str(out / f"junit-{settings.dialect}.xml")
    _state.configure(settings, registry)
    if settings is None:
        return
    _interrupt.install(settings.request_timeout)
    if getattr(config.option, "tbstyle", "auto") == "auto":
        # pytest's long tracebacks parse the source of every frame of every failure
        # (httpx, httpcore, ssl, ...): against a target that resets or times out on
        # every request that was 2/3 of the run. Native tracebacks cost next to nothing
        # and still end with the assertion message the records keep.
        config.option.tbstyle = "native"
    _use_persistent_hypothesis_home()
    progress = config.getoption("--bc-progress")
    _collector = Collector(
        settings.catalog.ids, _state.redactor(), Path(progress) if progress else None
    )
    _record = RunRecord(
        suite_version=__version__,
        dialect=settings.dialect,
        spec_version=settings.catalog.version,
        spec_digest=settings.catalog.spec_digest,
        target=settings.target.base_url,
        depth=settings.depth.name,
        started_at=_now(),
    )


def _use_persistent_hypothesis_home() -> None:
    """Keep Hypothesis' files in the user cache, not in ./.hypothesis of the working folder.

    `brokercert run` starts each session in a fresh report folder; there Hypothesis
    rebuilt its Unicode tables on every run (about 2.5 s of CPU per session, a fifth of a
    quick run) and left a .hypothesis folder in the report. An explicit
    HYPOTHESIS_STORAGE_DIRECTORY still wins.
    """
    import os

    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    from brokercert.fuzzing import hypothesis_home

    set_hypothesis_home_dir(hypothesis_home())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _in_suite(item: pytest.Item) -> bool:
    root = suite_root()
    path = Path(str(item.path)).resolve()
    return any(path.is_relative_to(root / d) for d in _SUITE_DIRS)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    settings = _state.settings()
    only = {i for i in (config.getoption("--bc-only-requirements") or "").split(",") if i}
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if not _in_suite(item):
            keep.append(item)
            continue
        ids = requirement_ids(item)
        if not ids:
            raise pytest.UsageError(
                f"{item.nodeid} names no requirement: add @pytest.mark.requirement"
            )
        # A test verifies rules of the dialects whose catalogue holds them; for any
        # other dialect it is deselected (never skipped: skips would hide gaps).
        if (settings is not None and not set(ids) & settings.catalog.ids) or (
            only and not set(ids) & only
        ):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    if _collector is not None:
        _collector.progress({"event": "collected", "count": len(items)})


def pytest_collection_finish(session: pytest.Session) -> None:
    """Leave what exists once the tests are collected (modules, schemas, strategies) out of
    the garbage collector's later passes, which walked them again and again: collection
    was ~13% of a standard session's CPU, about 40% less with this."""
    if _state.settings() is not None:
        import gc

        gc.collect()
        gc.freeze()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    set_current_item(item)
    try:
        return (yield)
    finally:
        set_current_item(None)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # Innermost wrapper (trylast): junit XML, the terminal log and allure-pytest's
    # statusDetails all read the report and the exception after this redaction.
    if _state.settings() is not None:
        redact_report(report, call, _state.redactor())
    item.stash.setdefault(_PHASE_REPORTS, {})[report.when] = report
    if _collector is not None:
        _collector.on_report(item, report)
    return report


@pytest.fixture(autouse=True)
def _brokercert_allure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Label each suite test once (not once per generated example) and attach evidence."""
    settings = _state.settings()
    item = request.node
    if settings is None or not isinstance(item, pytest.Item) or not _in_suite(item):
        yield
        return
    ids = [i for i in requirement_ids(item) if i in settings.catalog.ids]
    apply_labels(settings.catalog, ids, getattr(item, "operation_label", None))
    yield
    call = item.stash.get(_PHASE_REPORTS, {}).get("call")
    if call is not None and call.failed:
        attach_failure(_state.redactor(), call.longreprtext)


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Tell `brokercert run` this session saw the Ctrl-C (it forwards one otherwise)."""
    if _collector is not None:
        _collector.progress({"event": "interrupted"})


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    settings = _state.settings()
    if settings is None or _record is None or _collector is None:
        return
    leftovers: list[str] = []
    registry = _state.cleanup_registry()
    if registry.ids():
        # A second Ctrl-C must not abort the closing (`brokercert run` bounds its time).
        with _sigint_ignored(), settings.target.client() as http:
            leftovers = [str(x) for x in registry.close_all(http, settings.catalog.profile)]
    _record.leftover_accounts = leftovers
    _record.finished_at = _now()
    _record.tests = list(_collector.records.values())
    _collector.progress({"event": "finished"})
    _collector.close()
    if settings.report_dir is None:
        return
    path = settings.report_dir / f"record-{settings.dialect}.json"
    path.write_text(json.dumps(_record.to_json(), indent=1, default=str), encoding="utf-8")
    if not session.config.getoption("--bc-partial"):
        from brokercert.report import write_reports

        write_reports(
            settings.report_dir,
            [_record],
            {settings.dialect: settings.catalog},
            run_id=settings.run_id,
            baseline=None,
            render=True,
        )
