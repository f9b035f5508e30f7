"""Assertions that explain themselves: requirement, request (redacted), expected vs received."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx

from brokercert.catalog import Catalog
from brokercert.pytest_plugin import _state


def _rule(requirement: str) -> str:
    settings = _state.settings()
    if settings is not None:
        try:
            req = settings.catalog.requirement(requirement)
        except KeyError:
            return requirement
        return f"{req.id} ({req.level.value}): {req.title}\n  source: {req.source}"
    return requirement


def _exchange(response: httpx.Response | None) -> str:
    if response is None:
        return _state.last_exchange()
    red = _state.redactor()
    request = response.request
    # Redact a margin past each cut, so a secret straddling it cannot show half-visible.
    try:
        sent = red.text(request.content[:2000].decode("utf-8", "replace"))[:1500]
    except httpx.RequestNotRead:
        sent = "<streamed body>"
    try:
        received = red.text(response.text[:2000])[:1500]
    except httpx.ResponseNotRead:
        received = "<not read>"
    url = red.text(str(request.url))
    return f"{request.method} {url}\n{sent}\n-> HTTP {response.status_code}\n{received}"


def violation(
    requirement: str, expected: str, received: str, response: httpx.Response | None = None
) -> AssertionError:
    """The error a scenario raises when the target breaks ``requirement``."""
    return AssertionError(
        f"{_rule(requirement)}\n  expected: {expected}\n  received: {received}\n"
        f"  exchange:\n{_indent(_exchange(response))}"
    )


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def check(
    condition: bool,
    requirement: str,
    expected: str,
    received: Any,
    response: httpx.Response | None = None,
) -> None:
    """Fail ``requirement`` unless ``condition`` holds."""
    if not condition:
        raise violation(requirement, expected, str(received), response)


def expect_status(
    response: httpx.Response, expected: int | Collection[int], requirement: str
) -> None:
    """Fail ``requirement`` unless the response status is (one of) ``expected``."""
    allowed = {expected} if isinstance(expected, int) else set(expected)
    check(
        response.status_code in allowed,
        requirement,
        f"HTTP {' or '.join(str(s) for s in sorted(allowed))}",
        f"HTTP {response.status_code}",
        response,
    )


def expect_4xx(response: httpx.Response, requirement: str) -> None:
    check(
        400 <= response.status_code < 500,
        requirement,
        "a 4xx status",
        f"HTTP {response.status_code}",
        response,
    )


def requirement_for(catalog: Catalog, *ids: str) -> str:
    """The one of ``ids`` that the catalogue under test holds (a test may name one per dialect)."""
    return next(i for i in ids if i in catalog.ids)


def value_at(doc: Any, path: str | None) -> Any:
    """The value at a dotted path of a JSON document, or None."""
    if not path:
        return None
    for key in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def json_body(response: httpx.Response, requirement: str) -> Any:
    """The parsed JSON body, or a failure of ``requirement`` naming what came back."""
    try:
        return response.json()
    except ValueError:
        raise violation(requirement, "a JSON body", repr(response.text[:200]), response) from None
