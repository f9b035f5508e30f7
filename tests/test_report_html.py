"""brokercert.report._html and ._allure_cli: Allure 3 HTML, analytics removed, never raising."""

from __future__ import annotations

import json
import shutil
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from brokercert.report import _allure_cli as cli
from brokercert.report import render_html, strip_analytics
from brokercert.report._html import has_analytics

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")

# The tail of a real Allure 3.18.0 `awesome --single-file` index.html, data shortened.
ALLURE_PAGE = textwrap.dedent(
    """\
    <!DOCTYPE html>
    <html dir="ltr" lang="en">
    <head>
      <meta charset="utf-8">
      <link rel="icon" href="data:image/svg+xml,%3Csvg%3E%3C/svg%3E">
      <title>Allure Report</title>
    </head>
    <body>
      <div id="app"></div>
        <script defer src="data:text/javascript;base64,KGZ1bmN0aW9uKCl7fSkoKTs="></script>
        <script async src="https://www.googletagmanager.com/gtag/js?id=G-LNDJ3J7WT0"></script>
        <script>
            window.dataLayer = window.dataLayer || [];
            function gtag(){dataLayer.push(arguments);}
            gtag('js', new Date());
            gtag('config', 'G-LNDJ3J7WT0', {
              "report": "awesome",
              "allureVersion": "3.18.0",
              "single_file": "true"
            });
        </script>

        <script async>
          window.allureReportDataReady = false;
          window.allureReportData = {};
          d("widgets/summary.json","e30=").then(function(){
              window.allureReportDataReady = true;
          })
        </script>
    </body>
    </html>
    """
)


def test_strip_removes_gtag_script_and_inline_config_only() -> None:
    assert has_analytics(ALLURE_PAGE)
    out = strip_analytics(ALLURE_PAGE)
    assert not has_analytics(out)
    assert "gtag" not in out and "dataLayer" not in out and "G-LNDJ3J7WT0" not in out
    # everything else is untouched
    assert 'src="data:text/javascript;base64,KGZ1bmN0aW9uKCl7fSkoKTs="' in out
    assert "window.allureReportDataReady = true;" in out
    assert '<link rel="icon"' in out
    assert out.count("<script") == 2
    assert strip_analytics(out) == out


def test_strip_handles_other_tag_shapes() -> None:
    page = (
        "<html><head>"
        "<SCRIPT type='text/javascript' SRC='https://www.googletagmanager.com/gtm.js?id=GTM-X'>"
        "</SCRIPT>"
        '<link rel="preconnect" href="https://www.google-analytics.com">'
        "<script>(function(w,d,s,l){w[l]=w[l]||[];})(window,document,'script','dataLayer');"
        "</script>"
        "</head><body>"
        '<noscript><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-X" height="0">'
        "</iframe></noscript>"
        '<img src="https://www.google-analytics.com/collect?v=1">'
        "<script>var keep = 1;</script>"
        "</body></html>"
    )
    out = strip_analytics(page)
    assert not has_analytics(out)
    assert out == "<html><head></head><body><script>var keep = 1;</script></body></html>"


def test_large_inline_scripts_are_never_dropped_on_a_chance_match() -> None:
    big = "<script>var data = '" + "A" * 30_000 + "'; // dataLayer</script>"
    assert strip_analytics(big) == big


def _write_results(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        status = "failed" if i == 0 else "passed"
        result = {
            "uuid": str(uuid.uuid4()),
            "historyId": f"h{i}",
            "name": f"test_{i}",
            "fullName": f"scenarios.test_x#test_{i}",
            "status": status,
            "stage": "finished",
            "start": 1_700_000_000_000 + i,
            "stop": 1_700_000_000_100 + i,
            "labels": [
                {"name": "epic", "value": "alpaca 1.1.1"},
                {"name": "feature", "value": "Accounts"},
                {"name": "story", "value": "POST /v1/accounts"},
                {"name": "requirement", "value": f"ALP-ACC-00{i + 1}"},
                {"name": "severity", "value": "critical"},
            ],
            "statusDetails": {"message": "expected 200, got 201"} if status == "failed" else {},
        }
        (folder / f"{result['uuid']}-result.json").write_text(json.dumps(result))
    return folder


def test_no_results_gives_a_message_and_removes_a_stale_page(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("<p>an earlier run</p>")
    (out / "keep.txt").write_text("not ours")
    res = render_html(tmp_path / "missing", out)
    assert not res.ok and res.reason == "no_results"
    assert "no Allure results" in res.message
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_no_node_says_how_to_get_the_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    res = render_html(_write_results(tmp_path / "r"), tmp_path / "out")
    assert not res.ok and res.reason == "no_renderer"
    assert "node is not installed" in res.message
    assert "npm install --prefix" in res.message and "allure@3.18.0" in res.message
    assert "awesome" in res.message and "--single-file" in res.message
    assert not (tmp_path / "out").exists()


def test_failed_install_gives_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_npm = tmp_path / "npm"
    fake_npm.write_text(
        "#!/bin/sh\necho 'npm ERR! code ENOTFOUND registry.npmjs.org' >&2\nexit 1\n"
    )
    fake_npm.chmod(0o755)
    monkeypatch.delenv(cli.ENV_DIR, raising=False)
    monkeypatch.setattr(cli, "cache_dir", lambda: tmp_path / "cache" / "allure-3.18.0")
    monkeypatch.setattr(
        cli.shutil, "which", lambda name: str(fake_npm) if name == "npm" else "/usr/bin/node"
    )
    res = render_html(_write_results(tmp_path / "r"), tmp_path / "out")
    assert res.reason == "no_renderer"
    assert "ENOTFOUND" in res.message and "npm install --prefix" in res.message
    assert list((tmp_path / "cache").iterdir()) == []  # no half-installed copy left


def test_env_dir_without_allure_gives_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setenv(cli.ENV_DIR, str(tmp_path))
    res = render_html(_write_results(tmp_path / "r"), tmp_path / "out")
    assert res.reason == "no_renderer" and cli.ENV_DIR in res.message


def _fake_allure(root: Path, script: str) -> Path:
    """A folder shaped like an npm install of `allure`, whose cli.js runs ``script``."""
    pkg = root / "node_modules" / "allure"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"version": "9.9.9", "bin": "./cli.js"}))
    (pkg / "cli.js").write_text(script)
    return root


FAKE_RENDER = """
const fs = require('fs'); const path = require('path');
const args = process.argv.slice(2); const out = args[args.indexOf('-o') + 1];
fs.mkdirSync(out, {recursive: true});
fs.writeFileSync(path.join(out, 'index.html'), process.env.FAKE_PAGE);
fs.writeFileSync(path.join(out, 'summary.json'), '{}');
fs.writeFileSync(path.join(out, 'test-results.json'), '{}');
"""


@needs_node
def test_render_pipeline_with_a_fake_renderer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.ENV_DIR, str(_fake_allure(tmp_path / "allure", FAKE_RENDER)))
    monkeypatch.setenv("FAKE_PAGE", ALLURE_PAGE)
    out = tmp_path / "run" / "allure-report"
    res = render_html(_write_results(tmp_path / "run" / "allure-results"), out)
    assert res.ok and res.path == out / "index.html", res.message
    assert sorted(p.name for p in out.iterdir()) == [
        "index.html",
        "summary.json",
        "test-results.json",
    ]
    page = res.path.read_text()
    assert "googletagmanager" not in page and "window.allureReportDataReady" in page


@needs_node
def test_page_with_a_leftover_tracker_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.ENV_DIR, str(_fake_allure(tmp_path / "allure", FAKE_RENDER)))
    monkeypatch.setenv("FAKE_PAGE", "<p>see https://www.googletagmanager.com</p>")
    out = tmp_path / "out"
    res = render_html(_write_results(tmp_path / "r"), out)
    assert res.reason == "analytics_left" and not res.ok
    assert not (out / "index.html").exists()


@needs_node
def test_failing_or_hanging_renderer_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = _write_results(tmp_path / "r")
    monkeypatch.setenv(
        cli.ENV_DIR,
        str(_fake_allure(tmp_path / "bad", "console.error('bad input'); process.exit(3)")),
    )
    res = render_html(results, tmp_path / "out")
    assert res.reason == "render_failed" and "bad input" in res.message
    monkeypatch.setenv(
        cli.ENV_DIR, str(_fake_allure(tmp_path / "slow", "setTimeout(() => {}, 60000)"))
    )
    started = time.monotonic()
    res = render_html(results, tmp_path / "out", timeout_s=1)
    assert res.reason == "render_failed" and "took over 1 s" in res.message
    assert time.monotonic() - started < 10
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # work folder cleaned up


@needs_node
def test_real_allure_render_has_no_analytics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uses the cached install (installs Allure 3.18.0 into the user cache on first use)."""
    monkeypatch.delenv(cli.ENV_DIR, raising=False)
    run = tmp_path / "run"
    res = render_html(_write_results(run / "allure-results"), run / "allure-report")
    if res.reason == "no_renderer" and "npm install" in res.message and "failed" in res.message:
        pytest.skip(f"Allure 3 could not be installed (offline?): {res.message}")
    assert res.ok, res.message
    page = res.path.read_text(encoding="utf-8") if res.path else ""
    assert page.startswith("<!DOCTYPE html>") and len(page) > 1_000_000
    assert "googletagmanager" not in page.lower() and "gtag(" not in page
    assert "allureReportData" in page  # the report's own data loader survived
    assert sorted(p.name for p in (run / "allure-report").iterdir()) == [
        "index.html",
        "summary.json",
        "test-results.json",
    ]
    assert json.loads((run / "allure-report" / "summary.json").read_text())["stats"]["total"] == 3
    print(f"render took {res.seconds:.2f} s")
