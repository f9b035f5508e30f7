"""Schemathesis, configured for a conformance verdict.

Each Schemathesis check the conformance stage runs maps to one requirement, so a
finding becomes a failed requirement instead of a bare check name. The checks that
do not fit a verdict (``use_after_free``: alpaca keeps closed accounts readable by
design; ``unsupported_method`` and friends: no dialect documents them) are off.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import schemathesis
from platformdirs import user_cache_dir
from schemathesis.core.failures import Failure, FailureGroup
from urllib3 import BaseHTTPResponse
from urllib3.util.retry import Retry

from brokercert.catalog import Catalog, Profile
from brokercert.depth import Depth
from brokercert.target import Target, retry_delay

# Schemathesis check name -> requirement it verifies (dialect-neutral).
CHECK_REQUIREMENTS: dict[str, str] = {
    "not_a_server_error": "GEN-SRV-001",
    "status_code_conformance": "GEN-SCHEMA-001",
    "content_type_conformance": "GEN-SCHEMA-002",
    "response_schema_conformance": "GEN-SCHEMA-003",
    "response_headers_conformance": "GEN-SCHEMA-004",
    "positive_data_acceptance": "GEN-SCHEMA-005",
    "negative_data_rejection": "GEN-ERR-001",
    "ignored_auth": "GEN-AUTH-001",
    "ensure_resource_availability": "GEN-STATE-001",
}

# Our own check: every 4xx body uses the dialect's error envelope.
ENVELOPE_CHECK = "error_envelope_conformance"
ENVELOPE_REQUIREMENTS: dict[str, str] = {
    "alpaca": "ALP-ERR-001",
    "buildmarkets": "BM-ERR-001",
}

# Schemathesis' CLI confirms once per operation and run that an operation refuses a
# request without credentials; its check called from pytest has no memory and sends the
# two probes again after every 2xx answer (a third of all requests at standard depth).
# Our wrapper gives it that memory; its failures still name ``ignored_auth``.
AUTH_ONCE_CHECK = "ignored_auth_once_per_operation"
ENABLED_CHECKS = [
    AUTH_ONCE_CHECK if name == "ignored_auth" else name for name in CHECK_REQUIREMENTS
] + [ENVELOPE_CHECK]

# Business rules the schema cannot express make some schema-valid requests fail
# legitimately: conditional agreements and duplicate emails on create, content vs
# content_data on upload, cursors the server never issued and page sizes over the
# documented maximum on list. Positive-data acceptance is judged on the other operations.
# PATCH joins them: a schema-valid change of email to one another account uses is refused.
POSITIVE_DATA_EXEMPT = {"create_account", "upload_documents", "list_accounts", "update_account"}


def positive_data_exempt_labels(profile: Profile) -> set[str]:
    """'METHOD /path' labels of the operations exempt from positive-data acceptance."""
    return {
        profile.operation(name).key for name in POSITIVE_DATA_EXEMPT if name in profile.operations
    }


class ErrorEnvelopeMismatch(Failure):
    """A 4xx response whose body is not the dialect's documented error envelope."""

    code: ClassVar[str] = "BC101"
    checks: ClassVar[tuple[str, ...]] = (ENVELOPE_CHECK,)
    kind_title: ClassVar[str] = "Error body does not use the dialect's envelope"


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


_MISSING = object()


def envelope_problem(profile: Profile, status: int, body: bytes) -> str | None:
    """Why a 4xx body breaks the dialect's error envelope, or None when it conforms."""

    if not 400 <= status < 500 or status == 429:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return f"HTTP {status} body is not JSON"
    env = profile.error_envelope
    code = _dig(data, env.code_path)
    message = _dig(data, env.message_path)
    if code is _MISSING:
        return f"HTTP {status} body has no `{env.code_path}`"
    want = int if env.code_type == "integer" else str
    if not isinstance(code, want) or isinstance(code, bool):
        return f"`{env.code_path}` is {type(code).__name__}, expected {env.code_type}"
    if not isinstance(message, str):
        return f"HTTP {status} body has no string `{env.message_path}`"
    return None


def failed_requirements(dialect: str, exc: BaseException) -> set[str]:
    """Requirements broken by the failures inside a Schemathesis exception."""
    failures: Iterable[BaseException] = (
        exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
    )
    out: set[str] = set()
    for failure in failures:
        if isinstance(failure, BaseExceptionGroup):
            out |= failed_requirements(dialect, failure)
            continue
        checks = getattr(failure, "checks", ()) or ()
        for check in checks[:1]:
            if check == ENVELOPE_CHECK:
                out.add(ENVELOPE_REQUIREMENTS[dialect])
            elif check in CHECK_REQUIREMENTS:
                out.add(CHECK_REQUIREMENTS[check])
        if isinstance(failure, Failure) and not checks:
            # Schemathesis reports transport problems (timeouts, resets) without a check.
            out.add("GEN-SRV-001")
    return out


def hypothesis_home() -> Path:
    """Hypothesis' own files (Unicode tables, constants): kept across runs, per user."""
    return Path(user_cache_dir("brokercert")) / "hypothesis"


def cache_dir(catalog: Catalog) -> Path:
    """Hypothesis example database per spec digest: nightly runs replay what they found."""
    digest = catalog.spec_digest.split(":", 1)[-1][:16]
    return Path(user_cache_dir("brokercert")) / "examples" / f"{catalog.dialect}-{digest}"


def load_schema(catalog: Catalog, target: Target, depth: Depth, timeout: float) -> Any:
    """The Schemathesis schema of the catalogue's spec, aimed at the target."""
    # The catalogue already parsed the spec; a copy spares a second YAML parse per module.
    schema = schemathesis.openapi.from_dict(copy.deepcopy(catalog.spec))
    schema.config.update(
        base_url=target.base_url,
        headers=target.auth_headers(),
        request_timeout=timeout,
        tls_verify=not target.insecure,
        rate_limit=target.rate_limit_spec(),
    )
    schema.config.generation.update(
        max_examples=depth.max_examples,
        database=str(cache_dir(catalog)),
    )
    schema.config.phases.update(phases=depth.phases)
    schema.config.checks.update(included_check_names=ENABLED_CHECKS)
    return schema


def register_checks(profile_of: Any) -> None:
    """Register brokercert's checks once per session: the dialect's error envelope
    (``profile_of()`` returns the session's profile) and auth enforcement confirmed once
    per operation."""
    from schemathesis.specs.openapi.checks import ignored_auth

    @schemathesis.check
    def error_envelope_conformance(ctx: Any, response: Any, case: Any) -> bool | None:
        problem = envelope_problem(profile_of(), response.status_code, response.content or b"")
        if problem is not None:
            raise ErrorEnvelopeMismatch(operation=case.operation.label, message=problem)
        return None

    enforced: set[str] = set()

    @schemathesis.check
    def ignored_auth_once_per_operation(ctx: Any, response: Any, case: Any) -> bool | None:
        if ctx.auth_enforced_operations is None:
            ctx.auth_enforced_operations = enforced
        result: bool | None = ignored_auth(ctx, response, case)
        return result


def keepalive_session(target: Target) -> Any:
    """One HTTP session for every generated case: connections are reused, cookies are not
    (Schemathesis drops a ManagedCookiesSession's cookies after each request), and a 429
    is waited out as the suite's own client does (see :func:`polite_retry`). For plain
    HTTP on loopback the environment's proxy, netrc and CA-bundle settings cannot apply,
    and looking them up was 7% of a replayed run: they are not read."""
    from requests.adapters import HTTPAdapter
    from schemathesis.transport.requests import ManagedCookiesSession

    session = ManagedCookiesSession()
    session.headers.clear()
    adapter = HTTPAdapter(max_retries=polite_retry(target))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if target.is_loopback and target.base_url.startswith("http://"):
        session.trust_env = False
    return session


def polite_retry(target: Target) -> Retry:
    """urllib3 retries for 429 only: up to the target's ``max_retries``, each after the
    delay :func:`brokercert.target.retry_delay` gives (``Retry-After``, capped; else
    1, 2, 4 s); the last 429 is returned, not raised. Connection and read errors are
    not retried: they are findings (GEN-SRV-001), as without this adapter."""
    return _PoliteRetry(
        total=target.max_retries,
        connect=0,
        read=False,
        other=0,
        status=target.max_retries,
        status_forcelist=(429,),
        allowed_methods=None,  # a 429 means the request was not processed: POST too
        raise_on_status=False,
        cap=target.retry_after_cap,
    )


class _PoliteRetry(Retry):
    # urllib3 also retries a 413 or 503 that carries Retry-After: those are findings.
    RETRY_AFTER_STATUS_CODES = frozenset({429})

    def __init__(self, *args: Any, cap: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cap = cap

    def new(self, **kwargs: Any) -> _PoliteRetry:
        fresh = super().new(**kwargs)
        fresh.cap = self.cap
        return fresh

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        header = response.headers.get("Retry-After") if response is not None else None
        time.sleep(retry_delay(header, max(len(self.history) - 1, 0), cap=self.cap))


__all__ = [
    "CHECK_REQUIREMENTS",
    "ENVELOPE_REQUIREMENTS",
    "FailureGroup",
    "envelope_problem",
    "failed_requirements",
    "keepalive_session",
    "load_schema",
    "register_checks",
]
