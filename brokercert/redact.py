"""Remove secrets and personal data from everything the suite writes.

Reports get handed to third parties (vendors, auditors), so no attachment, log
line or certification file may carry credentials, tax ids or document scans.
Every text that leaves the process goes through a :class:`Redactor` first.

What is removed:

- every configured secret literally (API key, secret, the HTTP Basic token of
  ``key:secret``, and their URL- and JSON-escaped spellings), plus secrets added
  during the run (e.g. the tax ids :mod:`brokercert.datagen` issues);
- the values of ``Authorization``, ``X-API-Key``, ``X-API-Secret`` (and cookie)
  headers, whether they appear in a raw HTTP dump, a curl command, JSON or a
  Python ``repr``;
- user-info in URLs (``https://user:pass@host``);
- tax ids: values of the JSON keys ``tax_id``, ``foreign_tax_id``, ``id_number``
  and ``ssn``, and SSN-shaped ``123-45-6789`` groups in free text;
- base64 blobs: the JSON key ``content`` and any run of 256 or more base64
  characters become ``<base64 N chars sha256=abcd1234…>``, which keeps evidence
  comparable (length and digest) while dropping the document itself.

Performance matters because an upload scenario's request is 32 MB of text: all
patterns are linear (no nested quantifiers; the long-run pattern only starts at a
run boundary), and secrets are removed with ``str.replace``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json as _json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["MIN_BLOB_CHARS", "REDACTED", "SENSITIVE_HEADERS", "TAX_ID_KEYS", "Redactor", "blob"]

REDACTED = "[redacted]"
MIN_BLOB_CHARS = 256
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-api-secret", "cookie", "set-cookie"}
)
TAX_ID_KEYS = frozenset({"tax_id", "foreign_tax_id", "id_number", "ssn"})
_CONTENT_KEY = "content"
_PREFILTER_FROM = 1 << 20
_REPLACE_UP_TO = 24
_TRIE_MAX_LEN = 200
_HEADER_HINTS = ("authorization", "x-api-", "cookie")

# Header values in raw HTTP ("Authorization: Basic x"), curl ("-H 'X-API-Key: x'"),
# JSON ('"X-API-Key": "x"') and Python reprs ("'authorization': 'x'"). The value runs
# to the end of the line or the closing quote.
_HEADER_RE = re.compile(
    r"(?P<name>\b(?:proxy-authorization|authorization|x-api-key|x-api-secret|set-cookie|cookie))"
    r"(?P<sep>[\"']?[ \t]*[:=][ \t]*[\"']?)"
    r"(?P<value>[^\r\n\"']*)",
    re.IGNORECASE,
)
# A JSON (or repr) string value: unrolled loop, linear.
_DQ_VALUE = r"\"[^\"\\]*(?:\\.[^\"\\]*)*\""
_SQ_VALUE = r"'[^'\\]*(?:\\.[^'\\]*)*'"
_TAX_KEY_RE = re.compile(
    r"(?P<key>([\"'])(?:" + "|".join(sorted(TAX_ID_KEYS)) + r")\2[ \t]*:[ \t]*)"
    r"(?P<value>" + _DQ_VALUE + "|" + _SQ_VALUE + r"|-?\d+)"
)
_CONTENT_RE = re.compile(
    r"(?P<key>\"content\"[ \t]*:[ \t]*)\"(?P<value>[^\"\\]*(?:\\.[^\"\\]*)*)\""
)
_SSN_RE = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
# Starts only where a base64 run starts, so each character is scanned once.
_LONG_B64_RE = re.compile(
    r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{" + str(MIN_BLOB_CHARS) + r",}={0,2}"
)
_URL_USERINFO_RE = re.compile(
    r"(?P<scheme>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@:\"']+:[^/\s@\"']*@"
)


def blob(value: str | bytes) -> str:
    """Describe a blob by length and digest prefix: ``<base64 N chars sha256=abcd1234…>``."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    digest = hashlib.sha256(data).hexdigest()[:8]
    return f"<base64 {len(value)} chars sha256={digest}…>"


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of ``words`` (longest at a position), shaped as a trie.

    Alternatives at each node start with distinct characters, so matching costs at
    most one step per character of the longest word, whatever the number of words.
    """
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


def _variants(secret: str) -> set[str]:
    """Spellings of one secret that can show up in a dump (raw, URL-encoded, JSON-escaped)."""
    out = {secret, quote(secret, safe=""), quote(secret, safe="/:"), _json.dumps(secret)[1:-1]}
    return {v for v in out if v}


class Redactor:
    """Redacts secrets, auth headers, tax ids and base64 blobs from text, headers and JSON.

    ``secrets`` are literal strings (API key, secret, ...). For every ordered pair of
    them the HTTP Basic token ``base64("a:b")`` is added, so a Basic header built from
    the key and secret is caught even outside a header. Thread-safe: :meth:`add` may be
    called while other threads redact.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._raw: list[str] = []
        self._needles: set[str] = set()
        self._replace: tuple[str, ...] = ()
        self._regex: re.Pattern[str] | None = None
        initial = [s for s in dict.fromkeys(secrets) if s]
        tokens: list[str] = []
        if len(initial) <= 8:  # Basic tokens for the key/secret pairs
            for a in initial:
                for b in initial:
                    if a != b:
                        token = base64.b64encode(f"{a}:{b}".encode()).decode("ascii")
                        tokens += [token, token.rstrip("=")]
        self.add(*initial)
        with self._lock:
            self._needles.update(tokens)
            self._compile()

    def add(self, *secrets: str) -> None:
        """Register more secrets (e.g. tax ids generated during the run)."""
        with self._lock:
            fresh = [s for s in secrets if s and s not in self._raw]
            if not fresh:
                return
            self._raw.extend(dict.fromkeys(fresh))
            for s in fresh:
                self._needles |= _variants(s)
            self._compile()

    def _compile(self) -> None:
        # Few needles: str.replace, longest first so a secret containing another goes
        # whole. Many (tax ids pile up during a run): one trie-shaped regex, one pass.
        ordered = tuple(sorted(self._needles, key=lambda n: (-len(n), n)))
        if len(ordered) <= _REPLACE_UP_TO:
            self._replace, self._regex = ordered, None
            return
        long_ones = tuple(n for n in ordered if len(n) > _TRIE_MAX_LEN)
        short = [n for n in ordered if len(n) <= _TRIE_MAX_LEN]
        self._replace, self._regex = long_ones, re.compile(_trie_pattern(short))

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._raw)

    # -- text -------------------------------------------------------------------------

    def text(self, value: str) -> str:
        """Redact a free-form text: curl command, raw HTTP exchange, JSON text, log line."""
        if not value:
            return value
        out = _CONTENT_RE.sub(self._content_sub, value)
        if len(out) >= MIN_BLOB_CHARS:
            out = _LONG_B64_RE.sub(lambda m: blob(m.group(0)), out)
        out = self._secrets(out)
        # Large texts skip the patterns that cannot match (one cheap lower-cased copy).
        low = out.lower() if len(out) > _PREFILTER_FROM else None
        if low is None or ("://" in low and "@" in low):
            out = _URL_USERINFO_RE.sub(lambda m: m.group("scheme") + REDACTED + "@", out)
        if low is None or any(name in low for name in _HEADER_HINTS):
            out = _HEADER_RE.sub(self._header_sub, out)
        if low is None or any(key in low for key in TAX_ID_KEYS):
            out = _TAX_KEY_RE.sub(self._tax_sub, out)
        return _SSN_RE.sub(REDACTED, out)

    def _secrets(self, value: str) -> str:
        replace, regex = self._replace, self._regex  # one consistent snapshot
        for needle in replace:
            value = value.replace(needle, REDACTED)
        if regex is not None:
            value = regex.sub(REDACTED, value)
        return value

    @staticmethod
    def _content_sub(match: re.Match[str]) -> str:
        raw = match.group("value")
        if not raw:
            return match.group(0)
        if "\\" in raw:
            with contextlib.suppress(ValueError):
                raw = _json.loads('"' + raw + '"')
        return f'{match.group("key")}"{blob(raw)}"'

    @staticmethod
    def _header_sub(match: re.Match[str]) -> str:
        value = match.group("value")
        if not value.strip() or value.strip() == REDACTED:
            return match.group(0)
        return f"{match.group('name')}{match.group('sep')}{REDACTED}"

    @staticmethod
    def _tax_sub(match: re.Match[str]) -> str:
        value = match.group("value")
        quote_char = value[0] if value[0] in "\"'" else '"'
        return f"{match.group('key')}{quote_char}{REDACTED}{quote_char}"

    # -- structured -------------------------------------------------------------------

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Copy of ``headers`` with auth and cookie values replaced, the rest redacted as text."""
        return {
            name: REDACTED if name.lower() in SENSITIVE_HEADERS else self.text(value)
            for name, value in headers.items()
        }

    def json(self, value: Any) -> Any:
        """Redacted deep copy of a decoded JSON value (dicts, lists, scalars)."""
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                lowered = key.lower() if isinstance(key, str) else key
                if lowered in TAX_ID_KEYS or lowered in SENSITIVE_HEADERS:
                    out[key] = REDACTED if item not in (None, "") else item
                elif lowered == _CONTENT_KEY and isinstance(item, str) and item:
                    out[key] = blob(item)
                else:
                    out[key] = self.json(item)
            return out
        if isinstance(value, list | tuple):
            return [self.json(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value
