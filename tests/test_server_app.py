"""The app around the dialects: readiness, body caps (413 before the body is read),
routing errors, and the embedding API (start_in_thread / RunningServer)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _server_support import BM_HEADERS, alpaca_account, client, running

from brokercert.server import RunningServer, ServerConfig, start_in_thread
from brokercert.server._config import DEV_KEY, DEV_SECRET


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose body cap is 1 MiB for both dialects."""
    with running(tmp_path_factory.mktemp("small"), max_body_mb=1) as srv:
        yield srv


def test_readiness_needs_no_credentials(small: RunningServer) -> None:
    for path in ("/", "/healthz"):
        r = httpx.get(small.url + path)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert r.json()["dialects"] == {"alpaca": "/alpaca", "buildmarkets": "/buildmarkets"}


def _chunks(size: int) -> Iterator[bytes]:
    yield b'[{"document_type":"other","mime_type":"application/pdf","content":"'
    for _ in range(size // 65536):
        yield b"A" * 65536
    yield b'"}]'


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_cap_is_413_in_each_envelope(small: RunningServer, chunked: bool) -> None:
    body = b"".join(_chunks(2 * 1024 * 1024))
    content = _chunks(2 * 1024 * 1024) if chunked else body
    with client(small, "alpaca") as alp:
        account = alp.post("/v1/accounts", json=alpaca_account()).json()
        r = alp.post(f"/v1/accounts/{account['id']}/documents/upload", content=content,
                     headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == 41310000
        assert alp.get(f"/v1/accounts/{account['id']}/documents").json() == []
    with client(small, "buildmarkets", check=False) as bm:
        r = bm.post("/v1/accounts", content=_chunks(2 * 1024 * 1024) if chunked else body,
                    headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "FILE_TOO_LARGE"


def test_a_body_under_the_cap_is_read(small: RunningServer) -> None:
    with client(small, "alpaca") as alp:
        account = alp.post("/v1/accounts", json=alpaca_account()).json()
        r = alp.post(f"/v1/accounts/{account['id']}/documents/upload",
                     content=b"".join(_chunks(900 * 1024)),
                     headers={"content-type": "application/json"})
        assert r.status_code == 204


def test_default_caps_fit_each_dialects_documents() -> None:
    config = ServerConfig(db=":memory:")
    assert config.body_cap("alpaca") > 33_554_436 + 1024
    assert config.body_cap("buildmarkets") > (10_485_761 + 2) // 3 * 4 + 1024
    assert ServerConfig(db=":memory:", max_body_mb=2).body_cap("alpaca") == 2 * 1024 * 1024


def test_buildmarkets_routing_errors_use_its_envelope(small: RunningServer) -> None:
    with httpx.Client(base_url=small.base_url("buildmarkets"), headers=BM_HEADERS) as bm:
        r = bm.get("/v1/nothing")
        assert r.status_code == 404 and r.json()["error"]["request_id"].startswith("req_")
        r = bm.delete("/v1/accounts")
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
        assert "error" in r.json()


def test_start_in_thread_binds_loopback_on_a_free_port(tmp_path: Path) -> None:
    config = ServerConfig(db=tmp_path / "db.sqlite3", host="0.0.0.0", port=8700)
    with start_in_thread(config) as first, start_in_thread(config) as second:
        assert first.url.startswith("http://127.0.0.1:") and first.port != second.port
        assert first.base_url("alpaca") == first.url + "/alpaca"
        r = httpx.get(second.base_url("alpaca") + "/v1/accounts", auth=(DEV_KEY, DEV_SECRET))
        assert r.status_code == 200
        with pytest.raises(ValueError):
            first.base_url("other")
    with pytest.raises(httpx.ConnectError):
        httpx.get(first.url + "/healthz")
    second.stop()  # stopping twice is harmless


def test_a_newline_in_the_path_still_gets_the_dialect_envelope(small: RunningServer) -> None:
    """Starlette's mount pattern stops at a newline; such paths must not fall to a text 404."""
    account_path = "/v1/accounts/%F2%0A/actions/close"
    r = httpx.post(small.base_url("alpaca") + account_path, auth=(DEV_KEY, DEV_SECRET))
    assert r.status_code == 404 and r.json()["code"] == 40410000
    r = httpx.post(small.base_url("buildmarkets") + account_path, headers=BM_HEADERS)
    assert r.status_code == 404 and r.json()["error"]["request_id"].startswith("req_")
    r = httpx.get(small.url + "/other%0A")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
