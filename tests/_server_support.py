"""Shared helpers of the reference-server tests: a running server, clients that check
every response against the dialect's OpenAPI spec with openapi-core, and valid bodies.

Imported by the tests/test_server_*.py modules (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from brokercert import catalog
from brokercert.server import RunningServer, ServerConfig, start_in_thread
from brokercert.server._config import DEV_KEY, DEV_SECRET

ALPACA_AUTH = (DEV_KEY, DEV_SECRET)
BM_HEADERS = {"X-API-Key": DEV_KEY, "X-API-Secret": DEV_SECRET}


@contextmanager
def running(tmp: Path, **settings: Any) -> Iterator[RunningServer]:
    """A server on a free loopback port with its database in ``tmp``; always stopped."""
    settings.setdefault("kyc_delay", 0.0)
    config = ServerConfig(db=tmp / "server.sqlite3", **settings)
    server = start_in_thread(config)
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------ spec checking


class _Request:
    """The request of an httpx exchange, as openapi-core reads it."""

    def __init__(self, request: httpx.Request) -> None:
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = url.path
        self.method = request.method.lower()
        self.content_type = request.headers.get("content-type", "")
        self.body = None
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))


class SpecChecker:
    """Validates responses against one dialect's spec served at ``base_url``."""

    def __init__(self, dialect: str, base_url: str) -> None:
        spec = copy.deepcopy(catalog.load(dialect).spec)
        spec["servers"] = [{"url": base_url}]
        self.spec = spec
        self.openapi = OpenAPI.from_dict(spec)
        self.checked = 0

    def _operation(self, response: httpx.Response) -> dict[str, Any]:
        path = urlsplit(str(response.request.url)).path
        base = urlsplit(self.spec["servers"][0]["url"]).path
        rel = path[len(base):]
        for template, item in self.spec["paths"].items():
            parts, want = template.strip("/").split("/"), rel.strip("/").split("/")
            if len(parts) == len(want) and all(
                p.startswith("{") or p == w for p, w in zip(parts, want, strict=True)
            ):
                op = item.get(response.request.method.lower())
                if op is not None:
                    return dict(op)
        raise AssertionError(f"{response.request.method} {rel} is not an operation of the spec")

    def check(self, response: httpx.Response) -> None:
        """Raise AssertionError unless the response is one the spec documents, body and all."""
        op = self._operation(response)
        documented = op["responses"].get(str(response.status_code))
        assert documented is not None, (
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, not documented: {response.text[:300]}"
        )
        if "$ref" in documented:
            name = documented["$ref"].rsplit("/", 1)[-1]
            documented = self.spec["components"]["responses"][name]
        if "content" not in documented:
            assert response.content == b"", f"{response.status_code} must have no body"
        else:
            assert response.headers.get("content-type", "").startswith("application/json")
        result = self.openapi.validate_response(_Request(response.request), _Response(response))
        assert result is None
        self.checked += 1


@functools.cache
def checker_for(dialect: str, base_url: str) -> SpecChecker:
    return SpecChecker(dialect, base_url)


def client(server: RunningServer, dialect: str, *, auth: bool = True,
           check: bool = True) -> httpx.Client:
    """An httpx client for one dialect; every response is validated against the spec."""
    hooks: list[Callable[[httpx.Response], None]] = []
    if check:
        checker = checker_for(dialect, server.base_url(dialect))

        def hook(response: httpx.Response) -> None:
            response.read()
            checker.check(response)

        hooks.append(hook)
    kwargs: dict[str, Any] = {}
    if auth and dialect == "alpaca":
        kwargs["auth"] = ALPACA_AUTH
    elif auth:
        kwargs["headers"] = BM_HEADERS
    # verify=False: plain HTTP on loopback, and it spares loading the CA bundle per client.
    return httpx.Client(base_url=server.base_url(dialect), event_hooks={"response": hooks},
                        timeout=60, verify=False, **kwargs)


# ------------------------------------------------------------------ request bodies


def unique_email() -> str:
    return f"test-{uuid.uuid4().hex[:12]}@example.com"


def alpaca_account(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "contact": {
            "email_address": unique_email(),
            "phone_number": "+15555550123",
            "street_address": ["1 Example Way"],
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
            "country": "USA",
        },
        "identity": {
            "given_name": "Pat",
            "family_name": "Example",
            "date_of_birth": "1985-04-12",
            "tax_id": "900-70-1234",
            "tax_id_type": "USA_SSN",
            "country_of_citizenship": "USA",
            "country_of_birth": "USA",
            "country_of_tax_residence": "USA",
            "funding_source": ["savings"],
        },
        "disclosures": {
            "is_control_person": False,
            "is_affiliated_exchange_or_finra": False,
            "is_politically_exposed": False,
            "immediate_family_exposed": False,
            "employment_status": "employed",
        },
        "agreements": [
            {"agreement": "customer_agreement", "signed_at": "2024-01-15T10:00:00Z",
             "ip_address": "203.0.113.7"},
        ],
    }
    body.update(overrides)
    return body


def bm_account(tax_id: str = "321-54-9876", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "contact": {
            "email_address": unique_email(),
            "phone_number": "+13035550142",
            "street_address": ["42 Larimer Street"],
            "city": "Denver",
            "state": "CO",
            "postal_code": "80202",
        },
        "identity": {
            "given_name": "Sample",
            "family_name": "Investor",
            "date_of_birth": "1984-09-30",
            "tax_id": tax_id,
        },
        "agreements": [
            {"agreement": "customer_agreement", "signed_at": "2025-03-14T09:26:53Z",
             "ip_address": "198.51.100.7"},
        ],
        "investment_profile": {
            "risk_tolerance": "conservative",
            "investment_objective": "income",
            "annual_income_range": "100000_to_250000",
            "net_worth_range": "250000_to_500000",
            "liquid_net_worth_range": "100000_to_250000",
        },
    }
    body.update(overrides)
    return body


PNG = "iVBORw0KGgo="  # the 8-byte PNG signature


def alpaca_document(**overrides: Any) -> dict[str, Any]:
    return {"document_type": "identity_verification", "document_sub_type": "passport",
            "content": PNG, "mime_type": "image/png", **overrides}


def bm_document(**overrides: Any) -> dict[str, Any]:
    return {"document_type": "identity_verification", "document_sub_type": "passport",
            "content": PNG, "mime_type": "image/png", **overrides}
