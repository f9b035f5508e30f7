"""Storage, status clock, request validation and cursors of the reference server (units)."""

from __future__ import annotations

import base64
import random
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from brokercert import catalog
from brokercert.server._common import decode_base64, decoded_size, parse_moment
from brokercert.server._cursor import BadCursor, Cursors
from brokercert.server._lifecycle import Clock, PlanError, check_plan
from brokercert.server._storage import AccountRow, DuplicateEmail, NewDocument, Step, Storage
from brokercert.server._validation import (
    _LINEAR_FORMS,
    Invalid,
    Problem,
    compile_pattern,
    operation_schemas,
    required_at,
)

PLAN = [Step("SUBMITTED"), Step("APPROVED"), Step("ACTIVE")]


@pytest.fixture()
def store(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "db.sqlite3")


def add(store: Storage, n: int, dialect: str = "alpaca", email: str | None = None,
        **kw: Any) -> AccountRow:
    return store.insert_account(id=f"00000000-0000-4000-8000-{n:012d}", dialect=dialect,
                                email=email, plan=PLAN, now=0.0, body={"n": n}, **kw)


def doc(doc_id: str) -> NewDocument:
    return NewDocument(doc_id, "other", None, "application/pdf", 3, "ab")


# ------------------------------------------------------------------ storage


def test_accounts_round_trip_and_stay_in_their_dialect(store: Storage) -> None:
    row = add(store, 1)
    got = store.get_account("alpaca", row.id)
    assert got == row and got.body == {"n": 1, "created_at": row.created_at}
    assert store.get_account("buildmarkets", row.id) is None
    store.update_account(row.id, {"n": 2}, plan=[Step("ACCOUNT_CLOSED")], step=0, stepped_at=5.0)
    again = store.get_account("alpaca", row.id)
    assert again is not None and again.body == {"n": 2}
    assert again.plan == (Step("ACCOUNT_CLOSED"),) and again.stepped_at == 5.0


def test_email_is_unique_per_dialect_and_null_is_not_checked(store: Storage) -> None:
    add(store, 1, email="a@example.com")
    add(store, 2, dialect="buildmarkets", email="a@example.com")
    add(store, 3)
    add(store, 4)
    with pytest.raises(DuplicateEmail):
        add(store, 5, email="a@example.com", documents=[doc("d5")])
    assert store.get_account("alpaca", "00000000-0000-4000-8000-000000000005") is None
    assert store.documents("00000000-0000-4000-8000-000000000005") == []
    with pytest.raises(DuplicateEmail):
        store.update_account("00000000-0000-4000-8000-000000000003", {}, email="a@example.com")


def test_concurrent_inserts_of_one_email_keep_exactly_one(store: Storage) -> None:
    results: list[str] = []
    barrier = threading.Barrier(20)

    def insert(n: int) -> None:
        barrier.wait()
        try:
            add(store, n, email="same@example.com")
            results.append("ok")
        except DuplicateEmail:
            results.append("dup")

    threads = [threading.Thread(target=insert, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["dup"] * 19 + ["ok"]


def test_documents_are_written_all_or_nothing(store: Storage) -> None:
    row = add(store, 1)
    store.add_documents(row.id, [doc("d1")])
    with pytest.raises(sqlite3.IntegrityError):
        store.add_documents(row.id, [doc("d2"), doc("d1")])
    assert [d.id for d in store.documents(row.id)] == ["d1"]
    data = NewDocument("w", "w8ben", None, "application/json", 0, None, {"name": "x"})
    store.add_documents(row.id, [data])
    assert store.documents(row.id)[-1].content_data == {"name": "x"}


def test_list_order_windows_and_limit(store: Storage) -> None:
    rows = [add(store, n) for n in range(5)]
    add(store, 9, dialect="buildmarkets")
    stamps = [r.created_at for r in rows]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
    newest = [r.id for r in store.list_accounts("alpaca")]
    assert newest == [r.id for r in reversed(rows)]
    assert [r.id for r in store.list_accounts("alpaca", descending=False, limit=2)] == [
        rows[0].id, rows[1].id]
    window = store.list_accounts("alpaca", created_after=stamps[0], created_before=stamps[4])
    assert [r.id for r in window] == [rows[3].id, rows[2].id, rows[1].id]
    after = store.list_accounts("alpaca", descending=False, after_seq=rows[2].seq)
    assert [r.id for r in after] == [rows[3].id, rows[4].id]


def test_cip_keeps_its_first_id_and_creation_time(store: Storage) -> None:
    row = add(store, 1)
    assert store.get_cip(row.id) is None
    first = store.put_cip(row.id, "c1", {"kyc": {"id": "a"}})
    second = store.put_cip(row.id, "c2", {"kyc": {"id": "b"}})
    assert (second.id, second.created_at) == ("c1", first.created_at)
    assert second.body == {"kyc": {"id": "b"}} and second.updated_at >= first.updated_at


def test_a_reopened_database_has_everything_and_runs_in_wal_mode(tmp_path: Path) -> None:
    store = Storage(tmp_path / "db.sqlite3")
    row = add(store, 1, email="x@example.com", documents=[doc("d1")])
    store.close()
    again = Storage(tmp_path / "db.sqlite3")
    assert again.get_account("alpaca", row.id) == row
    assert [d.id for d in again.documents(row.id)] == ["d1"]
    with pytest.raises(DuplicateEmail):
        add(again, 2, email="x@example.com")
    again.close()
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


# ------------------------------------------------------------------ status clock


def row_with(plan: list[Step], step: int = 0, stepped_at: float = 100.0) -> AccountRow:
    return AccountRow(1, "a", "alpaca", "", tuple(plan), step, stepped_at, {})


def test_zero_delay_moves_one_step_per_read_and_stops_at_the_end() -> None:
    clock = Clock(0, now=lambda: 7.0)
    row = row_with(PLAN)
    assert clock.position(row, reading=False).current.status == "SUBMITTED"
    pos = clock.position(row, reading=True)
    assert (pos.current.status, pos.step, pos.changed) == ("APPROVED", 1, True)
    last = clock.position(row_with(PLAN, step=2), reading=True)
    assert (last.current.status, last.changed) == ("ACTIVE", False)


def test_positive_delay_moves_by_elapsed_time() -> None:
    now = [100.0]
    clock = Clock(2.0, now=lambda: now[0])
    row = row_with(PLAN)
    assert clock.position(row, reading=True).current.status == "SUBMITTED"
    now[0] = 102.5
    pos = clock.position(row, reading=False)
    assert (pos.current.status, pos.stepped_at, pos.changed) == ("APPROVED", 102.0, True)
    now[0] = 500.0
    assert clock.position(row, reading=False).current.status == "ACTIVE"
    with pytest.raises(ValueError):
        Clock(-1)


def test_plans_must_follow_the_state_machine() -> None:
    machine = catalog.load("alpaca").profile.state_machine
    assert check_plan(machine, PLAN) == tuple(PLAN)
    with pytest.raises(PlanError):
        check_plan(machine, [Step("ACTIVE"), Step("SUBMITTED")])
    with pytest.raises(PlanError):
        check_plan(machine, [Step("DISABLED")])
    bm = catalog.load("buildmarkets").profile.state_machine
    with pytest.raises(PlanError):
        check_plan(bm, [Step("SUBMITTED"), Step("REJECTED"), Step("ACTIVE")])


# ------------------------------------------------------------------ validation


def test_linear_forms_of_the_base64_patterns_agree_with_the_originals() -> None:
    rng = random.Random(7)
    alphabet = "AZaz09+/=-\n "
    samples = {base64.b64encode(rng.randbytes(n)).decode() for n in range(12)}
    samples |= {"".join(rng.choice(alphabet) for _ in range(rng.randrange(14)))
                for _ in range(20000)}
    samples |= {s + "\n" for s in list(samples)[:200]}
    for original in _LINEAR_FORMS:
        ecma = re.compile(original[:-1] + r"\Z")
        fast = compile_pattern(original)
        for s in samples:
            assert fast(s) == bool(ecma.search(s)), (original, s)
    assert not compile_pattern("^a$")("a\n") and compile_pattern("^a$")("a")


def test_problems_name_the_dotted_path() -> None:
    ops = operation_schemas(catalog.load("buildmarkets").spec)
    create = ops[("POST", "/v1/accounts")]
    body = {"contact": {"email_address": "a@example.com", "city": "X", "state": "CO",
                        "postal_code": "80202"},
            "identity": {"given_name": "A", "family_name": "B", "date_of_birth": "1990-01-01",
                         "tax_id": "123456789"},
            "agreements": [{"agreement": "customer_agreement", "signed_at": "soon"}],
            "investment_profile": {"risk_tolerance": "moderate", "investment_objective": "other",
                                   "annual_income_range": "a", "net_worth_range": "b",
                                   "liquid_net_worth_range": "c"}}
    with pytest.raises(Invalid) as caught:
        create.validate_body(body)
    assert caught.value.problem.field == "agreements[0].signed_at"
    assert caught.value.problem.kind == "format"
    del body["identity"]["tax_id"]
    with pytest.raises(Invalid) as caught:
        create.validate_body(body)
    assert (caught.value.problem.kind, caught.value.problem.field) == ("required",
                                                                        "identity.tax_id")
    assert required_at(create.body.schema, ("contact", "city"))
    assert not required_at(create.body.schema, ("contact", "unit"))
    assert Problem("type", (), "x").field == ""


def test_cursors_are_opaque_and_tamper_evident() -> None:
    cursors = Cursors(b"secret")
    token = cursors.issue(42, True)
    assert "42" not in token and cursors.read(token) == (42, True)
    for bad in (token[:-2], token + "x", "", "!!!", Cursors(b"other").issue(42, True)):
        with pytest.raises(BadCursor):
            cursors.read(bad)


def test_moments_and_base64_sizes() -> None:
    assert parse_moment("2024-01-02") == "2024-01-02T00:00:00.000000Z"
    assert parse_moment("2024-01-02t10:00:00+02:00") == "2024-01-02T08:00:00.000000Z"
    assert parse_moment("2016-12-31T23:59:60Z") == "2016-12-31T23:59:59.000000Z"
    with pytest.raises(ValueError):
        parse_moment("yesterday")
    for n in range(8):
        text = base64.b64encode(bytes(n)).decode()
        assert decoded_size(text) == n
        if n:
            assert decode_base64(text)[0] == n
    with pytest.raises(ValueError):
        decode_base64("QUJD\n")
