"""brokercert.report._manifest, ._signing, ._bundle: manifest, Ed25519 signature, verify."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from brokercert.errors import UserError
from brokercert.report import make_bundle, sign_bundle, verify_bundle, write_bundle_manifest
from brokercert.report._signing import load_private_key, parse_public_key, write_private_key

CERT = {"schema": "brokercert.certification/1", "verdict": "conformant", "results": []}


def _run_dir(root: Path) -> Path:
    run = root / "run"
    (run / "allure-results").mkdir(parents=True)
    (run / "allure-report").mkdir()
    (run / "certification.json").write_text(json.dumps(CERT, indent=2) + "\n")
    (run / "summary.md").write_text("# brokercert certification: ✅ CONFORMANT\n")
    (run / "junit-alpaca.xml").write_text("<testsuites><testsuite name='a'/></testsuites>\n")
    (run / "allure-results" / "abc-result.json").write_text('{"name": "t", "status": "passed"}')
    (run / "allure-results" / "abc-attachment.txt").write_text("request\n")
    (run / "allure-report" / "index.html").write_text("<!DOCTYPE html><p>report</p>\n")
    (run / "record-alpaca.json").write_text("{}")  # not part of a bundle
    (run / "allure-report" / ".allure-render-x").mkdir()  # a stray work folder: left out
    return run


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "signing.key"
    write_private_key(path)
    return path


@pytest.fixture
def bundle(tmp_path: Path, key_file: Path) -> Path:
    return make_bundle(_run_dir(tmp_path), tmp_path / "bundle", key_file)


def _public(key_file: Path) -> str:
    return bytes(load_private_key(key_file).verify_key).hex()


BUNDLE_FILES = [
    "allure-report/index.html",
    "allure-results/abc-attachment.txt",
    "allure-results/abc-result.json",
    "certification.json",
    "junit-alpaca.xml",
    "summary.md",
]


def test_make_bundle_layout_and_manifest(bundle: Path, key_file: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["schema"] == "brokercert.manifest/1"
    assert [f["path"] for f in manifest["files"]] == BUNDLE_FILES
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert (bundle / "signer.pub").read_text().strip() == _public(key_file)
    assert len(base64.b64decode((bundle / "manifest.sig").read_text())) == 64
    res = verify_bundle(bundle, _public(key_file))
    assert res.intact and res.signature == "valid" and res.verdict == "conformant"
    assert res.files_checked == len(BUNDLE_FILES)
    unpinned = verify_bundle(bundle)
    assert unpinned.intact and unpinned.signature == "valid-unpinned"


def _every_file(bundle: Path) -> list[Path]:
    return sorted(p for p in bundle.rglob("*") if p.is_file())


@pytest.mark.parametrize("signed", [True, False])
def test_changing_any_byte_of_any_file_is_caught_and_named(
    tmp_path: Path, key_file: Path, signed: bool
) -> None:
    bundle = make_bundle(_run_dir(tmp_path), tmp_path / "b", key_file if signed else None)
    pub = _public(key_file) if signed else None
    files = _every_file(bundle)
    assert {p.name for p in files} >= {"manifest.json", "summary.md"}
    assert ("manifest.sig" in {p.name for p in files}) is signed
    for path in files:
        original = path.read_bytes()
        rel = path.relative_to(bundle).as_posix()
        for offset in range(len(original)):  # every byte of every file
            data = bytearray(original)
            data[offset] ^= 0x01
            path.write_bytes(bytes(data))
            for key in {pub, None}:
                res = verify_bundle(bundle, key)
                assert not res.intact, (rel, offset, key)
                assert any(rel in p for p in res.problems), (rel, offset, res.problems)
        path.write_bytes(original)
    assert verify_bundle(bundle, pub).intact


def test_missing_extra_and_renamed_files_are_named(bundle: Path, key_file: Path) -> None:
    (bundle / "summary.md").unlink()
    (bundle / "allure-results" / "new.json").write_text("{}")
    (bundle / "junit-alpaca.xml").rename(bundle / "junit-other.xml")
    res = verify_bundle(bundle, _public(key_file))
    assert res.missing == ("junit-alpaca.xml", "summary.md")
    assert res.extra == ("allure-results/new.json", "junit-other.xml")
    assert res.signature == "valid"  # the manifest itself is untouched
    assert "summary.md: missing" in res.problems


def test_a_file_replaced_by_a_symlink_is_altered(bundle: Path) -> None:
    target = bundle.parent / "outside.md"
    target.write_bytes((bundle / "summary.md").read_bytes())
    (bundle / "summary.md").unlink()
    (bundle / "summary.md").symlink_to(target)
    res = verify_bundle(bundle)
    assert res.altered == ("summary.md",)


def test_signature_checks(bundle: Path, key_file: Path, tmp_path: Path) -> None:
    other = SigningKey.generate()
    other_hex = bytes(other.verify_key).hex()
    res = verify_bundle(bundle, other_hex)
    assert not res.intact and res.signature == "bad"
    assert any("signer.pub: does not match --public-key" in p for p in res.problems)
    # re-signed by someone else with their own signer.pub: only pinning catches it
    forged = tmp_path / "forged.key"
    forged.write_text(bytes(other).hex() + "\n")
    sign_bundle(bundle, forged)
    assert verify_bundle(bundle).intact
    assert not verify_bundle(bundle, _public(key_file)).intact
    # signature removed
    (bundle / "manifest.sig").unlink()
    res = verify_bundle(bundle)
    assert any(p.startswith("manifest.sig: missing") for p in res.problems)
    (bundle / "signer.pub").unlink()
    assert verify_bundle(bundle).intact  # now an unsigned bundle
    assert verify_bundle(bundle).signature == "unsigned"
    res = verify_bundle(bundle, _public(key_file))
    assert any("bundle not signed" in p for p in res.problems)


def test_unsigned_manifest_rewritten_drops_stale_signature(bundle: Path) -> None:
    (bundle / "extra.txt").write_text("added later\n")
    write_bundle_manifest(bundle)
    assert not (bundle / "manifest.sig").exists() and not (bundle / "signer.pub").exists()
    assert verify_bundle(bundle).intact


def test_unreadable_input_raises_user_error(tmp_path: Path, bundle: Path) -> None:
    with pytest.raises(UserError, match="not a folder"):
        verify_bundle(tmp_path / "nope")
    with pytest.raises(UserError, match=r"no manifest\.json"):
        verify_bundle(tmp_path)
    with pytest.raises(UserError, match="public key"):
        verify_bundle(bundle, "not-a-key")


def test_manifest_with_a_path_escaping_the_bundle_is_tampered(bundle: Path) -> None:
    (bundle / "manifest.sig").unlink()
    (bundle / "signer.pub").unlink()
    doc = json.loads((bundle / "manifest.json").read_text())
    doc["files"][0]["path"] = "../outside"
    (bundle / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    res = verify_bundle(bundle)
    assert res.problems[0] == "manifest.json: altered (bad path '../outside')"


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "k"
    public = write_private_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_private_key(path)
    assert bytes(key.verify_key).hex() == public
    with pytest.raises(UserError, match="already exists"):
        write_private_key(path)
    assert write_private_key(path, force=True) != public
    # the seed in base64 is accepted too, comments and blank lines ignored
    b64 = tmp_path / "b64"
    b64.write_text("# comment\n\n" + base64.b64encode(bytes(key)).decode() + "\n")
    assert bytes(load_private_key(b64)) == bytes(key)
    bad = tmp_path / "bad"
    bad.write_text("abc\n")
    with pytest.raises(UserError, match="32-byte Ed25519 seed"):
        load_private_key(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_private_key(tmp_path / "none")
    # public keys: hex, base64, or a file holding one
    pub_file = tmp_path / "k.pub"
    pub_file.write_text(public + "\n")
    b64_pub = base64.b64encode(bytes.fromhex(public)).decode()
    for value in (public, b64_pub, str(pub_file)):
        assert bytes(parse_public_key(value)).hex() == public


def test_make_bundle_refusals(tmp_path: Path, key_file: Path) -> None:
    run = _run_dir(tmp_path)
    with pytest.raises(UserError, match=r"no certification\.json"):
        make_bundle(tmp_path, tmp_path / "x")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "f").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        make_bundle(run, busy)
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("nope")
    with pytest.raises(UserError, match="signing key"):
        make_bundle(run, tmp_path / "y", bad_key)
    assert not (tmp_path / "y").exists()  # nothing copied with a bad key


def test_bundle_in_place(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    (run / "allure-report" / ".allure-render-x").rmdir()
    assert make_bundle(run, run) == run
    assert verify_bundle(run).intact
    paths = [f["path"] for f in json.loads((run / "manifest.json").read_text())["files"]]
    assert "record-alpaca.json" in paths  # in place, every file of the run is listed
