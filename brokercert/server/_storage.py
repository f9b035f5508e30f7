"""SQLite storage for the reference server: accounts, uploaded documents, CIP records.

Durability: the database runs in WAL mode with ``synchronous=NORMAL`` and every write
is one transaction that commits before the HTTP response is sent. A commit appends
the transaction to the WAL file with write(2); the bytes then live in the kernel's
page cache, which survives the death of the process (kill -9), so every acknowledged
write is found again when the WAL is replayed at the next open. Only a power loss or
kernel crash could drop the last commits (NORMAL skips the fsync per commit, which
is what makes writes fast); that is outside what the server promises.

One connection is shared by all threads behind a lock: every statement is a
sub-millisecond primary-key lookup or insert, so serialising them costs less than a
pool would, and it makes the duplicate-email check trivially atomic on top of the
UNIQUE index (the index, not a check-then-insert, is what refuses the duplicate).

Documents are stored as metadata plus size and SHA-256 digest, not their bytes: no
operation of either spec reads an uploaded file back, and keeping 32 MB blobs would
make each upload a 32 MB write to the WAL for nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    dialect TEXT NOT NULL,
    created_at TEXT NOT NULL,
    email TEXT,
    plan TEXT NOT NULL,
    step INTEGER NOT NULL,
    stepped_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS accounts_email ON accounts(dialect, email);
CREATE INDEX IF NOT EXISTS accounts_dialect ON accounts(dialect, seq);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at TEXT NOT NULL,
    document_type TEXT NOT NULL,
    document_sub_type TEXT,
    mime_type TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT,
    content_data TEXT
);
CREATE INDEX IF NOT EXISTS documents_account ON documents(account_id);
CREATE TABLE IF NOT EXISTS cip (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    body TEXT NOT NULL
);
"""

_ACCOUNT_COLS = "seq, id, dialect, created_at, plan, step, stepped_at, body"


class DuplicateEmail(Exception):
    """An account of the same dialect already uses this email address."""


def rfc3339(moment: datetime) -> str:
    """UTC timestamp with microseconds and a Z, so that strings sort as times do."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Step:
    """One planned status (and the KYC status that goes with it, where a dialect has one)."""

    status: str
    kyc: str | None = None


@dataclass(frozen=True)
class AccountRow:
    seq: int
    id: str
    dialect: str
    created_at: str
    plan: tuple[Step, ...]
    step: int
    stepped_at: float
    body: dict[str, Any]


@dataclass(frozen=True)
class DocumentRow:
    id: str
    account_id: str
    created_at: str
    document_type: str
    document_sub_type: str | None
    mime_type: str | None
    size: int
    sha256: str | None
    content_data: Any


@dataclass(frozen=True)
class CipRow:
    id: str
    account_id: str
    created_at: str
    updated_at: str
    body: dict[str, Any]


@dataclass(frozen=True)
class NewDocument:
    id: str
    document_type: str
    document_sub_type: str | None
    mime_type: str | None
    size: int
    sha256: str | None
    content_data: Any = None


def _plan_json(plan: Sequence[Step]) -> str:
    return json.dumps([[s.status, s.kyc] for s in plan])


def _account(row: tuple[Any, ...]) -> AccountRow:
    seq, id_, dialect, created_at, plan, step, stepped_at, body = row
    return AccountRow(
        seq=seq,
        id=id_,
        dialect=dialect,
        created_at=created_at,
        plan=tuple(Step(s, k) for s, k in json.loads(plan)),
        step=step,
        stepped_at=stepped_at,
        body=json.loads(body),
    )


class Storage:
    """Thread-safe access to the server's SQLite database."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        # isolation_level=None: we open every transaction ourselves with BEGIN IMMEDIATE.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._last_created = datetime.min.replace(tzinfo=UTC)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _next_created(self) -> str:
        """A creation time strictly after the previous one, so time order equals seq order."""
        now = datetime.now(UTC)
        if now <= self._last_created:
            now = self._last_created + timedelta(microseconds=1)
        self._last_created = now
        return rfc3339(now)

    # accounts ---------------------------------------------------------------------

    def insert_account(
        self,
        *,
        id: str,
        dialect: str,
        email: str | None,
        plan: Sequence[Step],
        now: float,
        body: dict[str, Any],
        documents: Sequence[NewDocument] = (),
    ) -> AccountRow:
        """Insert one account (and the documents sent with it) in one transaction.

        ``email`` (if not None) must be unique within the dialect: the UNIQUE index
        refuses a duplicate, also under concurrent requests. The creation time is
        assigned here, under the lock, and written into ``body["created_at"]``.
        """
        with self._lock:
            created_at = self._next_created()
            body["created_at"] = created_at
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO accounts (id, dialect, created_at, email, plan, step, stepped_at,"
                    " body) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                    (id, dialect, created_at, email, _plan_json(plan), now, json.dumps(body)),
                )
                self._insert_documents(id, created_at, documents)
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._db.execute("ROLLBACK")
                if "email" in str(exc):
                    raise DuplicateEmail(email) from None
                raise
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            seq = cur.lastrowid
        assert seq is not None
        return AccountRow(seq, id, dialect, created_at, tuple(plan), 0, now, body)

    def get_account(self, dialect: str, account_id: str) -> AccountRow | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE id = ? AND dialect = ?",
                (account_id, dialect),
            ).fetchone()
        return _account(row) if row else None

    def set_progress(self, account_id: str, step: int, stepped_at: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE accounts SET step = ?, stepped_at = ? WHERE id = ?",
                (step, stepped_at, account_id),
            )

    def update_account(
        self,
        account_id: str,
        body: dict[str, Any],
        *,
        plan: Sequence[Step] | None = None,
        step: int | None = None,
        stepped_at: float | None = None,
        email: str | None = None,
    ) -> None:
        """Replace the stored body (and optionally the plan, progress and unique email)
        in one statement; a taken email raises :class:`DuplicateEmail`."""
        sets = ["body = ?"]
        args: list[Any] = [json.dumps(body)]
        if email is not None:
            sets.append("email = ?")
            args.append(email)
        if plan is not None:
            sets.append("plan = ?")
            args.append(_plan_json(plan))
        if step is not None:
            sets.append("step = ?")
            args.append(step)
        if stepped_at is not None:
            sets.append("stepped_at = ?")
            args.append(stepped_at)
        args.append(account_id)
        with self._lock:
            try:
                self._db.execute(f"UPDATE accounts SET {', '.join(sets)} WHERE id = ?", args)
            except sqlite3.IntegrityError as exc:
                if "email" in str(exc):
                    raise DuplicateEmail(email) from None
                raise

    def list_accounts(
        self,
        dialect: str,
        *,
        descending: bool = True,
        created_after: str | None = None,
        created_before: str | None = None,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> Iterable[AccountRow]:
        """Accounts of one dialect in creation order (newest first unless ``descending=False``).

        The rows are fetched under the lock and parsed lazily, so a caller that stops
        after a page does not pay for the rest.
        """
        where = ["dialect = ?"]
        args: list[Any] = [dialect]
        for clause, value in (
            ("created_at > ?", created_after),
            ("created_at < ?", created_before),
            ("seq < ?", before_seq),
            ("seq > ?", after_seq),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        order = "DESC" if descending else "ASC"
        sql = (f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE {' AND '.join(where)}"
               f" ORDER BY seq {order}")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return (_account(r) for r in rows)

    # documents and CIP ------------------------------------------------------------------

    def _insert_documents(
        self, account_id: str, created_at: str, docs: Sequence[NewDocument]
    ) -> list[DocumentRow]:
        out = []
        for d in docs:
            data = None if d.content_data is None else json.dumps(d.content_data)
            self._db.execute(
                "INSERT INTO documents (id, account_id, created_at, document_type,"
                " document_sub_type, mime_type, size, sha256, content_data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (d.id, account_id, created_at, d.document_type, d.document_sub_type,
                 d.mime_type, d.size, d.sha256, data),
            )
            out.append(
                DocumentRow(d.id, account_id, created_at, d.document_type, d.document_sub_type,
                            d.mime_type, d.size, d.sha256, d.content_data)
            )
        return out

    def add_documents(self, account_id: str, docs: Sequence[NewDocument]) -> list[DocumentRow]:
        """Store several documents in one transaction (all or none)."""
        with self._lock:
            created_at = rfc3339(datetime.now(UTC))
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = self._insert_documents(account_id, created_at, docs)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def documents(self, account_id: str) -> list[DocumentRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, account_id, created_at, document_type, document_sub_type, mime_type,"
                " size, sha256, content_data FROM documents WHERE account_id = ?"
                " ORDER BY created_at, rowid",
                (account_id,),
            ).fetchall()
        return [
            DocumentRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                        None if r[8] is None else json.loads(r[8]))
            for r in rows
        ]

    def put_cip(self, account_id: str, cip_id: str, body: dict[str, Any]) -> CipRow:
        """Store the CIP record of an account; a later submit replaces the data but keeps
        the first id and creation time."""
        now = rfc3339(datetime.now(UTC))
        with self._lock:
            self._db.execute(
                "INSERT INTO cip (account_id, id, created_at, updated_at, body)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(account_id) DO UPDATE SET"
                " updated_at = excluded.updated_at, body = excluded.body",
                (account_id, cip_id, now, now, json.dumps(body)),
            )
            row = self._get_cip(account_id)
        assert row is not None
        return row

    def get_cip(self, account_id: str) -> CipRow | None:
        with self._lock:
            return self._get_cip(account_id)

    def _get_cip(self, account_id: str) -> CipRow | None:
        row = self._db.execute(
            "SELECT id, created_at, updated_at, body FROM cip WHERE account_id = ?",
            (account_id,),
        ).fetchone()
        if row is None:
            return None
        return CipRow(row[0], account_id, row[1], row[2], json.loads(row[3]))
