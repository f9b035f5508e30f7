"""specs/: every OpenAPI document validates and loads in Schemathesis."""

from __future__ import annotations

import pytest
import schemathesis
from openapi_spec_validator import validate

from brokercert import catalog

CATALOGS = [catalog.load(d, v) for d in catalog.dialects() for v in catalog.versions(d)]


@pytest.mark.parametrize("cat", CATALOGS, ids=lambda c: f"{c.dialect}-{c.version}")
def test_spec_is_valid_openapi(cat: catalog.Catalog) -> None:
    validate(cat.spec)


@pytest.mark.parametrize("cat", CATALOGS, ids=lambda c: f"{c.dialect}-{c.version}")
def test_spec_loads_in_schemathesis_with_links(cat: catalog.Catalog) -> None:
    schema = schemathesis.openapi.from_path(str(cat.spec_path))
    labels = [r.ok().label for r in schema.get_all_operations()]
    assert sorted(labels) == sorted(cat.operations())
    id_param = cat.profile.id_param
    create = cat.profile.operation("create_account")
    success = cat.spec["paths"][create.path]["post"]["responses"][str(create.success)]
    linked = {link["operationId"] for link in success.get("links", {}).values()}
    needing_id = {
        op["operationId"]
        for path, item in cat.spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "patch", "delete", "put"} and "{" + id_param + "}" in path
    }
    assert needing_id and needing_id <= linked, f"create links miss {needing_id - linked}"


@pytest.mark.parametrize("cat", CATALOGS, ids=lambda c: f"{c.dialect}-{c.version}")
def test_every_operation_documents_401_and_has_an_operation_id(cat: catalog.Catalog) -> None:
    for path, item in cat.spec["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "patch", "delete", "put"}:
                continue
            assert op.get("operationId"), f"{method} {path} has no operationId"
            assert "401" in op["responses"], f"{method} {path} does not document 401"
