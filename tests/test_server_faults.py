"""The fault catalogue: every fault names real requirements, and each one is observable
with a single request (after at most a create) on a server started with it, while the
same probe finds nothing on the clean server."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server_support import (
    alpaca_account,
    alpaca_document,
    bm_account,
    bm_document,
    client,
    running,
)

from brokercert import catalog
from brokercert.server import FAULTS, RunningServer, ServerConfig

Probe = Callable[[httpx.Client, httpx.Client], bool]
PROBES: dict[str, Probe] = {}
NOBODY = "00000000-0000-4000-8000-000000000000"


def probe(name: str) -> Callable[[Probe], Probe]:
    def register(fn: Probe) -> Probe:
        PROBES[name] = fn
        return fn

    return register


def alp_create(alp: httpx.Client, **overrides: Any) -> dict[str, Any]:
    r = alp.post("/v1/accounts", json=alpaca_account(**overrides))
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


def bm_create(bm: httpx.Client, tax_id: str = "321-54-9876", **overrides: Any) -> dict[str, Any]:
    r = bm.post("/v1/accounts", json=bm_account(tax_id, **overrides))
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


@functools.cache
def alp_over_32mb() -> bytes:
    return (b'[{"document_type":"other","mime_type":"application/pdf","content":"'
            + b"A" * 33_554_436 + b'"}]')


# ------------------------------------------------------------------ alpaca probes


@probe("alp_create_answers_201")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return alp.post("/v1/accounts", json=alpaca_account()).status_code == 201


@probe("alp_duplicate_email_accepted")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    body = alpaca_account()
    alp_create(alp, **body)
    return alp.post("/v1/accounts", json=body).status_code == 200


@probe("alp_no_32mb_limit")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    account = alp_create(alp)
    r = alp.post(f"/v1/accounts/{account['id']}/documents/upload", content=alp_over_32mb(),
                 headers={"content-type": "application/json"})
    return r.status_code == 204


@probe("alp_upload_answers_200")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    account = alp_create(alp)
    r = alp.post(f"/v1/accounts/{account['id']}/documents/upload", json=[alpaca_document()])
    return r.status_code == 200 and r.content != b""


@probe("alp_missing_account_number")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return "account_number" not in alp_create(alp)


@probe("alp_last_equity_number")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return not isinstance(alp_create(alp)["last_equity"], str)


@probe("alp_tax_id_echoed")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return "tax_id" in alp_create(alp)["identity"]


@probe("alp_auth_not_checked")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return alp.get("/v1/accounts", auth=("nobody", "nothing")).status_code == 200


@probe("alp_status_goes_backward")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    account = alp_create(alp)
    later = alp.get(f"/v1/accounts/{account['id']}").json()["status"]
    machine = catalog.load("alpaca").profile.state_machine
    return not machine.allows(account["status"], later)


@probe("alp_close_answers_200")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return alp.delete(f"/v1/accounts/{alp_create(alp)['id']}").status_code == 200


@probe("alp_close_twice_accepted")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    url = f"/v1/accounts/{alp_create(alp)['id']}"
    assert alp.delete(url).status_code == 204
    return alp.delete(url).status_code == 204


@probe("alp_patch_accepts_tax_id")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    url = f"/v1/accounts/{alp_create(alp)['id']}"
    return alp.patch(url, json={"identity": {"tax_id": "900-70-9999"}}).status_code == 200


@probe("alp_list_oldest_first")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    first, second = alp_create(alp)["id"], alp_create(alp)["id"]
    ids = [a["id"] for a in alp.get("/v1/accounts").json()]
    return ids.index(first) < ids.index(second)


@probe("alp_5xx_on_query")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return alp.get("/v1/accounts", params={"query": "pat"}).status_code >= 500


# ------------------------------------------------------------------ buildmarkets probes


@probe("bm_create_answers_200")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return bm.post("/v1/accounts", json=bm_account()).status_code == 200


@probe("bm_no_10mb_limit")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    content = base64.b64encode(bytes(10_485_761)).decode()
    url = f"/v1/accounts/{bm_create(bm)['id']}/documents/upload"
    return bm.post(url, json=bm_document(content=content)).status_code == 204


@probe("bm_upload_answers_200")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    url = f"/v1/accounts/{bm_create(bm)['id']}/documents/upload"
    r = bm.post(url, json=bm_document())
    return r.status_code == 200 and r.content != b""


@probe("bm_missing_kyc_status")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return "kyc_status" not in bm_create(bm)


@probe("bm_auth_not_checked")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return bm.get("/v1/accounts", headers={"X-API-Secret": "wrong"}).status_code == 200


@probe("bm_flat_error_envelope")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    return "error" not in bm.get(f"/v1/accounts/{NOBODY}").json()


@probe("bm_wrong_document_type_code")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    url = f"/v1/accounts/{bm_create(bm)['id']}/documents/upload"
    r = bm.post(url, json=bm_document(document_type="selfie"))
    return r.json()["error"]["code"] != "INVALID_DOCUMENT_TYPE"


@probe("bm_mime_type_not_checked")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    url = f"/v1/accounts/{bm_create(bm)['id']}/documents/upload"
    return bm.post(url, json=bm_document(mime_type="image/tiff")).status_code == 204


@probe("bm_rejected_then_active")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    account = bm_create(bm, "900-00-0002")
    url = f"/v1/accounts/{account['id']}"
    seen = [account["status"]] + [bm.get(url).json()["status"] for _ in range(2)]
    return not catalog.load("buildmarkets").profile.state_machine.is_path(seen)


@probe("bm_close_twice_accepted")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    url = f"/v1/accounts/{bm_create(bm)['id']}/actions/close"
    assert bm.post(url).status_code == 204
    return bm.post(url).status_code == 204


@probe("bm_patch_accepts_tax_id")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    url = f"/v1/accounts/{bm_create(bm)['id']}"
    return bm.patch(url, json={"identity": {"tax_id": "123-45-6789"}}).status_code == 200


@probe("bm_margin_agreement_optional")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    body = bm_account(trading_configurations={"margin_enabled": True})
    return bm.post("/v1/accounts", json=body).status_code == 201


def _walk(bm: httpx.Client, n: int) -> tuple[list[str], list[str]]:
    for _ in range(n):
        bm_create(bm)
    everything = [a["id"] for a in bm.get("/v1/accounts", params={"limit": 100}).json()["data"]]
    first = bm.get("/v1/accounts", params={"limit": 2}).json()
    second = bm.get("/v1/accounts", params={"limit": 2,
                                            "cursor": first["pagination"]["next_cursor"]}).json()
    return everything[:4], [a["id"] for a in first["data"] + second["data"]]


@probe("bm_page_repeats_item")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    _everything, walked = _walk(bm, 5)
    return len(set(walked)) < len(walked)


@probe("bm_page_drops_item")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    everything, walked = _walk(bm, 5)
    return walked != everything and len(set(walked)) == len(walked)


@probe("bm_limit_ignored")
def _(alp: httpx.Client, bm: httpx.Client) -> bool:
    for _ in range(3):
        bm_create(bm)
    return len(bm.get("/v1/accounts", params={"limit": 1}).json()["data"]) > 1


# ------------------------------------------------------------------ tests


def test_the_catalogue_is_large_and_consistent() -> None:
    assert len(FAULTS) >= 16
    assert {f.dialect for f in FAULTS.values()} == {"alpaca", "buildmarkets"}
    for name, fault in FAULTS.items():
        assert name == fault.name and fault.description and fault.requirements
        assert name.startswith({"alpaca": "alp_", "buildmarkets": "bm_"}[fault.dialect])
        known = catalog.load(fault.dialect).ids
        unknown = [r for r in fault.requirements if r not in known]
        assert not unknown, f"{name} names requirements outside the catalogue: {unknown}"


def test_every_fault_has_a_probe() -> None:
    assert set(PROBES) == set(FAULTS)


def test_an_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault 'nope'"):
        ServerConfig(faults=frozenset({"nope"}))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running(tmp_path_factory.mktemp("clean")) as srv:
        yield srv


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_each_fault_is_observable_and_absent_from_the_clean_server(
    name: str, clean: RunningServer, tmp_path: Path
) -> None:
    with clients(clean) as (alp, bm):
        assert not PROBES[name](alp, bm), f"the clean server shows {name}"
    with running(tmp_path, faults=frozenset({name})) as srv, clients(srv) as (alp, bm):
        assert PROBES[name](alp, bm), f"{name} is not observable"


@contextmanager
def clients(server: RunningServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Unchecked clients: a faulty server answers outside the spec on purpose."""
    with client(server, "alpaca", check=False) as alp, client(server, "buildmarkets",
                                                              check=False) as bm:
        yield alp, bm
