"""`brokercert verify` and `brokercert keygen`: check a certification bundle, make a signing key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from brokercert.cli._app import app
from brokercert.errors import ExitCode
from brokercert.report import verify_bundle
from brokercert.report._signing import write_private_key

_VERDICTS = {"conformant": "CONFORMANT", "not_conformant": "NOT CONFORMANT"}
_SIGNATURES = {
    "valid": "valid (checked with the given --public-key)",
    "valid-unpinned": "valid, with the key in signer.pub (pass --public-key to check who signed)",
    "unsigned": "none (the bundle is not signed)",
}


@app.command("verify")
def verify_command(
    bundle: Annotated[Path, typer.Argument(help="the bundle folder (holds manifest.json)")],
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help="the signer's Ed25519 public key (hex or base64) or a file holding it",
        ),
    ] = None,
) -> None:
    """Check a certification bundle: every file's SHA-256, and the signature when present.

    Exit 0 when intact (prints the certification verdict), 1 when anything was altered,
    added or removed (each file is named), 2 when the bundle or key cannot be read.
    """
    result = verify_bundle(bundle, public_key)
    for problem in result.problems:
        print(f"TAMPERED {problem}")
    if not result.intact:
        print(f"bundle {bundle}: TAMPERED ({len(result.problems)} problem(s)); do not trust it")
        raise typer.Exit(int(ExitCode.NOT_CONFORMANT))
    print(f"bundle {bundle}: intact, {result.files_checked} files match manifest.json")
    print(f"signature: {_SIGNATURES.get(result.signature, result.signature)}")
    if result.signer:
        print(f"signer: {result.signer}")
    verdict = _VERDICTS.get(result.verdict or "")
    if verdict is None:
        print("certification verdict: unknown (no readable certification.json in the bundle)")
    else:
        print(f"certification verdict: {verdict}")


@app.command("keygen")
def keygen_command(
    out: Annotated[Path, typer.Option("--out", help="where to write the private key file")],
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Create an Ed25519 signing key for bundles (file mode 0600) and print its public key.

    The file holds the 32-byte seed in hex; the public key is also written to OUT.pub.
    """
    public = write_private_key(out, force=force)
    pub_path = out.with_name(out.name + ".pub")
    pub_path.write_text(public + "\n", encoding="ascii")
    print(f"private key: {out} (keep it secret)")
    print(f"public key:  {public} (also in {pub_path})")
