"""Compare a run with an earlier certification.json, and decide the exit code for CI.

Requirements are matched by (dialect, requirement id). A requirement is *passing*
when its verdict is ``passed``; anything else (failed, warning, not_tested) is not.

- regression: passing in the baseline, not passing now;
- fixed: not passing in the baseline, passing now;
- still failing: not passing in either;
- new: in this run, not in the baseline (a new dialect or a new catalogue entry);
- removed: in the baseline, gone from a dialect this run also certified.

``--fail-on any`` (the default): exit 1 unless the run is conformant.
``--fail-on new`` (nightly CI): exit 1 only for a MUST that is a regression or is new
and not passing; known failures do not break the build. With no baseline every
requirement is new, so ``new`` behaves like ``any``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from brokercert.errors import ExitCode
from brokercert.report._certification import Certification, load_certification

FailOn = Literal["new", "any"]
FAIL_ON_CHOICES: tuple[FailOn, ...] = ("new", "any")
_PASSED = "passed"


@dataclass(frozen=True)
class Change:
    """One requirement whose standing is reported against the baseline."""

    dialect: str
    id: str
    level: str
    title: str
    before: str | None  # verdict in the baseline; None for a new requirement
    after: str | None  # verdict now; None for a removed requirement


@dataclass(frozen=True)
class BaselineDiff:
    baseline_path: str
    baseline_run_id: str
    baseline_verdict: str
    regressions: tuple[Change, ...]
    fixed: tuple[Change, ...]
    still_failing: tuple[Change, ...]
    new: tuple[Change, ...]
    removed: tuple[Change, ...]
    dialects_not_in_baseline: tuple[str, ...]

    @property
    def blocking(self) -> tuple[Change, ...]:
        """What fails ``--fail-on new``: MUSTs that regressed, or are new and not passing."""
        return tuple(
            c
            for c in (*self.regressions, *self.new)
            if c.level == "MUST" and c.after is not None and c.after != _PASSED
        )


def load_baseline(path: Path) -> dict[str, Any]:
    """Read a baseline certification.json; a bad, missing or foreign file is one UserError."""
    return load_certification(path, what="--baseline")


def _index(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for res in doc["results"]:
        for req in res["requirements"]:
            out[(res["dialect"], req["id"])] = req
    return out


def _change(
    key: tuple[str, str], before: dict[str, Any] | None, after: dict[str, Any] | None
) -> Change:
    ref = after if after is not None else before
    assert ref is not None
    return Change(
        dialect=key[0],
        id=key[1],
        level=str(ref.get("level", "")),
        title=str(ref.get("title", "")),
        before=None if before is None else str(before["verdict"]),
        after=None if after is None else str(after["verdict"]),
    )


def compare_baseline(
    current: Certification | dict[str, Any], baseline: dict[str, Any], *, baseline_path: str = ""
) -> BaselineDiff:
    """What changed from ``baseline`` (a loaded certification.json) to ``current``."""
    cur_doc = current.to_json() if isinstance(current, Certification) else current
    now, then = _index(cur_doc), _index(baseline)
    base_dialects = {r["dialect"] for r in baseline["results"]}
    cur_dialects = {r["dialect"] for r in cur_doc["results"]}
    regressions, fixed, still, new, removed = [], [], [], [], []
    for key in sorted(now):
        after, before = now[key], then.get(key)
        if before is None:
            new.append(_change(key, None, after))
            continue
        was_ok, is_ok = before["verdict"] == _PASSED, after["verdict"] == _PASSED
        if was_ok and not is_ok:
            regressions.append(_change(key, before, after))
        elif not was_ok and is_ok:
            fixed.append(_change(key, before, after))
        elif not was_ok and not is_ok:
            still.append(_change(key, before, after))
    for key in sorted(then):
        if key not in now and key[0] in cur_dialects:
            removed.append(_change(key, then[key], None))
    return BaselineDiff(
        baseline_path=baseline_path,
        baseline_run_id=str(baseline.get("run_id", "")),
        baseline_verdict=str(baseline.get("verdict", "")),
        regressions=tuple(regressions),
        fixed=tuple(fixed),
        still_failing=tuple(still),
        new=tuple(new),
        removed=tuple(removed),
        dialects_not_in_baseline=tuple(sorted(cur_dialects - base_dialects)),
    )


def exit_code(conformant: bool, diff: BaselineDiff | None, fail_on: FailOn = "any") -> ExitCode:
    """0 or 1 for a finished run: see the module docstring for ``fail_on``."""
    if fail_on not in FAIL_ON_CHOICES:
        raise ValueError(f"fail_on must be one of {FAIL_ON_CHOICES}, not {fail_on!r}")
    if fail_on == "new" and diff is not None:
        return ExitCode.NOT_CONFORMANT if diff.blocking else ExitCode.CONFORMANT
    return ExitCode.CONFORMANT if conformant else ExitCode.NOT_CONFORMANT
