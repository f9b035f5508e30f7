"""Small pieces both dialects use: ids, timestamps in queries, base64 documents."""

from __future__ import annotations

import binascii
import hashlib
import re
import uuid
from datetime import UTC, datetime

from brokercert.server._errors import ApiError
from brokercert.server._storage import rfc3339

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def new_id() -> str:
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def parse_moment(value: str) -> str:
    """An RFC 3339 timestamp or a YYYY-MM-DD date as the storage's sortable UTC string.

    A date means midnight UTC. Leap seconds and lower-case separators (both RFC 3339)
    are accepted; anything else raises ValueError.
    """
    text = value.strip().upper()
    if _DATE.match(text):
        moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    else:
        text = re.sub(r":60(?=[.Z+-]|$)", ":59", text)
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return rfc3339(moment)


def moment_param(value: str | None, name: str, status: int, code: str | None = None) -> str | None:
    if value is None:
        return None
    try:
        return parse_moment(value)
    except (ValueError, OverflowError):
        raise ApiError(status, f"{name} is not a timestamp or date", code=code,
                       field=name) from None


def decode_base64(content: str) -> tuple[int, str]:
    """``(decoded size, sha256 hex)`` of standard padded base64 text; ValueError if it is not.

    The decoded bytes are hashed and dropped at once: the caller keeps only the digest.
    """
    try:
        raw = binascii.a2b_base64(content, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError("content is not valid base64") from None
    return len(raw), hashlib.sha256(raw).hexdigest()


def decoded_size(content: str) -> int:
    """Size in bytes of the data a padded base64 text encodes, without decoding it."""
    padding = 2 if content.endswith("==") else 1 if content.endswith("=") else 0
    return len(content) // 4 * 3 - padding
