"""summary.md: the certification verdict for people.

Failures come first with their messages (already redacted upstream), then warnings,
requirements not tested, accounts the run could not close, the full requirement
table, and the comparison with a baseline when one was given.
"""

from __future__ import annotations

import re

from brokercert.report._baseline import BaselineDiff, Change
from brokercert.report._certification import Certification
from brokercert.report._verdicts import DialectResult
from brokercert.results import RequirementVerdict, Verdict

ICONS = {
    Verdict.FAILED: "❌",
    Verdict.WARNING: "⚠️",
    Verdict.NOT_TESTED: "⛔",
    Verdict.PASSED: "✅",
}
_ORDER = {Verdict.FAILED: 0, Verdict.WARNING: 1, Verdict.NOT_TESTED: 2, Verdict.PASSED: 3}
_LABEL = {
    "passed": "passed",
    "failed": "failed",
    "warning": "warning",
    "not_tested": "not tested",
}


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _fenced(text: str) -> list[str]:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *text.rstrip("\n").splitlines(), fence]


def _verdict_line(conformant: bool) -> str:
    return "✅ CONFORMANT" if conformant else "❌ NOT CONFORMANT"


_MAX_TESTS = 10


def _req_heading(r: RequirementVerdict) -> list[str]:
    where = f"[{_cell(r.source)}]({r.url})" if r.url else _cell(r.source)
    lines = [f"- **{r.id}** ({r.level}) {_cell(r.title)}", f"  - source: {where}"]
    if r.tests:
        shown = ", ".join(f"`{t}`" for t in r.tests[:_MAX_TESTS])
        more = len(r.tests) - _MAX_TESTS
        lines.append(f"  - tests: {shown}" + (f" and {more} more" if more > 0 else ""))
    return lines


def _section(title: str, items: list[RequirementVerdict], *, with_messages: bool) -> list[str]:
    if not items:
        return []
    lines = [f"### {title} ({len(items)})", ""]
    for r in items:
        lines.extend(_req_heading(r))
        if with_messages:
            for msg in r.messages:
                lines.append("")
                lines.extend("  " + line for line in _fenced(msg))
        elif r.messages:
            lines.append(f"  - why: {_cell('; '.join(r.messages))}")
    lines.append("")
    return lines


def _dialect(res: DialectResult) -> list[str]:
    reqs = res.requirements
    out = [
        f"## {res.dialect} {res.spec_version}: {_verdict_line(res.conformant)}",
        "",
        f"- target: `{res.target}`",
        f"- depth: {res.depth}",
        f"- spec digest: `{res.spec_digest}`",
        f"- started {res.started_at or '?'}, finished {res.finished_at or '?'}",
        "- " + ", ".join(f"{n} {_LABEL[k]}" for k, n in res.counts.items()),
        "",
    ]
    out += _section(
        "Failures", [r for r in reqs if r.verdict is Verdict.FAILED], with_messages=True
    )
    out += _section(
        "Warnings (SHOULD)", [r for r in reqs if r.verdict is Verdict.WARNING], with_messages=True
    )
    out += _section(
        "Not tested", [r for r in reqs if r.verdict is Verdict.NOT_TESTED], with_messages=False
    )
    if res.leftover_accounts:
        out += [f"### Accounts left open ({len(res.leftover_accounts)})", ""]
        out += [
            "The run created these accounts and could not close them; close them by hand:",
            "",
        ]
        out += [f"- `{a}`" for a in res.leftover_accounts]
        out.append("")
    out += [
        f"### All requirements ({len(reqs)})",
        "",
        "| | id | level | title | source |",
        "|---|---|---|---|---|",
    ]
    ordered = sorted(reqs, key=lambda r: _ORDER[r.verdict])  # stable: catalogue order within
    for r in ordered:
        source = f"[{_cell(r.source)}]({r.url})" if r.url else _cell(r.source)
        out.append(f"| {ICONS[r.verdict]} | {r.id} | {r.level} | {_cell(r.title)} | {source} |")
    out.append("")
    return out


def _changes(title: str, changes: tuple[Change, ...], note: str = "") -> list[str]:
    lines = [f"### {title} ({len(changes)})", ""]
    if note:
        lines += [note, ""]
    if not changes:
        return [*lines, "None.", ""]
    lines += ["| dialect | id | level | before | now | title |", "|---|---|---|---|---|---|"]
    for c in changes:
        before = _LABEL.get(c.before, c.before) if c.before else "-"
        after = _LABEL.get(c.after, c.after) if c.after else "-"
        lines.append(
            f"| {c.dialect} | {c.id} | {c.level} | {before} | {after} | {_cell(c.title)} |"
        )
    return [*lines, ""]


def _baseline(diff: BaselineDiff) -> list[str]:
    verdict = {"conformant": "conformant", "not_conformant": "not conformant"}.get(
        diff.baseline_verdict, diff.baseline_verdict
    )
    run = f" (run `{diff.baseline_run_id}`, {verdict})" if diff.baseline_run_id else ""
    out = ["## Compared with the baseline", "", f"Baseline: `{diff.baseline_path}`{run}.", ""]
    if diff.dialects_not_in_baseline:
        names = ", ".join(diff.dialects_not_in_baseline)
        out += [f"Not in the baseline (every requirement is new): {names}.", ""]
    out += _changes("New failures (regressions)", diff.regressions)
    out += _changes("Fixed", diff.fixed)
    out += _changes("Still failing", diff.still_failing)
    new = tuple(c for c in diff.new if c.dialect not in diff.dialects_not_in_baseline)
    out += _changes("New requirements", new)
    if diff.removed:
        out += _changes("No longer in the catalogue", diff.removed)
    return out


def render_summary(cert: Certification, diff: BaselineDiff | None = None) -> str:
    """The Markdown text of summary.md."""
    out = [
        f"# brokercert certification: {_verdict_line(cert.conformant)}",
        "",
        f"Run `{cert.run_id}`, brokercert {cert.suite_version}, "
        f"started {cert.started_at or '?'}, finished {cert.finished_at or '?'}.",
        "A dialect is conformant when every MUST requirement passed; "
        "a requirement not tested counts against it.",
        "",
    ]
    if not cert.results:
        out += ["No dialect was run, so nothing is certified.", ""]
    else:
        out += [
            "| dialect | spec | verdict | passed | failed | warning | not tested |",
            "|---|---|---|---|---|---|---|",
        ]
        for res in cert.results:
            c = res.counts
            out.append(
                f"| {res.dialect} | {res.spec_version} | {_verdict_line(res.conformant)} "
                f"| {c['passed']} | {c['failed']} | {c['warning']} | {c['not_tested']} |"
            )
        out.append("")
    for res in cert.results:
        out += _dialect(res)
    if diff is not None:
        out += _baseline(diff)
    return "\n".join(out).rstrip("\n") + "\n"
