"""Finding, or installing once, the Allure 3 renderer (npm package ``allure``, pinned).

Where it is looked for, in order:

1. ``$BROKERCERT_ALLURE_DIR``: a folder where ``npm install --prefix <dir> allure@3.18.0``
   was run (it holds ``node_modules/allure``); used as it is, never installed into;
2. ``<user cache>/brokercert/allure-3.18.0`` (platformdirs ``user_cache_dir``): installed
   there on first use with npm, then reused offline by every later run.

The install goes to a temporary sibling folder that is renamed into place, so two runs
installing at once never see a half-installed copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

ALLURE_VERSION = "3.18.0"
ENV_DIR = "BROKERCERT_ALLURE_DIR"
INSTALL_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Renderer:
    node: str
    cli_js: Path
    version: str


class RendererUnavailable(Exception):
    """No usable Allure 3; the message says why (one line)."""


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("brokercert")) / f"allure-{ALLURE_VERSION}"


def install_command(prefix: Path | str = "<dir>") -> list[str]:
    return [
        "npm",
        "install",
        "--prefix",
        str(prefix),
        f"allure@{ALLURE_VERSION}",
        "--no-audit",
        "--no-fund",
        "--save-exact",
    ]


def _cli_in(prefix: Path) -> tuple[Path, str] | None:
    """The CLI script and version of the allure package installed under ``prefix``."""
    pkg_dir = prefix / "node_modules" / "allure"
    try:
        meta = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    bin_field = meta.get("bin")
    rel = bin_field.get("allure") if isinstance(bin_field, dict) else bin_field
    cli = pkg_dir / rel if isinstance(rel, str) else prefix / "node_modules" / ".bin" / "allure"
    if not cli.is_file():
        return None
    return cli, str(meta.get("version", "?"))


def _install(dest: Path, npm: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        cmd = [npm, *install_command(tmp)[1:]]
        try:
            proc = subprocess.run(
                cmd,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RendererUnavailable(
                f"npm install allure@{ALLURE_VERSION} took over {INSTALL_TIMEOUT_S:.0f} s"
            ) from None
        except OSError as exc:
            raise RendererUnavailable(f"npm could not start: {exc.strerror}") from None
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if "ERR" in ln]
            why = lines[-1].strip() if lines else f"exit code {proc.returncode}"
            raise RendererUnavailable(f"npm install allure@{ALLURE_VERSION} failed: {why}")
        if _cli_in(tmp) is None:
            raise RendererUnavailable("npm install finished but node_modules/allure is missing")
        try:
            tmp.rename(dest)
        except OSError:
            if _cli_in(dest) is None:  # not a concurrent install that won the race
                raise RendererUnavailable(f"cannot move the Allure install to {dest}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def find_renderer(*, install: bool = True) -> Renderer:
    """The Allure 3 CLI to run; installs it into the cache on first use when ``install``."""
    node = shutil.which("node")
    if node is None:
        raise RendererUnavailable("node is not installed (Allure 3 needs Node.js 18 or later)")
    env_dir = os.environ.get(ENV_DIR)
    if env_dir:
        found = _cli_in(Path(env_dir).expanduser())
        if found is None:
            raise RendererUnavailable(
                f"${ENV_DIR}={env_dir} holds no node_modules/allure (run: "
                f"{' '.join(install_command(env_dir))})"
            )
        return Renderer(node, *found)
    dest = cache_dir()
    found = _cli_in(dest)
    if found is None:
        if not install:
            raise RendererUnavailable(f"Allure {ALLURE_VERSION} is not installed in {dest}")
        npm = shutil.which("npm")
        if npm is None:
            raise RendererUnavailable("npm is not installed, so Allure 3 cannot be installed")
        if dest.exists():  # a broken earlier install
            shutil.rmtree(dest, ignore_errors=True)
        _install(dest, npm)
        found = _cli_in(dest)
        if found is None:
            raise RendererUnavailable(f"Allure install in {dest} is unusable")
    return Renderer(node, *found)
