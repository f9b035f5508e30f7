"""From test outcomes to one verdict per catalogue requirement, and a dialect's verdict.

Rules (DESIGN.md "Requirements are data"):

- no test names the requirement, or a test naming it was skipped -> NOT_TESTED
  (certification allows no skips, so one skipped test is enough);
- a test naming it failed or errored -> FAILED for a MUST, WARNING for a SHOULD.
  ``TestRecord.failed_requirements``, when non-empty, narrows which of the test's
  requirements failed: the others count that test as passed;
- otherwise (every test naming it passed) -> PASSED.

A dialect result is conformant iff every MUST requirement is PASSED.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from brokercert.catalog import Catalog, Level, Requirement
from brokercert.results import Outcome, RequirementVerdict, RunRecord, TestRecord, Verdict

_BAD = (Outcome.FAILED, Outcome.ERROR)


@dataclass(frozen=True)
class DialectResult:
    """One dialect run judged against its catalogue."""

    dialect: str
    spec_version: str
    spec_digest: str
    target: str
    depth: str
    started_at: str
    finished_at: str
    suite_version: str
    requirements: tuple[RequirementVerdict, ...]
    leftover_accounts: tuple[str, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Requirements per verdict; every verdict is present, in a fixed order."""
        out = {v.value: 0 for v in Verdict}
        for req in self.requirements:
            out[req.verdict.value] += 1
        return out

    @property
    def conformant(self) -> bool:
        return all(
            r.verdict is Verdict.PASSED for r in self.requirements if r.level == Level.MUST.value
        )


def safe_target(url: str) -> str:
    """The target URL without user info, query or fragment (never credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _implicates(test: TestRecord, req_id: str) -> bool:
    """True when ``test`` counts as a failure of ``req_id``."""
    if test.outcome not in _BAD:
        return False
    return not test.failed_requirements or req_id in test.failed_requirements


def _message(test: TestRecord) -> str:
    text = test.message.strip() or f"{test.outcome.value} (no message)"
    return f"{test.nodeid}: {text}"


def judge(req: Requirement, tests: list[TestRecord]) -> RequirementVerdict:
    """The verdict of one requirement from the tests that name it."""
    tests = sorted(tests, key=lambda t: t.nodeid)
    nodeids = sorted({t.nodeid for t in tests})
    failing = [t for t in tests if _implicates(t, req.id)]
    skipped = [t for t in tests if t.outcome is Outcome.SKIPPED]
    messages: list[str] = []
    if failing:
        verdict = Verdict.FAILED if req.level is Level.MUST else Verdict.WARNING
        sources = failing
    elif not tests or skipped:
        verdict = Verdict.NOT_TESTED
        sources = skipped
        if not tests:
            messages.append("no test ran this requirement")
    else:
        verdict = Verdict.PASSED
        sources = []
    for test in sources:
        msg = _message(test)
        if msg not in messages:
            messages.append(msg)
    return RequirementVerdict(
        id=req.id,
        level=req.level.value,
        title=req.title,
        source=req.source,
        verdict=verdict,
        tests=nodeids,
        messages=messages,
        url=req.url,
    )


def evaluate(record: RunRecord, catalog: Catalog) -> DialectResult:
    """Judge every requirement of ``catalog`` on the outcomes in ``record``."""
    if record.dialect != catalog.dialect or record.spec_version != catalog.version:
        raise ValueError(
            f"run record {record.dialect} {record.spec_version} does not match "
            f"catalogue {catalog.dialect} {catalog.version}"
        )
    by_req: dict[str, list[TestRecord]] = {}
    for test in record.tests:
        for rid in dict.fromkeys(test.requirements):
            by_req.setdefault(rid, []).append(test)
    verdicts = tuple(judge(req, by_req.get(req.id, [])) for req in catalog.requirements)
    return DialectResult(
        dialect=record.dialect,
        spec_version=record.spec_version,
        spec_digest=record.spec_digest or catalog.spec_digest,
        target=safe_target(record.target),
        depth=record.depth,
        started_at=record.started_at,
        finished_at=record.finished_at,
        suite_version=record.suite_version,
        requirements=verdicts,
        leftover_accounts=tuple(sorted(set(record.leftover_accounts))),
    )
