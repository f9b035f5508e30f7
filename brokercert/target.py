"""The system under test: where it is, how to authenticate, and how politely to talk to it.

A run may point at someone else's sandbox or staging server, so everything that
sends requests goes through a :class:`Target`, which

- refuses the dialect's production hosts unless ``--allow-production`` was given;
- takes credentials only from the environment (never from argv, where ``ps`` and
  shell history would show them) and never prints them;
- paces requests with one token bucket shared by every client of the target
  (default 80% of the dialect's documented limit for non-loopback hosts);
- honours 429 ``Retry-After`` (capped), with exponential backoff when it is absent,
  and pauses *all* clients of the target while waiting;
- sets timeouts on every request and verifies TLS unless ``--insecure``.

:func:`probe` answers "is anything speaking HTTP there?" within 5 s, so that a
typo in ``--target`` gives exit 3 and one line instead of a hanging run.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import math
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from brokercert import __version__
from brokercert.catalog import Profile
from brokercert.errors import TargetUnreachable, UserError

__all__ = [
    "ENV_KEY",
    "ENV_SECRET",
    "Credentials",
    "PoliteTransport",
    "RateLimiter",
    "Target",
    "build_target",
    "is_loopback",
    "parse_rate",
    "probe",
    "retry_delay",
]

ENV_KEY = "BROKERCERT_API_KEY"
ENV_SECRET = "BROKERCERT_API_SECRET"
DEFAULT_RATE_SHARE = 0.8
USER_AGENT = f"brokercert/{__version__}"
_PROBE_PATH = "/v1/accounts"
_PROBE_BOUND = 5.0


# -- credentials ----------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Credentials:
    """An API key and secret. ``repr``/``str`` never show them."""

    key: str
    secret: str

    def __repr__(self) -> str:
        return "Credentials(key='***', secret='***')"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """Read ``BROKERCERT_API_KEY`` and ``BROKERCERT_API_SECRET``.

        None when neither is set (the caller decides whether that is an error, e.g.
        the embedded server makes its own); UserError when only one is set.
        """
        env = os.environ if environ is None else environ
        key, secret = env.get(ENV_KEY, ""), env.get(ENV_SECRET, "")
        if not key and not secret:
            return None
        if not key or not secret:
            missing = ENV_KEY if not key else ENV_SECRET
            raise UserError(f"{missing} is empty or unset; set both {ENV_KEY} and {ENV_SECRET}")
        return cls(key, secret)

    @classmethod
    def require_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Like :meth:`from_env`, but a UserError (exit 2) saying what to set when unset."""
        creds = cls.from_env(environ)
        if creds is None:
            raise UserError(
                f"no credentials: set {ENV_KEY} and {ENV_SECRET} in the environment "
                "(they are never taken from the command line)"
            )
        return creds

    def basic_token(self) -> str:
        """``base64(key:secret)``, the HTTP Basic credential."""
        return base64.b64encode(f"{self.key}:{self.secret}".encode()).decode("ascii")

    def secrets(self) -> tuple[str, str, str]:
        """Every spelling a redactor must remove: key, secret and the Basic token."""
        return (self.key, self.secret, self.basic_token())


# -- rate limiting and 429 ------------------------------------------------------------


class RateLimiter:
    """Thread-safe token bucket (GCRA form) shared by every client of a target.

    ``rate`` is requests per second (None: unlimited); ``burst`` is how many requests
    may go back to back. :meth:`pause` holds every caller back, e.g. after a 429.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and not rate > 0:
            raise ValueError("rate must be positive or None")
        self.rate = rate
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._tolerance = self._interval * max(burst - 1, 0)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = -math.inf  # theoretical arrival time of the next request
        self._paused_until = -math.inf

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until, self._tat - self._tolerance)
            self._tat = max(start, self._tat) + self._interval
        wait = start - now
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0

    def pause(self, seconds: float) -> None:
        """Let no request through for ``seconds`` from now (all threads)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


def retry_delay(
    retry_after: str | None,
    attempt: int,
    *,
    cap: float = 30.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based) after a 429.

    ``Retry-After`` may be delta-seconds or an HTTP date; an absent or unparsable
    header gives exponential backoff 1, 2, 4, ... s. Always within ``[0, cap]``.
    """
    delay: float | None = None
    if retry_after is not None:
        value = retry_after.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", value):
            delay = float(value)
        elif value:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                delay = (when - now()).total_seconds()
    if delay is None:
        delay = float(2**attempt)
    return min(max(delay, 0.0), cap)


class PoliteTransport(httpx.BaseTransport):
    """Wraps a transport with the target's rate limiter and 429 handling.

    A 429 is retried at most ``max_retries`` times (after the delay
    :func:`retry_delay` gives); then the last 429 is returned to the caller, which
    reports it. Requests whose body cannot be replayed (streams) are not retried.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        limiter: RateLimiter,
        *,
        max_retries: int = 3,
        retry_after_cap: float = 30.0,
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.max_retries = max_retries
        self.retry_after_cap = retry_after_cap

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        replayable = isinstance(request.stream, httpx.ByteStream)
        attempt = 0
        while True:
            self.limiter.acquire()
            response = self.inner.handle_request(request)
            if response.status_code != 429 or attempt >= self.max_retries or not replayable:
                return response
            delay = retry_delay(
                response.headers.get("Retry-After"), attempt, cap=self.retry_after_cap
            )
            response.close()
            self.limiter.pause(delay)
            attempt += 1

    def close(self) -> None:
        self.inner.close()


# -- the target -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One base URL speaking one dialect, with everything needed to talk to it politely."""

    base_url: str
    profile: Profile = field(repr=False)
    credentials: Credentials
    timeout: float = 10.0
    rate: float | None = None
    insecure: bool = False
    allow_production: bool = False
    max_retries: int = 3
    retry_after_cap: float = 30.0
    limiter: RateLimiter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limiter", RateLimiter(self.rate))

    @property
    def dialect(self) -> str:
        return self.profile.dialect

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (which starts with ``/v1/...``) under the base URL."""
        return self.base_url + "/" + path.lstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """The headers that authenticate a request, per the dialect's auth scheme."""
        creds = self.credentials
        auth = self.profile.auth
        if auth.scheme == "basic":
            return {"Authorization": f"Basic {creds.basic_token()}"}
        assert auth.key_header and auth.secret_header  # checked by the Auth model
        return {auth.key_header: creds.key, auth.secret_header: creds.secret}

    def secrets(self) -> tuple[str, ...]:
        """Everything a redactor must remove for this target."""
        return self.credentials.secrets()

    def rate_limit_spec(self) -> str | None:
        """The pace as ``"N/s"`` or ``"N/m"`` for tools with their own limiter (Schemathesis)."""
        if self.rate is None:
            return None
        if self.rate >= 1 and float(self.rate).is_integer():
            return f"{int(self.rate)}/s"
        return f"{max(int(self.rate * 60), 1)}/m"

    def describe(self) -> dict[str, object]:
        """What a report may say about the target (no credentials)."""
        return {
            "base_url": self.base_url,
            "dialect": self.profile.dialect,
            "spec_version": self.profile.version,
            "rate_limit_per_second": self.rate,
            "timeout_seconds": self.timeout,
            "tls_verified": not self.insecure and self.base_url.startswith("https:"),
            "allow_production": self.allow_production,
        }

    def transport(
        self, inner: httpx.BaseTransport | None = None, *, max_retries: int | None = None
    ) -> PoliteTransport:
        """A transport sharing this target's limiter; ``inner`` replaces the network in tests."""
        if inner is None:
            inner = httpx.HTTPTransport(verify=not self.insecure, retries=0)
        return PoliteTransport(
            inner,
            self.limiter,
            max_retries=self.max_retries if max_retries is None else max_retries,
            retry_after_cap=self.retry_after_cap,
        )

    def client(
        self,
        auth: bool = True,
        *,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_retries: int | None = None,
    ) -> httpx.Client:
        """An httpx client for the target; close it (or use it as a context manager).

        ``auth=False`` gives a client without credentials (for auth checks).
        ``transport`` is the inner transport (``httpx.MockTransport`` in tests); the
        rate limiter and 429 handling wrap it either way; ``max_retries=0`` hands every
        429 straight back (for tests of the 429 itself). Redirects are not followed, so
        credentials never travel to another host.
        """
        all_headers = {"User-Agent": USER_AGENT}
        if auth:
            all_headers.update(self.auth_headers())
        if headers:
            all_headers.update(headers)
        return httpx.Client(
            base_url=self.base_url,
            headers=all_headers,
            timeout=httpx.Timeout(self.timeout),
            transport=self.transport(transport, max_retries=max_retries),
            follow_redirects=False,
        )


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (no DNS lookup)."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_RATE_RE = re.compile(
    r"\s*(?P<n>\d+(?:\.\d+)?)\s*(?:/\s*(?P<unit>s|sec|second|m|min|minute|h|hour))?\s*",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: str) -> float:
    """``"10/s"``, ``"600/m"``, ``"3600/h"`` or ``"5"`` (per second) -> requests per second."""
    match = _RATE_RE.fullmatch(text)
    if match is None:
        raise UserError(f"--rate-limit {text!r}: expected N/s or N/m, e.g. 5/s or 300/m")
    count = float(match["n"])
    if count <= 0:
        raise UserError(f"--rate-limit {text!r}: the rate must be above zero")
    unit = (match["unit"] or "s")[0].lower()
    return count / _UNIT_SECONDS[unit]


def _validated_url(url: str) -> tuple[str, str]:
    """(normalised base URL, host) or UserError."""
    raw = url.strip()
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UserError(f"--target {url!r} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UserError(
            f"--target {url!r} must start with http:// or https:// "
            "(e.g. http://127.0.0.1:8000/alpaca)"
        )
    if not parts.hostname:
        raise UserError(f"--target {url!r} has no host (e.g. https://sandbox.example.com)")
    if parts.username is not None or parts.password is not None:
        raise UserError(
            f"--target must not contain credentials; set {ENV_KEY} and {ENV_SECRET} instead"
        )
    if parts.query or parts.fragment:
        raise UserError(f"--target {raw!r} must be a base URL without ?query or #fragment")
    if any(c.isspace() for c in raw):
        raise UserError(f"--target {raw!r} contains whitespace")
    base = f"{parts.scheme.lower()}://{parts.netloc}{parts.path}".rstrip("/")
    return base, parts.hostname.lower()


def build_target(
    url: str,
    profile: Profile,
    credentials: Credentials,
    *,
    allow_production: bool = False,
    rate_limit: str | None = None,
    insecure: bool = False,
    timeout: float = 10.0,
) -> Target:
    """Validate the user's choices and build the :class:`Target` (UserError, exit 2, if wrong)."""
    base, host = _validated_url(url)
    production = {h.lower().rstrip(".") for h in profile.production_hosts}
    if host.rstrip(".") in production and not allow_production:
        raise UserError(
            f"{host} is a production host of {profile.dialect}; the suite creates and closes "
            "real accounts, so it refuses production unless you pass --allow-production"
        )
    if timeout <= 0:
        raise UserError(f"timeout must be positive, got {timeout}")
    if rate_limit is not None:
        rate: float | None = parse_rate(rate_limit)
    elif is_loopback(host):
        rate = None
    else:
        rate = profile.rate_limit.per_second * DEFAULT_RATE_SHARE
    return Target(
        base_url=base,
        profile=profile,
        credentials=credentials,
        timeout=timeout,
        rate=rate,
        insecure=insecure,
        allow_production=allow_production,
    )


# -- reachability ---------------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _explain(exc: BaseException, target: Target, timeout: float) -> str:
    where = target.base_url
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, socket.gaierror) for e in chain) or "Name or service not known" in text:
        return f"cannot resolve host {target.host!r} of {where}: check the --target URL"
    if any(isinstance(e, ssl.SSLError) for e in chain) or "SSL" in text or "TLS" in text:
        reason = next((str(e) for e in chain if isinstance(e, ssl.SSLError)), text)
        return (
            f"TLS handshake with {where} failed ({reason.strip()[:120]}); check http vs https, "
            "or pass --insecure for a self-signed certificate"
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text.lower():
        return f"connection refused by {where}: is the server running on that host and port?"
    if isinstance(exc, httpx.TimeoutException):
        return f"{where} did not answer within {timeout:g} s"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return f"{where} does not speak HTTP (no valid HTTP response): check the --target URL"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {where}: {str(exc)[:120] or type(exc).__name__}"
    return f"cannot reach {where}: {type(exc).__name__}: {str(exc)[:120]}"


def probe(
    target: Target, timeout: float = 4.0, *, transport: httpx.BaseTransport | None = None
) -> int:
    """Send one authenticated ``GET /v1/accounts``; return its HTTP status.

    Any HTTP answer (even 401 or 500) means "reachable". Otherwise raises
    :class:`TargetUnreachable` with one line saying why (refused, DNS, timeout, TLS,
    not HTTP). Bounded to ``timeout + 1`` s in total, DNS included, by running the
    request in a daemon thread (name resolution has no timeout of its own).
    """
    outcome: list[int | BaseException] = []

    def attempt() -> None:
        try:
            inner = transport or httpx.HTTPTransport(verify=not target.insecure, retries=0)
            with httpx.Client(
                transport=inner,
                timeout=httpx.Timeout(timeout),
                headers={"User-Agent": USER_AGENT, **target.auth_headers()},
                follow_redirects=False,
            ) as client:
                response = client.get(target.url(_PROBE_PATH))
                outcome.append(response.status_code)
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt, name="brokercert-probe", daemon=True)
    worker.start()
    worker.join(min(timeout + 1.0, _PROBE_BOUND))
    if not outcome:
        raise TargetUnreachable(f"{target.base_url} did not answer within {timeout:g} s")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise TargetUnreachable(_explain(result, target, timeout))
    return result
