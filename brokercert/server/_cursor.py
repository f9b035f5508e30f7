"""Opaque, tamper-evident page cursors for cursor-paginated lists.

A cursor names the position (the storage sequence number of the last item served)
and the direction of the walk, signed with an HMAC so that a cursor the server did
not issue is refused. Walking by sequence number is what makes a full walk see every
account exactly once while accounts are being created: new accounts get higher
numbers, so a newest-first walk never meets them and an oldest-first walk meets each
of them once, at the end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


class BadCursor(ValueError):
    """The cursor is not one this server issued."""


class Cursors:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"brokercert-cursor\0" + secret).digest()

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()[:16]

    def issue(self, seq: int, descending: bool) -> str:
        payload = json.dumps({"s": seq, "d": descending}, separators=(",", ":")).encode()
        token = payload + b"." + self._sign(payload).encode()
        return base64.urlsafe_b64encode(token).decode().rstrip("=")

    def read(self, cursor: str) -> tuple[int, bool]:
        """``(sequence number, descending)`` of a cursor this server issued."""
        try:
            token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, _, sig = token.rpartition(b".")
            if not hmac.compare_digest(sig, self._sign(payload).encode()):
                raise BadCursor("cursor was not issued by this server")
            data = json.loads(payload)
            seq, descending = data["s"], data["d"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise BadCursor("cursor is not valid") from None
        if not isinstance(seq, int) or not isinstance(descending, bool):
            raise BadCursor("cursor is not valid")
        return seq, descending
