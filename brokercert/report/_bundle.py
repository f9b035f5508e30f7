"""A certification bundle: the evidence of one run, in one folder a vendor can hand over.

Layout (every file listed with its SHA-256 in manifest.json)::

    certification.json  summary.md  junit*.xml
    allure-results/     allure-report/index.html (+ summary.json, test-results.json)
    manifest.json       manifest.sig + signer.pub   (only when signed)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from brokercert.errors import UserError
from brokercert.report._manifest import sign_bundle, write_bundle_manifest
from brokercert.report._signing import load_private_key

CERTIFICATION = "certification.json"
_FILES = ("certification.json", "summary.md")
_DIRS = ("allure-results", "allure-report")


def make_bundle(run_dir: Path, out_dir: Path, signing_key: Path | None = None) -> Path:
    """Copy a run's reports into ``out_dir``, write the manifest, sign it when a key is given.

    ``out_dir`` must not exist or be empty. ``out_dir == run_dir`` bundles the run folder
    in place (every file in it is then listed). Returns ``out_dir``.
    """
    if not (run_dir / CERTIFICATION).is_file():
        raise UserError(f"{run_dir} has no {CERTIFICATION}; run the suite before bundling")
    if signing_key is not None:
        load_private_key(signing_key)  # a bad key fails before anything is copied
    in_place = out_dir.resolve() == run_dir.resolve()
    if not in_place:
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise UserError(f"bundle folder {out_dir} already exists and is not empty")
        out_dir.mkdir(parents=True, exist_ok=True)
        names = [*_FILES, *sorted(p.name for p in run_dir.glob("junit*.xml"))]
        for name in names:
            src = run_dir / name
            if src.is_file():
                shutil.copyfile(src, out_dir / name)
        for name in _DIRS:
            src = run_dir / name
            if src.is_dir():
                # symlinks are copied as the files they point at; hidden work folders stay out
                shutil.copytree(src, out_dir / name, ignore=shutil.ignore_patterns(".*"))
    write_bundle_manifest(out_dir)
    if signing_key is not None:
        sign_bundle(out_dir, signing_key)
    return out_dir
