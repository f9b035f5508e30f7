"""brokercert.catalog: every dialect loads, and profile, spec and catalogue agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from brokercert import catalog
from brokercert._paths import specs_root

DIALECTS = catalog.dialects()
MIN_REQUIREMENTS = {"alpaca": 25, "buildmarkets": 30}


def test_both_dialects_are_present() -> None:
    assert set(DIALECTS) >= {"alpaca", "buildmarkets"}


@pytest.fixture(params=DIALECTS)
def cat(request: pytest.FixtureRequest) -> catalog.Catalog:
    return catalog.load(request.param)


def _responses(cat: catalog.Catalog, method: str, path: str) -> dict[str, object]:
    op = cat.spec["paths"][path][method.lower()]
    responses: dict[str, object] = op["responses"]
    return responses


def test_catalogue_size(cat: catalog.Catalog) -> None:
    own = [r for r in cat.requirements if not r.id.startswith("GEN-")]
    assert len(own) >= MIN_REQUIREMENTS[cat.dialect]


def test_ids_unique_and_prefixed(cat: catalog.Catalog) -> None:
    ids = [r.id for r in cat.requirements]
    assert len(ids) == len(set(ids))
    prefix = {"alpaca": "ALP", "buildmarkets": "BM"}[cat.dialect]
    assert all(i.split("-")[0] in (prefix, "GEN") for i in ids)


def test_every_requirement_names_a_spec_operation(cat: catalog.Catalog) -> None:
    ops = set(cat.operations())
    unknown = [
        (r.id, r.operation)
        for r in cat.requirements
        if r.operation != "*" and r.operation not in ops
    ]
    assert not unknown, f"requirements naming operations the spec lacks: {unknown}"


def test_profile_operations_exist_with_their_success_status(cat: catalog.Catalog) -> None:
    for name, op in cat.profile.operations.items():
        assert op.path in cat.spec["paths"], f"{name}: {op.path} not in spec"
        responses = _responses(cat, op.method, op.path)
        assert str(op.success) in responses, f"{name}: {op.success} not documented"


def test_profile_statuses_are_documented(cat: catalog.Catalog) -> None:
    close = cat.profile.operation(cat.profile.close.operation)
    documented = _responses(cat, close.method, close.path)
    for status in cat.profile.close.again_status:
        assert str(status) in documented
    get = cat.profile.operation("get_account")
    for status in cat.profile.unknown_account_status:
        assert str(status) in _responses(cat, get.method, get.path)


def _status_enum(cat: catalog.Catalog) -> set[str]:
    schemas = cat.spec["components"]["schemas"]
    for name in ("AccountStatus",):
        if name in schemas:
            return set(schemas[name]["enum"])
    raise AssertionError("spec defines no AccountStatus enum")


def test_state_machine_matches_spec_statuses(cat: catalog.Catalog) -> None:
    assert set(cat.profile.state_machine.states) <= _status_enum(cat)


def test_limits_are_not_contradicted_by_schema_bounds(cat: catalog.Catalog) -> None:
    """A limit the scenarios test must not be capped lower by the schema itself."""
    text = (cat.folder / "openapi.yaml").read_text()
    spec = yaml.safe_load(text)
    for limit in cat.profile.limits:
        op = cat.profile.operation(limit.operation)
        body = spec["paths"][op.path][op.method.lower()].get("requestBody", {})
        schema = body.get("content", {}).get("application/json", {}).get("schema", {})
        if limit.measured == "count":
            max_items = schema.get("maxItems")
            assert max_items in (None, limit.accept_at), f"{limit.name}: maxItems {max_items}"


def test_state_machine_paths() -> None:
    cat = catalog.load("buildmarkets")
    sm = cat.profile.state_machine
    assert sm.is_path(["SUBMITTED", "SUBMITTED", "APPROVED", "ACTIVE"])
    assert not sm.is_path(["ACTIVE", "SUBMITTED"])
    assert not sm.is_path(["NOT_A_STATE"])


def test_unknown_dialect_and_version_errors() -> None:
    with pytest.raises(catalog.CatalogError, match="unknown dialect"):
        catalog.load("nope")
    with pytest.raises(catalog.CatalogError, match="no spec version"):
        catalog.load("alpaca", "0.0.0")


def test_invalid_profile_names_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from brokercert.catalog import _loader

    shutil.copytree(specs_root(), tmp_path / "specs")
    prof = tmp_path / "specs" / "alpaca" / "1.1.1" / "profile.yaml"
    data = yaml.safe_load(prof.read_text())
    data["auth"]["scheme"] = "digest"
    prof.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(_loader, "specs_root", lambda: tmp_path / "specs")
    _loader.load.cache_clear()
    try:
        with pytest.raises(catalog.CatalogError, match=r"profile.yaml: auth.scheme"):
            _loader.load("alpaca")
    finally:
        _loader.load.cache_clear()
