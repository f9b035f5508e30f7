"""OpenAPI links from account creation: every linked operation reaches the new account.

Rule GEN-STATE-001 from specs/common/requirements.yaml, which cites the OpenAPI 3.0.3 Link
Object (and Schemathesis' ensure_resource_availability check). The links themselves are read
from the dialect's openapi.yaml: the `links` of the create operation's success response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from brokercert.catalog import Catalog
from brokercert.pytest_plugin import check, session_settings, violation

METHODS = ("get", "put", "post", "patch", "delete")


@dataclass(frozen=True)
class Link:
    name: str
    method: str
    path: str
    parameters: dict[str, Any]


def _resolve_pointer(doc: Any, pointer: str) -> Any:
    node = doc
    for raw in pointer.lstrip("/").split("/") if pointer not in ("", "/") else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _operation(spec: dict[str, Any], link: dict[str, Any]) -> tuple[str, str]:
    """(METHOD, path) of the operation a Link Object names by operationId or operationRef."""
    if "operationId" in link:
        for path, item in spec["paths"].items():
            for method in METHODS:
                if item.get(method, {}).get("operationId") == link["operationId"]:
                    return method.upper(), path
        raise KeyError(f"no operation {link['operationId']!r} in the spec")
    ref = str(link.get("operationRef", ""))
    if ref.startswith("#/paths/"):
        parts = ref[len("#/paths/") :].split("/")
        return parts[-1].upper(), "/".join(parts[:-1]).replace("~1", "/").replace("~0", "~")
    raise KeyError(f"link names no local operation: {link}")


def create_links(catalog: Catalog) -> list[Link]:
    """The links of the create operation's success response, in spec order."""
    create = catalog.profile.operation("create_account")
    responses = catalog.spec["paths"][create.path][create.method.lower()]["responses"]
    response = responses.get(str(create.success)) or responses.get(create.success) or {}
    if "$ref" in response:
        response = _resolve_pointer(catalog.spec, response["$ref"].lstrip("#"))
    out = []
    for name, link in (response.get("links") or {}).items():
        if "$ref" in link:
            link = _resolve_pointer(catalog.spec, link["$ref"].lstrip("#"))
        method, path = _operation(catalog.spec, link)
        out.append(Link(name, method, path, dict(link.get("parameters") or {})))
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "link" in metafunc.fixturenames:
        links = create_links(session_settings().catalog)
        # A spec whose create response has no links passes vacuously (one placeholder item).
        metafunc.parametrize("link", links or [None], ids=[lk.name for lk in links] or ["none"])


def _value(expression: Any, created: dict[str, Any]) -> Any:
    """A link parameter: a constant, or the runtime expression $response.body#/pointer."""
    if isinstance(expression, str) and expression.startswith("$response.body"):
        _, _, pointer = expression.partition("#")
        return _resolve_pointer(created, pointer)
    return expression


@pytest.mark.requirement("GEN-STATE-001")
def test_linked_operation_reaches_the_new_account(
    link, new_account, client, profile, run_data, dialect
):
    """An account returned by create is reachable (not 404) by every operation its OpenAPI links
    name."""
    if link is None:
        return
    created = new_account()
    path = link.path
    query: dict[str, Any] = {}
    for name, expression in link.parameters.items():
        where, _, param = name.rpartition(".")
        try:
            value = _value(expression, created)
        except (KeyError, IndexError, ValueError, TypeError):
            raise violation(
                "GEN-STATE-001", f"the create response to hold {expression}", str(created)[:300]
            ) from None
        if where in ("", "path") and "{" + param + "}" in path:
            path = path.replace("{" + param + "}", str(value))
        else:
            query[param] = value
    # A minimal valid body for the operations that need one, from the profile's name for it.
    name = next(
        (
            n
            for n, op in profile.operations.items()
            if op.method == link.method and op.path == link.path
        ),
        None,
    )
    bodies = {
        "update_account": lambda: run_data.update_body(dialect),
        "upload_documents": lambda: run_data.upload_body(dialect),
        "submit_cip": lambda: run_data.cip_body(),
    }
    build = bodies.get(name or "")
    response = client.request(
        link.method, path, params=query or None, json=build() if build else None
    )
    check(
        response.status_code != 404,
        "GEN-STATE-001",
        f"link {link.name} ({link.method} {link.path}) to reach account {created.get('id')}",
        f"HTTP {response.status_code}",
        response,
    )
