"""Cleanup: ids recorded thread-safely, journaled, and closed through the profile's operation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from brokercert.catalog import Profile
from brokercert.cleanup import CleanupRegistry, CloseFailure, close_path
from brokercert.target import Credentials, build_target


def make_profile(scheme: str, **extra: Any) -> Profile:
    """A minimal valid profile, so these tests do not depend on the shipped specs."""
    auth: dict[str, Any] = {"scheme": scheme}
    if scheme == "api_key_headers":
        auth |= {"key_header": "X-API-Key", "secret_header": "X-API-Secret"}
    data: dict[str, Any] = {
        "dialect": "testdialect",
        "version": "1.0.0",
        "title": "Test dialect",
        "auth": auth,
        "id_param": "account_id",
        "operations": {
            "create_account": {"method": "POST", "path": "/v1/accounts", "success": 201},
            "close_account": {
                "method": "POST",
                "path": "/v1/accounts/{account_id}/actions/close",
                "success": 204,
            },
        },
        "limits": [],
        "state_machine": {
            "states": ["SUBMITTED", "ACCOUNT_CLOSED"],
            "initial": ["SUBMITTED"],
            "terminal": ["ACCOUNT_CLOSED"],
            "closed": "ACCOUNT_CLOSED",
            "transitions": {"SUBMITTED": ["ACCOUNT_CLOSED"]},
        },
        "error_envelope": {
            "code_path": "error.code",
            "message_path": "error.message",
            "code_type": "string",
        },
        "close": {"operation": "close_account", "again_status": [409]},
        "production_hosts": ["api.broker.example"],
        "rate_limit": {"requests": 10, "per_seconds": 1, "documented": True, "source": "docs"},
        "pagination": {"style": "cursor", "max_limit": 100, "over_max": ["reject"]},
        "create_initial_status": ["SUBMITTED"],
        "unknown_account_status": [404],
    }
    data |= extra
    return Profile.model_validate(data)

PROFILE = make_profile("api_key_headers")
ALPACA_LIKE = make_profile(
    "basic",
    operations={
        "create_account": {"method": "POST", "path": "/v1/accounts", "success": 200},
        "delete_account": {"method": "DELETE", "path": "/v1/accounts/{account_id}", "success": 204},
    },
    close={"operation": "delete_account", "again_status": [422]},
)


def test_add_forget_ids_in_order_and_idempotent() -> None:
    reg = CleanupRegistry()
    for account_id in ("b", "a", "c", "a"):
        reg.add(account_id)
    assert reg.ids() == ["b", "a", "c"] and len(reg) == 3 and "a" in reg
    reg.forget("a")
    reg.forget("never-added")
    assert reg.ids() == ["b", "c"]
    for bad in ("", "x\ny"):
        with pytest.raises(ValueError):
            reg.add(bad)


def test_concurrent_adds_lose_nothing(tmp_path: Path) -> None:
    reg = CleanupRegistry(tmp_path / "journal.txt")

    def worker(n: int) -> None:
        for i in range(200):
            reg.add(f"acc-{n}-{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(reg) == 1600
    assert sorted(CleanupRegistry.from_journal(tmp_path / "journal.txt").ids()) == sorted(reg.ids())


def test_journal_survives_an_interrupted_run(tmp_path: Path) -> None:
    journal = tmp_path / "run" / "created.txt"
    journal.parent.mkdir()
    first = CleanupRegistry(journal)
    first.add("one")
    first.add("two")
    first.add("three")
    first.forget("two")
    # the line is on disk as soon as add() returns, before any close
    assert journal.read_text().splitlines() == ["+one", "+two", "+three", "-two"]
    with journal.open("a") as fh:
        fh.write("+")  # a torn last line from a kill -9
    resumed = CleanupRegistry.from_journal(journal)
    assert resumed.ids() == ["one", "three"]
    resumed.forget("one")
    assert CleanupRegistry.from_journal(journal).ids() == ["three"]
    assert CleanupRegistry.from_journal(tmp_path / "missing.txt").ids() == []


def test_close_path_uses_profile_operation_and_quotes_ids() -> None:
    assert close_path(PROFILE, "abc") == ("POST", "/v1/accounts/abc/actions/close")
    assert close_path(ALPACA_LIKE, "a/b c") == ("DELETE", "/v1/accounts/a%2Fb%20c")


def test_close_all_outcomes_with_mock_transport(tmp_path: Path) -> None:
    statuses = {"ok": 204, "closed-before": 409, "gone": 404, "refused": 403, "boom": 500}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST" and request.headers["X-API-Key"] == "k"
        account_id = request.url.path.split("/")[4]
        if account_id == "down":
            raise httpx.ConnectError("connection reset")
        return httpx.Response(statuses[account_id])

    journal = tmp_path / "j.txt"
    reg = CleanupRegistry(journal)
    for account_id in ("ok", "closed-before", "gone", "refused", "boom", "down"):
        reg.add(account_id)
    target = build_target("http://127.0.0.1:9/bm", PROFILE, Credentials("k", "s"))
    with target.client(transport=httpx.MockTransport(handler)) as client:
        failures = reg.close_all(client, PROFILE)
    assert [f.account_id for f in failures] == ["refused", "boom", "down"]
    assert failures[0] == CloseFailure(
        "refused", "POST /v1/accounts/refused/actions/close answered HTTP 403"
    )
    assert "ConnectError" in failures[2].reason
    assert str(failures[1]).startswith("boom: ")
    assert reg.ids() == ["refused", "boom", "down"]
    assert CleanupRegistry.from_journal(journal).ids() == ["refused", "boom", "down"]


def test_close_all_budget_and_empty() -> None:
    reg = CleanupRegistry()
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(204))) as client:
        assert reg.close_all(client, PROFILE) == []
        reg.add("late")
        failures = reg.close_all(client, PROFILE, budget=-1)
    assert failures == [CloseFailure("late", "not attempted: cleanup time budget exhausted")]


class _Accounts(BaseHTTPRequestHandler):
    """Just enough of an alpaca-like server: DELETE closes, a second DELETE is 422."""

    accounts: dict[str, str] = {}
    lock = threading.Lock()

    def do_DELETE(self) -> None:
        account_id = self.path.rsplit("/", 1)[-1]
        with self.lock:
            status = self.accounts.get(account_id)
            if status is None:
                code = 404
            elif status == "ACCOUNT_CLOSED":
                code = 422
            else:
                self.accounts[account_id] = "ACCOUNT_CLOSED"
                code = 204
        self.send_response(code)
        body = b"" if code == 204 else json.dumps({"code": code, "message": "x"}).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[int, dict[str, str]]]:
    accounts = {"a1": "ACTIVE", "a2": "SUBMITTED", "a3": "ACCOUNT_CLOSED"}
    handler = type("Handler", (_Accounts,), {"accounts": accounts})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv.server_address[1], accounts
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_close_all_against_a_loopback_server(server: tuple[int, dict[str, str]]) -> None:
    port, accounts = server
    target = build_target(f"http://127.0.0.1:{port}", ALPACA_LIKE, Credentials("k", "s"))
    reg = CleanupRegistry()
    for account_id in ("a1", "a2", "a3", "unknown"):
        reg.add(account_id)
    with target.client() as client:
        assert reg.close_all(client, ALPACA_LIKE, workers=2) == []
    assert accounts == {"a1": "ACCOUNT_CLOSED", "a2": "ACCOUNT_CLOSED", "a3": "ACCOUNT_CLOSED"}
    assert reg.ids() == []
