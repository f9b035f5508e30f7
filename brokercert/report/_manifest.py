"""The bundle manifest (SHA-256 of every file), its signature, and verification.

``manifest.json`` (schema ``brokercert.manifest/1``) lists every regular file of the
bundle by relative POSIX path, sorted, with its size and SHA-256; it leaves out itself,
``manifest.sig`` and ``signer.pub``. It is written in one canonical form, and verify
rejects any other byte sequence, so even an edit that keeps the JSON meaning (say, a
space turned into a tab) is caught when the bundle is not signed.

Verification names every missing, extra or altered file and a bad signature.
Problems a user cannot be blamed for as tampering (no such folder, no manifest.json,
an unreadable --public-key) raise UserError, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nacl.signing import VerifyKey

from brokercert.errors import UserError
from brokercert.report._signing import (
    bundled_public_key,
    bundled_signature,
    load_private_key,
    parse_public_key,
    public_hex,
    sign,
    signature_valid,
)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SIGNER = "signer.pub"
RESERVED = frozenset({MANIFEST, SIGNATURE, SIGNER})
MANIFEST_SCHEMA = "brokercert.manifest/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(bundle_dir: Path) -> tuple[list[str], list[str]]:
    """(regular files, other entries such as symlinks) as sorted relative POSIX paths."""
    files, odd = [], []
    for path in bundle_dir.rglob("*"):
        rel = path.relative_to(bundle_dir).as_posix()
        if rel in RESERVED:
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            odd.append(rel)
        elif path.is_file():
            files.append(rel)
    return sorted(files), sorted(odd)


def _dumps(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_bundle_manifest(bundle_dir: Path) -> Path:
    """Write ``bundle_dir/manifest.json``; drops a stale signature (it would not verify)."""
    if not bundle_dir.is_dir():
        raise UserError(f"bundle folder {bundle_dir} does not exist")
    files, odd = _walk(bundle_dir)
    if odd:
        raise UserError(f"bundle {bundle_dir} holds {odd[0]}, which is not a regular file")
    doc = {
        "schema": MANIFEST_SCHEMA,
        "algorithm": "sha256",
        "files": [
            {
                "path": rel,
                "size": (bundle_dir / rel).stat().st_size,
                "sha256": _sha256(bundle_dir / rel),
            }
            for rel in files
        ],
    }
    for name in (SIGNATURE, SIGNER):
        (bundle_dir / name).unlink(missing_ok=True)
    out = bundle_dir / MANIFEST
    out.write_bytes(_dumps(doc))
    return out


def sign_bundle(bundle_dir: Path, private_key_path: Path) -> Path:
    """Sign ``manifest.json`` (written first if absent): writes manifest.sig and signer.pub."""
    key = load_private_key(private_key_path)
    manifest = bundle_dir / MANIFEST
    if not manifest.is_file():
        write_bundle_manifest(bundle_dir)
    sig_path = bundle_dir / SIGNATURE
    sig_path.write_text(sign(manifest.read_bytes(), key) + "\n", encoding="ascii")
    (bundle_dir / SIGNER).write_text(public_hex(key.verify_key) + "\n", encoding="ascii")
    return sig_path


@dataclass(frozen=True)
class VerifyResult:
    """What verify found. ``problems`` has one line per finding, each naming its file."""

    bundle: Path
    files_checked: int
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    altered: tuple[str, ...]
    signature: str  # valid | valid-unpinned | unsigned | bad
    signer: str | None  # public key (hex) the signature was checked with
    problems: tuple[str, ...]
    verdict: str | None  # overall verdict in certification.json, when readable

    @property
    def intact(self) -> bool:
        return not self.problems


def _parse_manifest(raw: bytes) -> dict[str, tuple[int, str]] | str:
    """path -> (size, sha256), or a reason the manifest is not valid."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "not valid JSON"
    if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA:
        return f"not a {MANIFEST_SCHEMA} document"
    if doc.get("algorithm") != "sha256" or set(doc) != {"schema", "algorithm", "files"}:
        return "unexpected algorithm or fields"
    entries = doc.get("files")
    if not isinstance(entries, list):
        return "'files' is not a list"
    out: dict[str, tuple[int, str]] = {}
    for item in entries:
        ok = (
            isinstance(item, dict)
            and set(item) == {"path", "size", "sha256"}
            and isinstance(item["path"], str)
            and type(item["size"]) is int
            and isinstance(item["sha256"], str)
            and _HEX64.match(item["sha256"]) is not None
        )
        if not ok:
            return "a file entry is malformed"
        rel = item["path"]
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or "\\" in rel or rel in out or rel in RESERVED:
            return f"bad path {rel!r}"
        out[rel] = (item["size"], item["sha256"])
    if _dumps(doc) != raw or list(out) != sorted(out):
        return "not in canonical form (edited by hand?)"
    return out


def _certification_verdict(bundle_dir: Path) -> str | None:
    try:
        doc = json.loads((bundle_dir / "certification.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    verdict = doc.get("verdict") if isinstance(doc, dict) else None
    return verdict if isinstance(verdict, str) else None


def _check_signature(
    bundle_dir: Path, manifest_raw: bytes, pinned: VerifyKey | None, problems: list[str]
) -> tuple[str, str | None]:
    sig_path, signer_path = bundle_dir / SIGNATURE, bundle_dir / SIGNER
    if not sig_path.is_file():
        if pinned is not None:
            problems.append(f"{SIGNATURE}: missing, but --public-key was given (bundle not signed)")
            return "bad", public_hex(pinned)
        if signer_path.exists():
            problems.append(f"{SIGNATURE}: missing while {SIGNER} is present (signature removed?)")
            return "bad", None
        return "unsigned", None
    key = pinned
    if signer_path.is_file():
        try:
            bundled = bundled_public_key(signer_path.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError):
            bundled = None
        if bundled is None:
            problems.append(f"{SIGNER}: altered (not a hex Ed25519 public key)")
        if pinned is not None and bundled is not None and bytes(bundled) != bytes(pinned):
            problems.append(f"{SIGNER}: does not match --public-key (signed by another key?)")
        if key is None:
            key = bundled
    elif pinned is None:
        problems.append(f"{SIGNER}: missing; cannot check {SIGNATURE} (or pass --public-key)")
    if key is None:
        return "bad", None
    try:
        sig_text = sig_path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        sig_text = ""
    sig = bundled_signature(sig_text)
    if sig is None:
        problems.append(f"{SIGNATURE}: altered (not a base64 Ed25519 signature)")
        return "bad", public_hex(key)
    if not signature_valid(manifest_raw, sig, key):
        who = "--public-key" if pinned is not None else SIGNER
        problems.append(
            f"signature: does not verify with {who}: {MANIFEST} or {SIGNATURE}"
            + ("" if pinned is not None else f" or {SIGNER}")
            + " was altered"
        )
        return "bad", public_hex(key)
    if any(p.startswith(SIGNER) for p in problems):
        return "bad", public_hex(key)
    return ("valid" if pinned is not None else "valid-unpinned"), public_hex(key)


def verify_bundle(bundle_dir: Path, public_key: str | None = None) -> VerifyResult:
    """Check every digest (and the signature when present, or when ``public_key`` is given)."""
    if not bundle_dir.is_dir():
        raise UserError(f"{bundle_dir} is not a folder; expected a certification bundle")
    manifest_path = bundle_dir / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"{bundle_dir} has no {MANIFEST}; not a brokercert bundle")
    pinned = parse_public_key(public_key) if public_key is not None else None
    try:
        raw = manifest_path.read_bytes()
    except OSError as exc:
        raise UserError(f"{manifest_path} cannot be read: {exc.strerror}") from None
    problems: list[str] = []
    signature, signer = _check_signature(bundle_dir, raw, pinned, problems)
    parsed = _parse_manifest(raw)
    files, odd = _walk(bundle_dir)
    missing: list[str] = []
    extra: list[str] = []
    altered: list[str] = []
    if isinstance(parsed, str):
        problems.insert(0, f"{MANIFEST}: altered ({parsed})")
        expected: dict[str, tuple[int, str]] = {}
    else:
        expected = parsed
        present = set(files)
        for rel, (size, digest) in expected.items():
            path = bundle_dir / rel
            if rel in odd:
                altered.append(rel)
                problems.append(f"{rel}: altered (no longer a regular file)")
            elif rel not in present:
                missing.append(rel)
                problems.append(f"{rel}: missing")
            elif path.stat().st_size != size or _sha256(path) != digest:
                altered.append(rel)
                problems.append(f"{rel}: altered (SHA-256 differs from {MANIFEST})")
        for rel in [*files, *odd]:
            if rel not in expected:
                extra.append(rel)
                problems.append(f"{rel}: extra (not in {MANIFEST})")
    return VerifyResult(
        bundle=bundle_dir,
        files_checked=len(expected),
        missing=tuple(missing),
        extra=tuple(sorted(extra)),
        altered=tuple(altered),
        signature=signature,
        signer=signer,
        problems=tuple(problems),
        verdict=_certification_verdict(bundle_dir),
    )
