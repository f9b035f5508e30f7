"""The options of one suite session, read once from the pytest command line."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from brokercert import catalog
from brokercert.depth import Depth, preset
from brokercert.errors import UserError
from brokercert.target import Credentials, Target, build_target


@dataclass(frozen=True)
class SuiteSettings:
    """Everything conformance/ and scenarios/ need to know about the run."""

    target: Target
    catalog: catalog.Catalog
    depth: Depth
    run_id: str
    report_dir: Path | None
    request_timeout: float
    only_operations: tuple[str, ...] = ()  # fuzz only these operations (benchmarks)

    @property
    def dialect(self) -> str:
        return self.catalog.dialect


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a short random tail."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("brokercert", "brokercert conformance suite")
    group.addoption("--target", metavar="URL", help="base URL of the API under test")
    group.addoption("--dialect", help="API dialect: alpaca or buildmarkets")
    group.addoption("--spec-version", help="spec version of the dialect (default: newest)")
    group.addoption(
        "--depth", default="standard", help="quick, standard or deep (default: standard)"
    )
    group.addoption("--rate-limit", metavar="N/s", help="request pace, e.g. 5/s or 300/m")
    group.addoption(
        "--allow-production", action="store_true", help="allow a documented production host"
    )
    group.addoption("--insecure", action="store_true", help="do not verify TLS certificates")
    group.addoption("--request-timeout", type=float, default=10.0, help="seconds per request")
    group.addoption("--report-dir", metavar="DIR", help="write allure-results and records here")
    group.addoption("--run-id", help="identifier of the run (default: generated)")
    # Internal: set by `brokercert run`, which merges the per-dialect records itself.
    group.addoption("--bc-partial", action="store_true", help=argparse_suppress())
    group.addoption("--bc-progress", metavar="FILE", help=argparse_suppress())
    # Internal: `brokercert selftest --scope relevant` runs only the tests naming these IDs.
    group.addoption("--bc-only-requirements", metavar="IDS", help=argparse_suppress())
    # Internal, for benchmarks/: another fuzzing budget per operation than the depth's, and
    # fuzzing of the named operations only ("METHOD /path", comma-separated).
    group.addoption("--bc-max-examples", type=int, metavar="N", help=argparse_suppress())
    group.addoption("--bc-only-operations", metavar="LABELS", help=argparse_suppress())


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def from_config(config: pytest.Config) -> SuiteSettings | None:
    """Build the settings, or None when no suite option was given (the project's own tests)."""
    url = config.getoption("--target")
    dialect = config.getoption("--dialect")
    if url is None and dialect is None:
        return None
    if not url or not dialect:
        raise pytest.UsageError("the suite needs both --target URL and --dialect NAME")
    try:
        cat = catalog.load(dialect, config.getoption("--spec-version"))
        depth = preset(config.getoption("--depth"))
        budget = config.getoption("--bc-max-examples")
        if budget is not None:
            if budget < 1:
                raise UserError("--bc-max-examples must be at least 1")
            depth = replace(depth, max_examples=budget)
        credentials = Credentials.from_env()
        if credentials is None:
            raise UserError("no credentials: set BROKERCERT_API_KEY and BROKERCERT_API_SECRET")
        timeout = float(config.getoption("--request-timeout"))
        target = build_target(
            url,
            cat.profile,
            credentials,
            allow_production=bool(config.getoption("--allow-production")),
            rate_limit=config.getoption("--rate-limit"),
            insecure=bool(config.getoption("--insecure")),
            timeout=timeout,
        )
    except (catalog.CatalogError, UserError) as exc:
        raise pytest.UsageError(str(exc)) from None
    report_dir = config.getoption("--report-dir")
    return SuiteSettings(
        target=target,
        catalog=cat,
        depth=depth,
        run_id=config.getoption("--run-id") or new_run_id(),
        report_dir=Path(report_dir) if report_dir else None,
        request_timeout=timeout,
        only_operations=tuple(
            label.strip()
            for label in (config.getoption("--bc-only-operations") or "").split(",")
            if label.strip()
        ),
    )
