"""The reference server under stress and abuse, complementing tests/test_server_*.py.

- 50 concurrent alpaca creates with one email: exactly one 200, 49 409, one account;
- concurrent uploads, closes and reads on the same accounts keep the database
  consistent (one close wins, closed accounts read ACCOUNT_CLOSED, every stored
  document is listed, no 5xx);
- kill -9 of `brokercert serve` during a burst of mixed writes (creates, uploads,
  closes): after a restart on the same --db every acknowledged write is there;
- bodies over the cap get 413 without the process growing (RSS from /proc);
- malformed JSON, wrong types, 1 MB strings, 10,000-level nesting and invalid UTF-8 get
  4xx on every operation that takes a body (never 5xx, never a hang);
- credentials of the other dialect, empty credentials and header tricks get 401;
- a bounded Schemathesis CLI run (-n 50 without the stateful phase, not_a_server_error)
  finds no 5xx (-n 100 with it, and the suite's own deep run, are in
  benchmarks/reliability.py).

The helpers are shared with benchmarks/reliability.py, which reruns them for figures.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server_support import PNG, alpaca_account, alpaca_document, bm_account, bm_document
from hostile_servers import served

from brokercert import catalog
from brokercert.server import RunningServer, ServerConfig, start_in_thread

KEY, SECRET = "stress-key-9d1", "stress-secret-e4f07a"
TOKEN = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_in_thread(ServerConfig(db=tmp_path_factory.mktemp("stress") / "db.sqlite3",
                                       key=KEY, secret=SECRET, kyc_delay=0))
    try:
        yield srv
    finally:
        srv.stop()


def client(base: str, dialect: str, *, connections: int = 20) -> httpx.Client:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    if dialect == "alpaca":
        return httpx.Client(base_url=f"{base}/alpaca", auth=(KEY, SECRET), timeout=60,
                            limits=limits)
    return httpx.Client(base_url=f"{base}/buildmarkets", timeout=60, limits=limits,
                        headers={"X-API-Key": KEY, "X-API-Secret": SECRET})


def create(c: httpx.Client, dialect: str) -> dict[str, Any]:
    r = c.post("/v1/accounts", json=alpaca_account() if dialect == "alpaca" else bm_account())
    assert r.status_code in (200, 201), r.text
    data: dict[str, Any] = r.json()
    return data


# -- concurrency ---------------------------------------------------------------------


def concurrent_same_email(base: str, n: int = 50) -> Counter[int]:
    """n simultaneous alpaca creates with one email; returns the status counts."""
    body = alpaca_account()
    barrier = threading.Barrier(n)
    with client(base, "alpaca", connections=n) as c, ThreadPoolExecutor(n) as pool:

        def one(_: int) -> int:
            barrier.wait(30)
            return c.post("/v1/accounts", json=body).status_code

        codes = Counter(pool.map(one, range(n)))
        found = c.get("/v1/accounts", params={"query": body["contact"]["email_address"]})
    assert found.status_code == 200
    codes[-len(found.json())] += 1  # the number of accounts listed, as a negative key
    return codes


def test_50_concurrent_creates_with_one_email_open_exactly_one_account(
    server: RunningServer,
) -> None:
    codes = concurrent_same_email(server.url, 50)
    assert codes[200] == 1 and codes[409] == 49, codes
    assert codes[-1] == 1, f"the list shows {[-k for k in codes if k < 0]} accounts"


@dataclass
class Mixed:
    """Outcome of concurrent uploads, closes and reads on the same accounts."""

    statuses: Counter[int] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)  # account -> closes that won
    uploaded: Counter[str] = field(default_factory=Counter)  # account -> uploads accepted
    requests: int = 0


def concurrent_uploads_and_closes(base: str, dialect: str, accounts: int = 8,
                                  seed: int = 7) -> tuple[Mixed, list[dict[str, Any]]]:
    out = Mixed()
    lock = threading.Lock()
    with client(base, dialect, connections=16) as c:
        ids = [create(c, dialect)["id"] for _ in range(accounts)]
        tasks: list[tuple[str, str]] = []
        for account_id in ids:
            tasks += [("upload", account_id)] * 5 + [("close", account_id)] * 3
            tasks += [("get", account_id)] * 3
        random.Random(seed).shuffle(tasks)

        def one(task: tuple[str, str]) -> None:
            kind, account_id = task
            path = f"/v1/accounts/{account_id}"
            if kind == "upload":
                doc = alpaca_document() if dialect == "alpaca" else bm_document()
                r = c.post(path + "/documents/upload", json=[doc] if dialect == "alpaca" else doc)
            elif kind == "close":
                r = c.delete(path) if dialect == "alpaca" else c.post(path + "/actions/close")
            else:
                r = c.get(path)
            with lock:
                out.requests += 1
                out.statuses[r.status_code] += 1
                if kind == "upload" and r.status_code == 204:
                    out.uploaded[account_id] += 1
                if kind == "close" and r.status_code == 204:
                    out.closed[account_id] += 1

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(one, tasks))
        final = []
        for account_id in ids:
            r = c.get(f"/v1/accounts/{account_id}")
            out.requests += 1
            out.statuses[r.status_code] += 1
            entry = {"id": account_id, "read": r.status_code,
                     "status": r.json().get("status") if r.status_code == 200 else None}
            if dialect == "alpaca":
                docs = c.get(f"/v1/accounts/{account_id}/documents")
                entry["documents"] = len(docs.json()) if docs.status_code == 200 else None
            final.append(entry)
    return out, final


@pytest.mark.parametrize("dialect", ["alpaca", "buildmarkets"])
def test_concurrent_uploads_and_closes_keep_the_database_consistent(
    server: RunningServer, dialect: str
) -> None:
    mixed, final = concurrent_uploads_and_closes(server.url, dialect)
    assert not [s for s in mixed.statuses if s >= 500], mixed.statuses
    for entry in final:
        assert entry["read"] == 200, entry
        assert entry["status"] == "ACCOUNT_CLOSED", entry
        assert mixed.closed[entry["id"]] == 1, f"{entry['id']}: closes that won"
        if dialect == "alpaca":
            assert entry["documents"] == mixed.uploaded[entry["id"]], entry


# -- kill -9 during a write burst --------------------------------------------------------


@dataclass
class Burst:
    acked: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, dialect, id)
    attempted: int = 0
    lost: list[tuple[str, str, str]] = field(default_factory=list)


def kill9_during_writes(tmp: Path, target_acks: int = 200, seconds: float = 15) -> Burst:
    """Mixed writes on four threads, kill -9 mid-burst, restart: what was acknowledged
    and is missing afterwards ends up in ``lost``."""
    db = tmp / "kill9.sqlite3"
    burst = Burst()
    lock = threading.Lock()
    stop = threading.Event()
    with served(db, KEY, SECRET) as srv:
        with client(srv.url, "alpaca") as a, client(srv.url, "buildmarkets") as b:
            seeds = {"alpaca": [create(a, "alpaca")["id"] for _ in range(6)],
                     "buildmarkets": [create(b, "buildmarkets")["id"] for _ in range(6)]}

        def writer(n: int) -> None:
            rng = random.Random(n)
            clients = {"alpaca": client(srv.url, "alpaca", connections=2),
                       "buildmarkets": client(srv.url, "buildmarkets", connections=2)}
            try:
                while not stop.is_set():
                    dialect = rng.choice(["alpaca", "buildmarkets"])
                    c = clients[dialect]
                    kind = rng.choice(["create", "create", "upload", "close"])
                    try:
                        with lock:
                            burst.attempted += 1
                        if kind == "create":
                            r = c.post("/v1/accounts", json=alpaca_account()
                                       if dialect == "alpaca" else bm_account())
                            ok, ident = r.status_code in (200, 201), r.json().get("id", "")
                        elif kind == "upload":
                            ident = rng.choice(seeds[dialect])
                            path = f"/v1/accounts/{ident}/documents/upload"
                            r = c.post(path, json=[alpaca_document()] if dialect == "alpaca"
                                       else bm_document())
                            ok = r.status_code == 204
                        else:
                            ident = create(c, dialect)["id"]
                            with lock:
                                burst.acked.append(("create", dialect, ident))
                                burst.attempted += 1  # the close that follows
                            path = f"/v1/accounts/{ident}"
                            r = c.delete(path) if dialect == "alpaca" else \
                                c.post(path + "/actions/close")
                            ok = r.status_code == 204
                    except (httpx.HTTPError, ValueError, AssertionError):
                        return  # the server is gone
                    if ok:
                        with lock:
                            burst.acked.append((kind, dialect, ident))
            finally:
                for c in clients.values():
                    c.close()

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + seconds
        while len(burst.acked) < target_acks and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.kill9()
        stop.set()
        for t in threads:
            t.join(30)
    with served(db, KEY, SECRET) as again:
        a, b = client(again.url, "alpaca"), client(again.url, "buildmarkets")
        try:
            uploads = Counter((d, i) for k, d, i in burst.acked if k == "upload")
            for kind, dialect, ident in burst.acked:
                c = a if dialect == "alpaca" else b
                r = c.get(f"/v1/accounts/{ident}")
                closed = r.status_code == 200 and r.json().get("status") == "ACCOUNT_CLOSED"
                if r.status_code != 200 or (kind == "close" and not closed):
                    burst.lost.append((kind, dialect, ident))
            for (dialect, ident), count in uploads.items():
                if dialect == "alpaca":
                    docs = a.get(f"/v1/accounts/{ident}/documents").json()
                    if len(docs) < count:
                        burst.lost.append(("upload", dialect, ident))
        finally:
            a.close()
            b.close()
    return burst


def test_kill_9_during_mixed_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    burst = kill9_during_writes(tmp_path)
    kinds = Counter(k for k, _, _ in burst.acked)
    assert kinds["create"] >= 50 and kinds["upload"] >= 10 and kinds["close"] >= 10, kinds
    assert burst.lost == [], burst.lost[:10]


# -- body cap and memory ---------------------------------------------------------------


def oversize_uploads(tmp: Path, count: int = 24, mib: int = 8) -> dict[str, Any]:
    """``count`` bodies of ``mib`` MiB against a 1 MiB cap (half of them chunked);
    statuses and the server's resident memory before and after, from /proc."""
    body = b'[{"document_type":"other","mime_type":"application/pdf","content":"' + \
        b"A" * (mib * 1024 * 1024) + b'"}]'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 1 << 16):
            yield body[i:i + (1 << 16)]

    with served(tmp / "cap.sqlite3", KEY, SECRET, "--max-body-mb", "1") as srv, \
            client(srv.url, "alpaca") as c:
        account = create(c, "alpaca")["id"]
        path = f"/v1/accounts/{account}/documents/upload"
        for _ in range(3):  # warm up: the first requests allocate what every request uses
            c.post(path, content=body, headers=JSON)
        before = srv.rss()
        statuses = Counter(
            c.post(path, content=body if i % 2 else chunks(), headers=JSON).status_code
            for i in range(count)
        )
        after = srv.rss()
        readable = c.get(f"/v1/accounts/{account}/documents").status_code
    return {"statuses": statuses, "rss_before": before, "rss_after": after,
            "body_bytes": len(body), "readable_after": readable}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_bodies_over_the_cap_get_413_without_the_process_growing(tmp_path: Path) -> None:
    result = oversize_uploads(tmp_path)
    assert result["statuses"] == Counter({413: 24}), result["statuses"]
    growth = result["rss_after"] - result["rss_before"]
    assert growth < 16 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB over 24 x 8 MiB"
    assert result["readable_after"] == 200


# -- bad input -------------------------------------------------------------------------

MIB = 1 << 20


@dataclass(frozen=True)
class BadInput:
    kind: str
    dialect: str
    operation: str
    body: bytes
    want_4xx: bool = True  # False: only "never 5xx" (a spec without a limit may accept)


def _op_path(dialect: str, operation: str, account: str) -> tuple[str, str]:
    return {
        "create": ("POST", "/v1/accounts"),
        "patch": ("PATCH", f"/v1/accounts/{account}"),
        "upload": ("POST", f"/v1/accounts/{account}/documents/upload"),
        "cip": ("POST", f"/v1/accounts/{account}/cip"),
    }[operation]


def _valid(dialect: str, operation: str) -> Any:
    if operation == "create":
        return alpaca_account() if dialect == "alpaca" else bm_account()
    if operation == "patch":
        return {"contact": {"phone_number": "+15555550100"}}
    if operation == "upload":
        return [alpaca_document()] if dialect == "alpaca" else bm_document()
    return {"kyc": {"id": "kyc-1", "risk_score": 1, "risk_level": "LOW"}}


def _with_big(dialect: str, operation: str, constrained: bool) -> Any:
    """The valid body with one string field made 1 MiB long; ``constrained``: a field whose
    spec pattern, enum or maxLength a 1 MiB value breaks."""
    big = "9" * MIB if constrained else "x" * MIB
    body = _valid(dialect, operation)
    doc = body[0] if isinstance(body, list) else body
    if operation == "create":
        if constrained:
            body["identity"]["date_of_birth"] = big
        else:
            body["identity"]["given_name"] = big
    elif operation == "patch":
        body["contact"] = {"email_address" if dialect == "alpaca" else "postal_code": big} \
            if constrained else {"city": big}
    elif operation == "upload":
        if constrained:
            doc["document_type"] = big
        else:
            doc["content"] = PNG
            doc["document_sub_type"] = big
    else:
        body["kyc"]["risk_level" if constrained else "id"] = big
    return body


def bad_inputs() -> list[BadInput]:
    ops = {"alpaca": ["create", "patch", "upload", "cip"],
           "buildmarkets": ["create", "patch", "upload"]}
    out = []
    deep_object = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    deep_array = b"[" * 10_000 + b"]" * 10_000
    for dialect, names in ops.items():
        for op in names:
            valid = json.dumps(_valid(dialect, op)).encode()
            out += [
                BadInput("malformed_json", dialect, op, valid[:-1]),
                BadInput("malformed_json", dialect, op, b"{'contact': 1}"),
                BadInput("malformed_json", dialect, op, b'{"a": 1,}'),
                BadInput("malformed_json", dialect, op, b"\x00\x01"),
                BadInput("malformed_json", dialect, op, b""),
                BadInput("wrong_type", dialect, op, b"null"),
                BadInput("wrong_type", dialect, op, b'"a string"'),
                BadInput("wrong_type", dialect, op, b"12"),
                BadInput("wrong_type", dialect, op,
                         b"[]" if not valid.startswith(b"[") else b"{}"),
                BadInput("wrong_type", dialect, op, _retyped(dialect, op)),
                BadInput("huge_string", dialect, op,
                         json.dumps(_with_big(dialect, op, True)).encode()),
                BadInput("huge_string", dialect, op,
                         json.dumps(_with_big(dialect, op, False)).encode(), want_4xx=False),
                # a 1 MiB member name: a CIP record may carry members the spec does not list
                BadInput("huge_string", dialect, op, b'{"' + b"k" * MIB + b'": 1}',
                         want_4xx=op != "cip"),
                BadInput("deep_nesting", dialect, op, deep_object),
                BadInput("deep_nesting", dialect, op, deep_array),
                BadInput("deep_nesting", dialect, op,
                         valid[:-1] + b', "x": ' + deep_object + b"}" if valid.endswith(b"}")
                         else b"[" + deep_object + b"]"),
                BadInput("invalid_utf8", dialect, op, valid.replace(b"Springfield", b"Spr\xffng")
                         .replace(b"Denver", b"Den\xc3\x28r").replace(b"passport", b"pa\xfe")
                         .replace(b"+15555550100", b"\xed\xa0\x80") .replace(b"LOW", b"L\xc0W")),
                BadInput("invalid_utf8", dialect, op, b'{"contact": "\xff\xfe\xfd"}'),
            ]
    return out


def _retyped(dialect: str, operation: str) -> bytes:
    """The valid body with a field of the wrong JSON type."""
    body = _valid(dialect, operation)
    doc = body[0] if isinstance(body, list) else body
    if operation == "create":
        body["contact"] = ["not", "an", "object"]
    elif operation == "patch":
        body["contact"] = 42
    elif operation == "upload":
        doc["document_type"] = 7
    else:
        body["kyc"] = "LOW"
    return json.dumps(body).encode()


def send_bad_inputs(base: str, cases: list[BadInput],
                    timeout: float = 30) -> list[tuple[BadInput, int, float]]:
    """(case, status or -1 on a transport error, seconds) for every case."""
    results = []
    with client(base, "alpaca") as a, client(base, "buildmarkets") as b:
        accounts = {"alpaca": create(a, "alpaca")["id"],
                    "buildmarkets": create(b, "buildmarkets")["id"]}
        for case in cases:
            c = a if case.dialect == "alpaca" else b
            method, path = _op_path(case.dialect, case.operation, accounts[case.dialect])
            start = time.monotonic()
            try:
                status = c.request(method, path, content=case.body, headers=JSON,
                                   timeout=timeout).status_code
            except httpx.HTTPError:
                status = -1
            results.append((case, status, time.monotonic() - start))
        # the accounts are still intact and readable afterwards
        for dialect, account in accounts.items():
            c = a if dialect == "alpaca" else b
            assert c.get(f"/v1/accounts/{account}").status_code == 200
    return results


def test_bad_input_gets_4xx_never_5xx_never_a_hang(server: RunningServer) -> None:
    cases = bad_inputs()
    results = send_bad_inputs(server.url, cases)
    problems = []
    for case, status, seconds in results:
        label = f"{case.kind} {case.dialect} {case.operation} ({len(case.body)} bytes)"
        if status == -1 or status >= 500 or seconds > 20:
            problems.append(f"{label}: HTTP {status} after {seconds:.1f}s")
        elif case.want_4xx and not 400 <= status < 500:
            problems.append(f"{label}: HTTP {status}, expected 4xx")
    assert problems == [], "\n".join(problems)
    assert Counter(c.kind for c in cases) == Counter(
        {"malformed_json": 35, "wrong_type": 35, "huge_string": 21, "deep_nesting": 21,
         "invalid_utf8": 14})


def nesting_near_the_recursion_limit(base: str) -> list[str]:
    """Nesting just under what json.loads refuses is parsed, then validated and stored:
    every depth from 940 to 999 on every body operation; the 5xx answers."""
    found = []
    with client(base, "alpaca") as a, client(base, "buildmarkets") as b:
        acc, bacc = create(a, "alpaca")["id"], create(b, "buildmarkets")["id"]
        for depth in range(940, 1000):
            obj = '{"a":' * depth + "1" + "}" * depth
            sends: dict[str, Callable[[], httpx.Response]] = {
                "alpaca create": lambda obj=obj: a.post(
                    "/v1/accounts", headers=JSON,
                    content=json.dumps(alpaca_account())[:-1] + ', "trusted_contact": ' + obj
                    + "}"),
                "alpaca upload": lambda obj=obj: a.post(
                    f"/v1/accounts/{acc}/documents/upload", headers=JSON,
                    content='[{"document_type":"w8ben","content_data":' + obj + "}]"),
                "alpaca cip": lambda obj=obj: a.post(f"/v1/accounts/{acc}/cip", headers=JSON,
                                                     content='{"kyc": ' + obj + "}"),
                "alpaca patch": lambda obj=obj: a.patch(f"/v1/accounts/{acc}", headers=JSON,
                                                        content='{"contact": ' + obj + "}"),
                "buildmarkets upload": lambda obj=obj: b.post(
                    f"/v1/accounts/{bacc}/documents/upload", headers=JSON,
                    content='{"document_type": "w8ben", "content_data": ' + obj + "}"),
                "buildmarkets patch": lambda obj=obj: b.patch(
                    f"/v1/accounts/{bacc}", headers=JSON, content='{"contact": ' + obj + "}"),
            }
            for name, send in sends.items():
                status = send().status_code
                if status >= 500:
                    found.append(f"{name} at depth {depth}: HTTP {status}")
    return found


def test_nesting_just_under_the_parser_limit_is_not_a_server_error(
    server: RunningServer,
) -> None:
    assert nesting_near_the_recursion_limit(server.url) == []


# -- authentication tricks -------------------------------------------------------------

BAD_AUTH: dict[str, tuple[str, list[tuple[bytes, bytes]]]] = {
    "alpaca: no credentials": ("alpaca", []),
    "alpaca: empty Authorization": ("alpaca", [(b"Authorization", b"")]),
    "alpaca: Basic with no token": ("alpaca", [(b"Authorization", b"Basic")]),
    "alpaca: Basic, blanks and padding": ("alpaca", [(b"Authorization", b"Basic  \t =")]),
    "alpaca: token split by a space": (
        "alpaca", [(b"Authorization", f"Basic {TOKEN[:6]} {TOKEN[6:]}".encode())]),
    "alpaca: token without padding": (
        "alpaca", [(b"Authorization", f"Basic {TOKEN.rstrip('=')}".encode())]
        if TOKEN.endswith("=") else [(b"Authorization", f"Basic {TOKEN}=".encode())]),
    "alpaca: empty key and secret": (
        "alpaca", [(b"Authorization", b"Basic " + base64.b64encode(b":"))]),
    "alpaca: key only": (
        "alpaca", [(b"Authorization", b"Basic " + base64.b64encode(KEY.encode() + b":"))]),
    "alpaca: secret with a trailing blank": (
        "alpaca", [(b"Authorization", b"Basic " + base64.b64encode(f"{KEY}:{SECRET} ".encode()))]),
    "alpaca: key and secret swapped": (
        "alpaca", [(b"Authorization", b"Basic " + base64.b64encode(f"{SECRET}:{KEY}".encode()))]),
    "alpaca: Bearer with the token": ("alpaca", [(b"Authorization", f"Bearer {TOKEN}".encode())]),
    "alpaca: buildmarkets headers": (
        "alpaca", [(b"X-API-Key", KEY.encode()), (b"X-API-Secret", SECRET.encode())]),
    "alpaca: key in Basic, secret in X-API-Secret": (
        "alpaca", [(b"Authorization", b"Basic " + base64.b64encode(KEY.encode() + b":")),
                   (b"X-API-Secret", SECRET.encode())]),
    "alpaca: non-ASCII token": ("alpaca", [(b"Authorization", b"Basic \xe9\xe9\xe9")]),
    "buildmarkets: no credentials": ("buildmarkets", []),
    "buildmarkets: empty key and secret": (
        "buildmarkets", [(b"X-API-Key", b""), (b"X-API-Secret", b"")]),
    "buildmarkets: key only": ("buildmarkets", [(b"X-API-Key", KEY.encode())]),
    "buildmarkets: secret only": ("buildmarkets", [(b"X-API-Secret", SECRET.encode())]),
    "buildmarkets: alpaca Basic": (
        "buildmarkets", [(b"Authorization", f"Basic {TOKEN}".encode())]),
    "buildmarkets: key with the secret in Basic (the other dialect's way)": (
        "buildmarkets", [(b"X-API-Key", KEY.encode()),
                         (b"Authorization", f"Basic {TOKEN}".encode())]),
    "buildmarkets: key and secret swapped": (
        "buildmarkets", [(b"X-API-Key", SECRET.encode()), (b"X-API-Secret", KEY.encode())]),
    "buildmarkets: secret with a blank inside": (
        "buildmarkets", [(b"X-API-Key", KEY.encode()),
                         (b"X-API-Secret", (SECRET[:3] + " " + SECRET[3:]).encode())]),
    "buildmarkets: secret prefix": (
        "buildmarkets", [(b"X-API-Key", KEY.encode()), (b"X-API-Secret", SECRET[:-1].encode())]),
    "buildmarkets: secret as X-API-Key twice": (
        "buildmarkets", [(b"X-API-Key", KEY.encode()), (b"X-API-Key", SECRET.encode())]),
    "buildmarkets: non-ASCII key": (
        "buildmarkets", [(b"X-API-Key", b"\xe9" + KEY.encode()),
                         (b"X-API-Secret", SECRET.encode())]),
}
DUPLICATES: dict[str, tuple[str, list[tuple[bytes, bytes]]]] = {
    "alpaca: two Authorization headers, the first valid": (
        "alpaca", [(b"Authorization", f"Basic {TOKEN}".encode()),
                   (b"Authorization", b"Basic " + base64.b64encode(b"intruder:x"))]),
    "buildmarkets: two X-API-Key headers, the first valid": (
        "buildmarkets", [(b"X-API-Key", KEY.encode()), (b"X-API-Key", b"intruder"),
                         (b"X-API-Secret", SECRET.encode())]),
}
GOOD_AUTH: dict[str, tuple[str, list[tuple[bytes, bytes]]]] = {
    "alpaca: lower-case header name and scheme": (
        "alpaca", [(b"authorization", f"basic {TOKEN}".encode())]),
    "buildmarkets: lower-case header names": (
        "buildmarkets", [(b"x-api-key", KEY.encode()), (b"x-api-secret", SECRET.encode())]),
}
OPERATIONS = [("GET", "/v1/accounts"), ("POST", "/v1/accounts"),
              ("GET", "/v1/accounts/00000000-0000-4000-8000-000000000000")]


def auth_statuses(base: str, cases: dict[str, tuple[str, list[tuple[bytes, bytes]]]],
                  ) -> dict[str, set[int]]:
    """The statuses each header set gets on a few operations (no client defaults added)."""
    out: dict[str, set[int]] = {}
    with httpx.Client(timeout=30) as c:
        for name, (dialect, headers) in cases.items():
            seen = set()
            for method, path in OPERATIONS:
                request = c.build_request(method, f"{base}/{dialect}{path}",
                                          content=b"{}" if method == "POST" else None)
                raw = [(k, v) for k, v in request.headers.raw
                       if k.lower() not in (b"authorization", b"x-api-key", b"x-api-secret")]
                request.headers = httpx.Headers(raw + headers)
                seen.add(c.send(request).status_code)
            out[name] = seen
    return out


def test_credentials_of_the_other_dialect_empty_ones_and_header_tricks_get_401(
    server: RunningServer,
) -> None:
    statuses = auth_statuses(server.url, BAD_AUTH)
    wrong = {name: s for name, s in statuses.items() if s != {401}}
    assert wrong == {}


def test_header_names_are_case_insensitive(server: RunningServer) -> None:
    statuses = auth_statuses(server.url, GOOD_AUTH)
    assert all(401 not in s and not any(x >= 500 for x in s) for s in statuses.values()), statuses


@pytest.mark.parametrize("name", sorted(DUPLICATES))
def test_duplicate_credential_headers_get_401(server: RunningServer, name: str) -> None:
    assert auth_statuses(server.url, {name: DUPLICATES[name]})[name] == {401}


# -- bounded fuzzing ---------------------------------------------------------------------


def schemathesis_no_5xx(base_url: str, dialect: str, max_examples: int,
                        workdir: Path, timeout: float = 900,
                        phases: str = "examples,coverage,fuzzing,stateful") -> dict[str, Any]:
    """Run the Schemathesis CLI with only the not_a_server_error check."""
    spec = catalog.load(dialect).spec_path
    auth = ["-H", f"Authorization: Basic {TOKEN}"] if dialect == "alpaca" else \
        ["-H", f"X-API-Key: {KEY}", "-H", f"X-API-Secret: {SECRET}"]
    cli = Path(sys.executable).with_name("schemathesis")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "schemathesis.cli"]
    start = time.monotonic()
    proc = subprocess.run(
        [*command, "run", str(spec), "--url", base_url, *auth, "-n", str(max_examples),
         "-c", "not_a_server_error", "--phases", phases, "--request-timeout", "20",
         "--seed", "20261123",
         "--no-color"],
        capture_output=True, text=True, timeout=timeout, cwd=workdir,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    generated = re.search(r"(\d+) generated", proc.stdout)
    return {"exit": proc.returncode, "seconds": time.monotonic() - start,
            "cases": int(generated.group(1)) if generated else 0, "output": proc.stdout[-3000:]}


def test_bounded_schemathesis_finds_no_server_error(
    server: RunningServer, tmp_path: Path
) -> None:
    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip(["alpaca", "buildmarkets"], pool.map(
            lambda d: schemathesis_no_5xx(f"{server.url}/{d}", d, 50, tmp_path,
                                          phases="examples,coverage,fuzzing"),
            ["alpaca", "buildmarkets"]), strict=True))
    for dialect, run in runs.items():
        assert run["exit"] == 0, f"{dialect}:\n{run['output']}"
        assert run["cases"] >= 300, f"{dialect}: only {run['cases']} cases\n{run['output']}"
