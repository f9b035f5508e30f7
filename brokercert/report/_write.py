"""The one call the CLI makes after the pytest sessions: every report of a run.

Layout of ``run_dir`` (pytest writes the first two, this module the rest)::

    allure-results/            junit*.xml
    certification.json         summary.md
    allure-report/index.html   (+ summary.json, test-results.json: Allure's side files)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from brokercert.catalog import Catalog
from brokercert.errors import ExitCode, UserError
from brokercert.report._baseline import (
    BaselineDiff,
    FailOn,
    compare_baseline,
    exit_code,
    load_baseline,
)
from brokercert.report._certification import Certification, build_certification
from brokercert.report._html import HtmlResult, render_html
from brokercert.report._summary import render_summary
from brokercert.results import RunRecord


@dataclass(frozen=True)
class ReportOutcome:
    verdict: str  # "conformant" | "not_conformant"
    exit_code: ExitCode  # 0 or 1, after --fail-on
    certification: Certification
    paths: dict[str, Path] = field(default_factory=dict)  # name -> file written
    html: HtmlResult | None = None
    diff: BaselineDiff | None = None


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_reports(
    run_dir: Path,
    records: list[RunRecord],
    catalogs: dict[str, Catalog],
    *,
    run_id: str,
    baseline: Path | None,
    render: bool = True,
    fail_on: FailOn = "any",
) -> ReportOutcome:
    """Write certification.json, summary.md and the Allure HTML; return verdict and exit code.

    ``catalogs`` is keyed by dialect. A bad ``baseline`` raises UserError, but only after
    the reports were written without the comparison (a finished run is never lost);
    callers that want to fail before running validate it first with ``load_baseline``.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cert = build_certification(records, catalogs, run_id=run_id)
    diff: BaselineDiff | None = None
    baseline_error: UserError | None = None
    if baseline is not None:
        try:
            diff = compare_baseline(cert, load_baseline(baseline), baseline_path=str(baseline))
        except UserError as exc:
            baseline_error = exc
    paths = {"certification": run_dir / "certification.json", "summary": run_dir / "summary.md"}
    _write_text(paths["certification"], cert.dumps())
    _write_text(paths["summary"], render_summary(cert, diff))
    html: HtmlResult | None = None
    if render:
        html = render_html(
            run_dir / "allure-results",
            run_dir / "allure-report",
            report_name=f"brokercert {run_id}",
        )
        if html.path is not None:
            paths["html"] = html.path
    for junit in sorted(run_dir.glob("junit*.xml")):
        paths[junit.stem] = junit
    if baseline_error is not None:
        raise baseline_error
    return ReportOutcome(
        verdict=cert.verdict,
        exit_code=exit_code(cert.conformant, diff, fail_on),
        certification=cert,
        paths=paths,
        html=html,
        diff=diff,
    )
