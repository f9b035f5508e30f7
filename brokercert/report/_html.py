"""The Allure HTML report: one self-contained index.html, with no analytics tag.

Allure 3.18.0 ``awesome --single-file`` writes ``index.html`` plus two side files,
``summary.json`` (totals) and ``test-results.json`` (one line per test). All three
stay together in the report folder (``<run>/allure-report/``), never in the run or
bundle root. The renderer hard-codes a Google Tag Manager script and an inline gtag
config in index.html; both are removed here, since a certification report must not
call home, and a page where any tracker reference survives is not written at all.

Rendering never raises: when node or npm is missing, or the install or render fails,
the result carries a message saying how to get the HTML.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from brokercert.report._allure_cli import (
    ALLURE_VERSION,
    RendererUnavailable,
    cache_dir,
    find_renderer,
    install_command,
)

RENDER_TIMEOUT_S = 180.0
TRACKERS = ("googletagmanager", "google-analytics", "analytics.google.com", "doubleclick.net")
SIDE_FILES = ("summary.json", "test-results.json")

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_INLINE_TRACKING = re.compile(r"\bgtag\s*\(|\bdataLayer\b|" + "|".join(map(re.escape, TRACKERS)))
_OTHER_TAGS = re.compile(
    r"<noscript\b[^>]*>.*?</noscript\s*>|<(?:link|img|iframe)\b[^>]*>(?:\s*</iframe\s*>)?",
    re.IGNORECASE | re.DOTALL,
)
_INLINE_LIMIT = 20_000
_TRACKER_RE = re.compile("|".join(map(re.escape, TRACKERS)), re.IGNORECASE)


@dataclass(frozen=True)
class HtmlResult:
    """Where the HTML report is, or (``path`` None) a message saying how to get it."""

    path: Path | None
    message: str
    seconds: float = 0.0
    reason: str = "ok"  # ok | no_results | no_renderer | render_failed | analytics_left

    @property
    def ok(self) -> bool:
        return self.path is not None


def strip_analytics(html: str) -> str:
    """``html`` without analytics: tracker scripts, inline gtag/dataLayer code, tracker links."""

    def script(m: re.Match[str]) -> str:
        attrs, body = m.group(1), m.group(2)
        if _TRACKER_RE.search(attrs):
            return ""
        # Only small inline scripts are judged by their code: the report's own data and
        # application scripts are large and must never be dropped on a chance match.
        if len(body) <= _INLINE_LIMIT and _INLINE_TRACKING.search(body):
            return ""
        return m.group(0)

    def other(m: re.Match[str]) -> str:
        return "" if _TRACKER_RE.search(m.group(0)) else m.group(0)

    html = _SCRIPT.sub(script, html)
    return _OTHER_TAGS.sub(other, html)


def has_analytics(html: str) -> bool:
    return _TRACKER_RE.search(html) is not None


def how_to_get_html(results_dir: Path, out_dir: Path) -> str:
    """The commands that install Allure 3 once and render the report by hand."""
    prefix = cache_dir()
    install = " ".join(install_command(prefix))
    render = (
        f"node {prefix}/node_modules/.bin/allure awesome {results_dir} --single-file -o {out_dir}"
    )
    return (
        f"install Allure {ALLURE_VERSION} once with `{install}` (needs Node.js 18+ and network); "
        f"the next run renders the HTML offline, or render it now with `{render}` "
        "(by hand the renderer's Google analytics tag stays in)"
    )


def _tail(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def render_html(
    results_dir: Path,
    out_dir: Path,
    *,
    install: bool = True,
    report_name: str = "brokercert",
    timeout_s: float = RENDER_TIMEOUT_S,
) -> HtmlResult:
    """Render ``results_dir`` (allure-results) to ``out_dir/index.html``; never raises."""
    started = time.monotonic()

    def result(reason: str, message: str, path: Path | None = None) -> HtmlResult:
        return HtmlResult(path, message, round(time.monotonic() - started, 3), reason)

    # A page left from an earlier render would not match this run's results.
    for name in ("index.html", *SIDE_FILES):
        stale = out_dir / name
        if stale.is_file():
            stale.unlink()
    if not results_dir.is_dir() or not any(results_dir.glob("*-result.json")):
        return result("no_results", f"HTML report not rendered: no Allure results in {results_dir}")
    try:
        renderer = find_renderer(install=install)
    except RendererUnavailable as exc:
        return result(
            "no_renderer",
            f"HTML report not rendered: {exc}; {how_to_get_html(results_dir, out_dir)}",
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".allure-render-", dir=out_dir))
    except OSError as exc:
        return result("render_failed", f"HTML report not rendered: {out_dir}: {exc.strerror}")
    try:
        rendered = work / "report"
        cmd = [
            renderer.node,
            str(renderer.cli_js),
            "awesome",
            str(results_dir.resolve()),
            "--single-file",
            "--report-name",
            report_name,
            "-o",
            str(rendered),
        ]
        env = {**os.environ, "NO_COLOR": "1", "ALLURE_NO_ANALYTICS": "true"}
        try:
            # cwd is an empty folder, so no allurerc config of the caller's is picked up.
            proc = subprocess.run(
                cmd,
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return result(
                "render_failed",
                f"HTML report not rendered: Allure took over {timeout_s:.0f} s; "
                + how_to_get_html(results_dir, out_dir),
            )
        except OSError as exc:
            return result("render_failed", f"HTML report not rendered: node failed: {exc.strerror}")
        page = rendered / "index.html"
        if proc.returncode != 0 or not page.is_file():
            why = _tail(proc.stderr) or _tail(proc.stdout) or f"exit code {proc.returncode}"
            return result("render_failed", f"HTML report not rendered: Allure failed: {why}")
        html = strip_analytics(page.read_text(encoding="utf-8"))
        if has_analytics(html):
            return result(
                "analytics_left",
                f"HTML report not written: Allure {renderer.version} output still references "
                "an analytics host after stripping; refusing to ship a report that calls home",
            )
        target = out_dir / "index.html"
        tmp_page = work / "index.html"
        tmp_page.write_text(html, encoding="utf-8")
        os.replace(tmp_page, target)
        for name in SIDE_FILES:
            side = rendered / name
            if side.is_file():
                os.replace(side, out_dir / name)
        return result("ok", f"HTML report: {target}", target)
    except (OSError, ValueError) as exc:
        return result("render_failed", f"HTML report not rendered: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
