"""What one run found: test outcomes tied to requirements, and the verdict they add up to.

The pytest plugin fills a :class:`RunRecord`; the report package turns it into
certification.json, summary.md and the rest. Nothing here talks to a target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the test could not run to a verdict (setup failed, target broke)
    SKIPPED = "skipped"


class Verdict(StrEnum):
    """A requirement's verdict. NOT_TESTED counts against certification: no skips allowed."""

    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"  # a SHOULD requirement that failed
    NOT_TESTED = "not_tested"


@dataclass
class TestRecord:
    """One test item's outcome (a scenario, or one operation's fuzzing)."""

    nodeid: str
    requirements: list[str]
    outcome: Outcome
    duration_s: float
    message: str = ""  # redacted, first lines of the failure
    failed_requirements: list[str] = field(default_factory=list)
    # ^ for tests that verify several requirements at once (fuzzing), the ones that
    #   actually failed; empty means "all of ``requirements``" when the outcome is failed.
    evidence: str = ""  # allure result uuid or attachment name


@dataclass
class RequirementVerdict:
    id: str
    level: str
    title: str
    source: str
    verdict: Verdict
    tests: list[str]
    messages: list[str] = field(default_factory=list)
    url: str | None = None  # where the rule is written, when the catalogue knows a link


@dataclass
class RunRecord:
    suite_version: str
    dialect: str
    spec_version: str
    spec_digest: str
    target: str  # base URL without credentials
    depth: str
    started_at: str
    finished_at: str = ""
    tests: list[TestRecord] = field(default_factory=list)
    leftover_accounts: list[str] = field(default_factory=list)  # created but not closed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
