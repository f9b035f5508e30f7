"""Ed25519 keys and signatures for certification bundles (PyNaCl).

Key files are text. A private key file holds the 32-byte Ed25519 *seed*, written as
64 hex digits or as base64 (44 characters); blank lines and lines starting with ``#``
are ignored. ``brokercert keygen --out PATH`` writes one (mode 0600) and prints the
public key. A public key is the 32-byte Ed25519 verify key in the same two encodings,
given inline or as the path of a file holding it.

A signed bundle holds ``manifest.sig`` (base64 of the 64-byte signature over the exact
bytes of ``manifest.json``) and ``signer.pub`` (the public key, hex).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from brokercert.errors import UserError

KEY_BYTES = 32
SIG_BYTES = 64


def _decode(text: str, size: int = KEY_BYTES) -> bytes | None:
    """Bytes of a hex or base64 string of exactly ``size`` bytes, or None."""
    text = "".join(text.split())
    if len(text) == 2 * size:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def _key_text(raw: str) -> str:
    return "".join(
        line.strip()
        for line in raw.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def public_hex(key: VerifyKey) -> str:
    return bytes(key).hex()


def load_private_key(path: Path) -> SigningKey:
    """Read a private key file (32-byte seed as hex or base64); problems are UserErrors."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"signing key {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"signing key {path} cannot be read: {exc}") from None
    seed = _decode(_key_text(raw))
    if seed is None:
        raise UserError(
            f"signing key {path} is not a 32-byte Ed25519 seed in hex or base64 "
            "(make one with `brokercert keygen --out PATH`)"
        )
    return SigningKey(seed)


def parse_public_key(value: str) -> VerifyKey:
    """A public key given inline (hex or base64) or as the path of a file holding it."""
    text = value
    path = Path(value).expanduser()
    if _decode(_key_text(value)) is None and path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"public key file {path} cannot be read: {exc}") from None
    key = _decode(_key_text(text))
    if key is None:
        raise UserError(
            "public key must be a 32-byte Ed25519 key in hex or base64, or a file holding one"
        )
    return VerifyKey(key)


def write_private_key(path: Path, *, force: bool = False) -> str:
    """Create a new key file at ``path`` (mode 0600); return the public key in hex."""
    key = SigningKey.generate()
    text = (
        "# brokercert Ed25519 signing key: 32-byte seed, hex. Keep it secret.\n"
        f"{bytes(key).hex()}\n"
    )
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise UserError(f"{path} already exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)  # also when an existing file was overwritten
    return public_hex(key.verify_key)


def sign(data: bytes, key: SigningKey) -> str:
    """Base64 text of the detached signature of ``data``."""
    return base64.b64encode(key.sign(data).signature).decode("ascii")


def bundled_public_key(text: str) -> VerifyKey | None:
    """The key in a bundle's signer.pub, which must be exactly 64 lowercase hex + newline."""
    if re.fullmatch(r"[0-9a-f]{64}\n", text) is None:
        return None
    return VerifyKey(bytes.fromhex(text[:64]))


def bundled_signature(text: str) -> bytes | None:
    """The signature in manifest.sig, which must be exactly as :func:`sign` wrote it."""
    sig = _decode(text, SIG_BYTES)
    if sig is None or base64.b64encode(sig).decode("ascii") + "\n" != text:
        return None
    return sig


def signature_valid(data: bytes, signature: bytes, key: VerifyKey) -> bool:
    try:
        key.verify(data, signature)
    except BadSignatureError:
        return False
    return True
