"""Reports of a run: verdicts, certification.json, summary.md, Allure HTML, bundles.

- ``write_reports``: everything a run writes after its pytest sessions;
- ``allure_labels``: the Allure labels the pytest plugin applies to a test;
- ``load_baseline`` / ``exit_code``: ``--baseline`` and ``--fail-on`` for the CLI;
- ``make_bundle`` / ``verify_bundle`` (+ ``write_bundle_manifest``, ``sign_bundle``):
  the certification bundle;
- ``render_html``: Allure 3 single-file HTML with the analytics tag removed.
"""

from brokercert.report._baseline import BaselineDiff, FailOn, exit_code, load_baseline
from brokercert.report._bundle import make_bundle
from brokercert.report._certification import SCHEMA_ID, Certification, build_certification
from brokercert.report._html import HtmlResult, render_html, strip_analytics
from brokercert.report._labels import AllureLabels, allure_labels
from brokercert.report._manifest import (
    VerifyResult,
    sign_bundle,
    verify_bundle,
    write_bundle_manifest,
)
from brokercert.report._write import ReportOutcome, write_reports

__all__ = [
    "SCHEMA_ID",
    "AllureLabels",
    "BaselineDiff",
    "Certification",
    "FailOn",
    "HtmlResult",
    "ReportOutcome",
    "VerifyResult",
    "allure_labels",
    "build_certification",
    "exit_code",
    "load_baseline",
    "make_bundle",
    "render_html",
    "sign_bundle",
    "strip_analytics",
    "verify_bundle",
    "write_bundle_manifest",
    "write_reports",
]
