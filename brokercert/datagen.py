"""Test data per dialect: valid bodies the spec accepts, invalid variants, large uploads.

Why it looks like this:

- Runs hit shared sandboxes, so every value that could collide or look real is
  run-scoped and synthetic: emails ``bc-<run>-<n>@example.com`` (a reserved domain,
  and the run id makes a run's accounts findable through the list ``query``),
  SSNs in the 900-999 area (never issued to people), phone numbers in 555-01xx,
  IP addresses from the documentation range 192.0.2.0/24.
- Sandbox triggers are never hit by accident: a buildmarkets tax id ends in
  0001/0002/0003 only when a test asks for that outcome (:meth:`RunData.tax_id`,
  :meth:`RunData.status_overrides`); the trigger values come from the profile.
- Invalid variants are made from a valid body with :func:`without` and
  :func:`with_value`, so each negative test breaks exactly one thing.
- The limit scenarios send 10-34 MB bodies: :func:`base64_text`,
  :func:`base64_of_decoded` and :func:`upload_body_bytes` build them by repeating
  one precomputed block, with a single allocation of the final text or bytes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from brokercert import catalog
from brokercert.catalog import Limit, SandboxTrigger

__all__ = [
    "DIALECTS",
    "MISSING",
    "RunData",
    "base64_of_decoded",
    "base64_text",
    "get",
    "limit_upload_bytes",
    "upload_body_bytes",
    "with_value",
    "without",
]

DIALECTS: Final = ("alpaca", "buildmarkets")
EMAIL_DOMAIN: Final = "example.com"


class _Missing:
    """Sentinel: as an override value, removes the key."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


# -- dotted / indexed paths -----------------------------------------------------------

_SEGMENT_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]|(\.)")


def _parse(path: str) -> list[str | int]:
    """``"agreements[0].signed_at"`` -> ``["agreements", 0, "signed_at"]``."""
    parts: list[str | int] = []
    pos = 0
    for match in _SEGMENT_RE.finditer(path):
        if match.start() != pos:
            break
        pos = match.end()
        if match.group(1) is not None:
            parts.append(match.group(1))
        elif match.group(2) is not None:
            parts.append(int(match.group(2)))
    if pos != len(path) or not parts or path.startswith(".") or ".." in path or path.endswith("."):
        raise ValueError(f"bad path {path!r}: use dotted keys and [index], e.g. agreements[0].ip")
    return parts


def _walk(
    doc: Any, parts: list[str | int], path: str, *, create: bool, then: str | int | None = None
) -> Any:
    """Follow ``parts``; with ``create``, missing keys become {} (or [] before an index)."""
    node = doc
    for i, part in enumerate(parts):
        nxt = parts[i + 1] if i + 1 < len(parts) else then
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise KeyError(f"{path}: no item [{part}]")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise KeyError(f"{path}: {part!r} is not under an object")
            if part not in node:
                if not create:
                    raise KeyError(f"{path}: no key {part!r}")
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
    return node


def get(doc: Any, path: str) -> Any:
    """The value at a dotted/indexed path (KeyError when absent)."""
    parts = _parse(path)
    return _walk(doc, parts, path, create=False)


def _set(doc: Any, path: str, value: Any) -> None:
    parts = _parse(path)
    parent = _walk(doc, parts[:-1], path, create=value is not MISSING, then=parts[-1])
    last = parts[-1]
    if value is MISSING:
        try:
            del parent[last]
        except (KeyError, IndexError, TypeError):
            raise KeyError(f"{path}: nothing to remove") from None
    elif isinstance(last, int):
        if not isinstance(parent, list) or last > len(parent):
            raise KeyError(f"{path}: no item [{last}]")
        if last == len(parent):
            parent.append(value)
        else:
            parent[last] = value
    else:
        if not isinstance(parent, dict):
            raise KeyError(f"{path}: {last!r} is not under an object")
        parent[last] = value


def without(body: Any, path: str) -> Any:
    """Deep copy of ``body`` with the member at ``path`` removed (KeyError if absent)."""
    out = copy.deepcopy(body)
    _set(out, path, MISSING)
    return out


def with_value(body: Any, path: str, value: Any) -> Any:
    """Deep copy of ``body`` with ``path`` set to ``value`` (intermediate objects created)."""
    out = copy.deepcopy(body)
    _set(out, path, value)
    return out


def _apply(body: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides are dotted paths; ``__`` also separates keys so they work as kwargs."""
    for key, value in overrides.items():
        _set(body, key.replace("__", "."), value)
    return body


# -- base64 without copies ------------------------------------------------------------

# 3072 bytes -> 4096 base64 characters with no padding, so any multiple of 4 characters
# cut from a repetition of the block is itself valid base64. It starts like a PDF so
# servers that sniff magic bytes see the declared type.
_BLOCK_BYTES = (b"%PDF-1.4\n%brokercert synthetic document\n" + bytes(range(256)) * 12)[:3072]
_BLOCK = base64.b64encode(_BLOCK_BYTES).decode("ascii")
_BLOCK_B = _BLOCK.encode("ascii")
_TAILS = {n: base64.b64encode(_BLOCK_BYTES[:n]).decode("ascii") for n in (1, 2)}


def _pieces(n_chars: int) -> list[str]:
    """Valid base64 of exactly ``n_chars`` (a multiple of 4), as references to one block."""
    if n_chars < 0 or n_chars % 4:
        raise ValueError(f"base64 text length must be a non-negative multiple of 4, got {n_chars}")
    full, rest = divmod(n_chars, len(_BLOCK))
    pieces = [_BLOCK] * full
    if rest:
        pieces.append(_BLOCK[:rest])
    return pieces


def _decoded_pieces(n_bytes: int) -> list[str]:
    if n_bytes < 0:
        raise ValueError(f"decoded size must be non-negative, got {n_bytes}")
    whole, rest = divmod(n_bytes, 3)
    pieces = _pieces(whole * 4)
    if rest:
        pieces.append(_TAILS[rest])
    return pieces


def base64_text(n_chars: int) -> str:
    """Valid padded base64 of exactly ``n_chars`` characters (``n_chars % 4 == 0``)."""
    return "".join(_pieces(n_chars))


def base64_of_decoded(n_bytes: int) -> str:
    """Base64 text that decodes to exactly ``n_bytes`` bytes."""
    return "".join(_decoded_pieces(n_bytes))


def _body_bytes(envelope: Any, pieces: list[str]) -> bytes:
    """JSON of ``envelope`` with its ``__CONTENT__`` placeholder replaced by ``pieces``."""
    marker = "__BROKERCERT_CONTENT__"
    text = json.dumps(envelope, separators=(",", ":"))
    head, tail = text.split(json.dumps(marker), 1)
    chunks: list[bytes] = [head.encode(), b'"']
    for piece in pieces:
        chunks.append(_BLOCK_B if piece is _BLOCK else piece.encode("ascii"))
    chunks += [b'"', tail.encode()]
    return b"".join(chunks)  # the only allocation of the full size


def upload_body_bytes(
    dialect: str,
    *,
    encoded_chars: int | None = None,
    decoded_bytes: int | None = None,
    document_type: str = "identity_verification",
    mime_type: str = "application/pdf",
) -> bytes:
    """The complete upload request body (JSON bytes) carrying one document of a given size.

    Give the size either as base64 characters (``encoded_chars``, a multiple of 4) or
    as decoded bytes. alpaca wraps the document in a JSON array, buildmarkets sends it
    alone. Send it with ``content=`` and ``Content-Type: application/json``.
    """
    if (encoded_chars is None) == (decoded_bytes is None):
        raise ValueError("give exactly one of encoded_chars or decoded_bytes")
    pieces = (
        _pieces(encoded_chars) if encoded_chars is not None else _decoded_pieces(decoded_bytes or 0)
    )
    document = {
        "document_type": document_type,
        "document_sub_type": "passport",
        "content": "__BROKERCERT_CONTENT__",
        "mime_type": mime_type,
    }
    _check_dialect(dialect)
    envelope: Any = [document] if dialect == "alpaca" else document
    return _body_bytes(envelope, pieces)


def limit_upload_bytes(dialect: str, limit: Limit, *, accept: bool) -> bytes:
    """Upload body at a profile limit's ``accept_at`` or ``reject_at`` boundary."""
    size = limit.accept_at if accept else limit.reject_at
    if limit.measured == "encoded":
        return upload_body_bytes(dialect, encoded_chars=size)
    if limit.measured == "decoded":
        return upload_body_bytes(dialect, decoded_bytes=size)
    raise ValueError(f"limit {limit.name} counts items; build the list with RunData.document")


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ValueError(f"no test data for dialect {dialect!r}; known: {', '.join(DIALECTS)}")


# -- run-scoped values ----------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class RunData:
    """Unique, synthetic, run-scoped values and bodies for one run.

    Thread-safe. ``on_sensitive`` is called with every tax id this object issues, so
    the run's redactor can add them (``RunData(run_id, on_sensitive=redactor.add)``).
    """

    def __init__(self, run_id: str, *, on_sensitive: Callable[[str], object] | None = None) -> None:
        tag = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-")
        if not tag:
            raise ValueError(f"run id {run_id!r} has no letters or digits")
        self.run_id = run_id
        self.tag = tag[:40]
        self._on_sensitive = on_sensitive
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        # spread runs over the tax id space so two runs rarely share ids
        self._seed = int(hashlib.sha256(run_id.encode()).hexdigest(), 16)

    def next(self) -> int:
        """A run-unique positive integer."""
        with self._lock:
            return next(self._counter)

    @property
    def email_prefix(self) -> str:
        """Every email of this run starts with it (find the run's accounts with it)."""
        return f"bc-{self.tag}-"

    def email(self) -> str:
        return f"{self.email_prefix}{self.next()}@{EMAIL_DOMAIN}"

    def _issue(self, value: str) -> str:
        if self._on_sensitive is not None:
            self._on_sensitive(value)
        return value

    def _digits(self, n: int, count: int) -> int:
        return int((self._seed + n * 7919) % (10**count))

    def tax_id(self, dialect: str = "buildmarkets", trigger: str | None = None) -> str:
        """A synthetic, run-unique tax id.

        alpaca: an SSN ``9xx-xx-xxxx``. buildmarkets: 9 digits starting with 9 that
        never end in a sandbox trigger suffix, unless ``trigger`` names one of the
        profile's triggers ("approve", "reject", "manual_review"), whose suffix it then
        carries.
        """
        _check_dialect(dialect)
        n = self.next()
        suffixes = _tax_suffixes(dialect)
        if trigger is not None:
            if trigger not in suffixes:
                known = ", ".join(sorted(suffixes)) or "none"
                raise ValueError(f"{dialect} has no tax id trigger {trigger!r}; known: {known}")
            suffix = suffixes[trigger]
            head = f"9{self._digits(n, 8 - len(suffix)):0{8 - len(suffix)}d}"
            return self._issue(head + suffix)
        avoid = set(suffixes.values()) | {"0000"}
        body = f"{self._digits(n, 8):08d}"
        while body[4:] in avoid or body[2:4] == "00":  # no trigger, no SSN-invalid groups
            body = f"{(int(body) + 10_007) % 10**8:08d}"
        digits = "9" + body
        if dialect == "alpaca":
            return self._issue(f"{digits[:3]}-{digits[3:5]}-{digits[5:]}")
        return self._issue(digits)

    def status_overrides(self, dialect: str, status: str) -> dict[str, Any]:
        """Create-body overrides that make a sandbox put the account in ``status``.

        Built from the profile's triggers: alpaca's ``additional_information`` fixture
        template, buildmarkets' tax id suffixes. ValueError when no trigger reaches it.
        """
        for trig in _triggers(dialect):
            if trig.match == "template" and status in trig.statuses:
                return {trig.field: trig.value.format(status=status)}
            if trig.reaches == status:
                if trig.match == "exact":
                    return {trig.field: trig.value}
                if trig.field == "identity.tax_id":
                    return {trig.field: self.tax_id(dialect, trigger=trig.name)}
        raise ValueError(f"no sandbox trigger of {dialect} reaches status {status!r}")

    # -- bodies ----------------------------------------------------------------------

    def create_body(self, dialect: str, **overrides: Any) -> dict[str, Any]:
        """A complete, valid create-account body, fresh email and tax id each call.

        ``overrides`` are dotted paths (``**{"contact.city": "Boston"}``) or the same
        with ``__`` (``contact__city="Boston"``); the value :data:`MISSING` removes.
        """
        _check_dialect(dialect)
        body = self._alpaca_create() if dialect == "alpaca" else self._buildmarkets_create()
        return _apply(body, overrides)

    def _agreement(self, name: str) -> dict[str, str]:
        return {"agreement": name, "signed_at": _now(), "ip_address": "192.0.2.10"}

    def _alpaca_create(self) -> dict[str, Any]:
        return {
            "contact": {
                "email_address": self.email(),
                "phone_number": "+15555550100",
                "street_address": ["20 N San Mateo Dr"],
                "unit": "4",
                "city": "San Mateo",
                "state": "CA",
                "postal_code": "94401",
                "country": "USA",
            },
            "identity": {
                "given_name": "Ada",
                "family_name": "Testperson",
                "date_of_birth": "1990-01-15",
                "tax_id": self.tax_id("alpaca"),
                "tax_id_type": "USA_SSN",
                "country_of_citizenship": "USA",
                "country_of_birth": "USA",
                "country_of_tax_residence": "USA",
                "funding_source": ["employment_income"],
            },
            "disclosures": {
                "is_control_person": False,
                "is_affiliated_exchange_or_finra": False,
                "is_politically_exposed": False,
                "immediate_family_exposed": False,
                "employment_status": "EMPLOYED",
                "employer_name": "Example Corp",
                "employer_address": "1 Example Way, San Mateo, CA",
                "employment_position": "Engineer",
            },
            "agreements": [
                self._agreement("customer_agreement"),
                self._agreement("account_agreement"),
                self._agreement("margin_agreement"),
            ],
            "enabled_assets": ["us_equity"],
        }

    def _buildmarkets_create(self) -> dict[str, Any]:
        return {
            "account_type": "individual",
            "contact": {
                "email_address": self.email(),
                "phone_number": "+15125550100",
                "street_address": ["100 Congress Ave"],
                "city": "Austin",
                "state": "TX",
                "postal_code": "78701",
                "country": "US",
            },
            "identity": {
                "given_name": "Ada",
                "family_name": "Testperson",
                "date_of_birth": "1990-01-15",
                "tax_id": self.tax_id("buildmarkets"),
                "tax_id_type": "US_SSN",
                "country_of_citizenship": "US",
                "country_of_tax_residence": "US",
                "funding_source": ["employment_income"],
            },
            "disclosures": {
                "is_control_person": False,
                "is_affiliated_exchange_or_finra": False,
                "is_politically_exposed": False,
                "immediate_family_exposed": False,
            },
            "agreements": [self._agreement("customer_agreement")],
            "investment_profile": {
                "risk_tolerance": "moderate",
                "investment_objective": "growth",
                "annual_income_range": "50000_to_100000",
                "net_worth_range": "100000_to_250000",
                "liquid_net_worth_range": "50000_to_100000",
            },
        }

    def update_body(self, dialect: str, **overrides: Any) -> dict[str, Any]:
        """A valid PATCH body that changes only modifiable contact fields."""
        _check_dialect(dialect)
        body: dict[str, Any] = {"contact": {"phone_number": "+15555550199", "city": "Denver"}}
        return _apply(body, overrides)

    def document(
        self,
        dialect: str,
        document_type: str = "identity_verification",
        *,
        content: str | None = None,
        n_bytes: int = 1024,
        mime_type: str | None = None,
        sub_type: str | None = "passport",
        **overrides: Any,
    ) -> dict[str, Any]:
        """One upload document: base64 ``content`` of ``n_bytes`` (or as given).

        ``w8ben`` gives form data in ``content_data`` instead (alpaca: mime type
        application/json). Overrides as in :meth:`create_body`.
        """
        _check_dialect(dialect)
        doc: dict[str, Any] = {"document_type": document_type}
        if sub_type is not None:
            doc["document_sub_type"] = sub_type
        if document_type == "w8ben" and content is None:
            doc["content_data"] = self._w8ben()
            if dialect == "alpaca":
                doc["mime_type"] = mime_type or "application/json"
            elif mime_type is not None:
                doc["mime_type"] = mime_type
        else:
            doc["content"] = base64_of_decoded(n_bytes) if content is None else content
            doc["mime_type"] = mime_type or "application/pdf"
        return _apply(doc, overrides)

    def _w8ben(self) -> dict[str, str]:
        foreign = self._issue(f"X{self._digits(self.next(), 9):09d}")
        return {
            "name": "Ada Testperson",
            "country_of_citizenship": "DE",
            "permanent_address": "1 Beispielweg, Berlin",
            "mailing_address": "1 Beispielweg, Berlin",
            "date_of_birth": "1990-01-15",
            "foreign_tax_id": foreign,
            "treaty_country": "DE",
            "treaty_article": "10",
            "withholding_rate": "15",
            "income_type": "dividends",
            "signature_date": datetime.now(UTC).date().isoformat(),
        }

    def upload_body(self, dialect: str, *documents: dict[str, Any]) -> Any:
        """alpaca: a JSON array of the documents (one default document if none);
        buildmarkets: the single document."""
        _check_dialect(dialect)
        docs = list(documents) or [self.document(dialect)]
        if dialect == "alpaca":
            return docs
        if len(docs) != 1:
            raise ValueError("buildmarkets uploads exactly one document per request")
        return docs[0]

    def cip_body(self, **overrides: Any) -> dict[str, Any]:
        """A valid alpaca CIPInfo: every check present, clear and complete."""
        now = _now()

        def check(**extra: Any) -> dict[str, Any]:
            return {
                "id": str(uuid.uuid4()), "result": "clear", "status": "complete",
                "created_at": now, **extra,
            }

        body: dict[str, Any] = {
            "provider_name": ["onfido"],
            "kyc": {
                "id": str(uuid.uuid4()),
                "risk_score": 1,
                "risk_level": "LOW",
                "risk_categories": ["geography"],
                "applicant_name": "Ada Testperson",
                "email_address": self.email(),
                "nationality": "American",
                "date_of_birth": "1990-01-15",
                "address": "20 N San Mateo Dr, San Mateo, CA 94401",
                "postal_code": "94401",
                "country_of_residency": "US",
                "kyc_completed_at": now,
                "ip_address": "192.0.2.10",
                "check_initiated_at": now,
                "check_completed_at": now,
                "approval_status": "approved",
                "approved_by": "brokercert",
                "approved_at": now,
                "approved_reason": "synthetic test applicant",
            },
            "document": check(
                date_of_birth="1990-01-15", first_name="Ada", last_name="Testperson",
                document_type="passport", issuing_country="USA", nationality="USA",
            ),
            "photo": check(face_comparison="clear"),
            "identity": check(matched_address="clear", date_of_birth="clear"),
            "watchlist": check(politically_exposed_person="clear", sanction="clear"),
        }
        return _apply(body, overrides)


# -- profile lookups ------------------------------------------------------------------


def _triggers(dialect: str) -> tuple[SandboxTrigger, ...]:
    _check_dialect(dialect)
    return catalog.load(dialect).profile.state_machine.triggers


def _tax_suffixes(dialect: str) -> dict[str, str]:
    """Trigger name -> tax id suffix, from the dialect's profile."""
    return {
        t.name: t.value
        for t in _triggers(dialect)
        if t.field == "identity.tax_id" and t.match == "suffix"
    }
