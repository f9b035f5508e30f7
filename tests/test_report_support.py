"""Shared factories for the tests of brokercert.report (this module holds no tests).

Names starting with ``Test`` are not imported here: pytest would try to collect them.

Catalogues are built in memory so the report tests do not depend on specs/.
"""

from __future__ import annotations

from pathlib import Path

from brokercert import results
from brokercert.catalog import Catalog, Profile, Requirement
from brokercert.results import Outcome, RunRecord

STARTED = "2026-01-02T03:04:05Z"
FINISHED = "2026-01-02T03:05:06Z"


def make_req(
    rid: str, level: str = "MUST", url: str | None = None, operation: str = "*"
) -> Requirement:
    return Requirement(
        id=rid,
        level=level,  # type: ignore[arg-type]  # pydantic coerces the str
        title=f"Requirement {rid} holds for every input",
        operation=operation,
        source=f"source of {rid}, section 1",
        url=url,
    )


def make_catalog(
    dialect: str = "alpaca", version: str = "1.1.1", reqs: tuple[Requirement, ...] = ()
) -> Catalog:
    return Catalog(
        dialect=dialect,
        version=version,
        folder=Path("specs") / dialect / version,
        spec={"paths": {}},
        spec_digest=f"sha256:{dialect}-{version}",
        profile=Profile.model_construct(),
        requirements=reqs,
    )


def make_test(
    nodeid: str,
    reqs: list[str],
    outcome: Outcome = Outcome.PASSED,
    message: str = "",
    failed: list[str] | None = None,
) -> results.TestRecord:
    return results.TestRecord(
        nodeid=nodeid,
        requirements=reqs,
        outcome=outcome,
        duration_s=0.1,
        message=message,
        failed_requirements=failed or [],
    )


def make_run(
    dialect: str = "alpaca",
    version: str = "1.1.1",
    tests: list[results.TestRecord] | None = None,
    target: str = "http://127.0.0.1:8000/alpaca",
    leftovers: list[str] | None = None,
) -> RunRecord:
    return RunRecord(
        suite_version="0.1.0",
        dialect=dialect,
        spec_version=version,
        spec_digest=f"sha256:{dialect}-{version}",
        target=target,
        depth="standard",
        started_at=STARTED,
        finished_at=FINISHED,
        tests=tests or [],
        leftover_accounts=leftovers or [],
    )


def alpaca_catalog() -> Catalog:
    """Two MUSTs, a SHOULD and an untested MUST."""
    return make_catalog(
        reqs=(
            make_req("ALP-ACC-001", url="https://docs.example.invalid/accounts"),
            make_req("ALP-DOC-001"),
            make_req("ALP-ERR-001", level="SHOULD"),
            make_req("ALP-CIP-001"),
        )
    )
