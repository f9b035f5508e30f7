"""Generated cases, reused across runs of the same spec.

Generating the data is ~85% of a fuzzing run's CPU; sending and checking it is cheap.
A run whose every operation passed stores the cases it sent (per spec digest, depth
and library versions); the next runs of the same spec send exactly those cases again,
with every check, instead of generating them: the same number of cases per operation,
the same mix of phases and positive/negative data. After ``max_reuse`` runs the set is
generated afresh, so nightly runs still explore. Credentials are never stored: header
values equal to the target's auth headers are written as references and filled in
from the current run's credentials when a case is read back. A target that keeps its
data between runs would meet the replayed accounts again (alpaca refuses a duplicate
email with 409); so, as a fresh generation would, a replayed fuzzing-phase body gets
new email addresses of the same shape (same length, characters of the same classes),
the same new address wherever the stored cases repeat one (repeats stay repeats).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import pickle
import random
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import schemathesis
from platformdirs import user_cache_dir
from schemathesis.core.failures import FailureGroup, as_reported_failure

from brokercert.catalog import Catalog
from brokercert.depth import Depth
from brokercert.target import Target

CASE_CACHE_ENV = "BROKERCERT_CASE_CACHE"
DEFAULT_MAX_REUSE = 10
_CASE_FORMAT = 3  # bump whenever what a stored case holds changes
_EVIDENCE_CASES = 3  # failing replayed cases whose exchange is attached to the report


@dataclass(frozen=True)
class CachePolicy:
    read: bool = True
    write: bool = True
    max_reuse: int = DEFAULT_MAX_REUSE


def cache_policy(env: Mapping[str, str] = os.environ) -> CachePolicy:
    """``BROKERCERT_CASE_CACHE``: unset (reuse up to 10 runs), N (up to N runs), ``refresh``
    (generate now and store), ``off`` (generate, store nothing)."""
    raw = env.get(CASE_CACHE_ENV, "").strip().lower()
    if raw in ("", "on", "auto"):
        return CachePolicy()
    if raw in ("off", "no", "0", "false"):
        return CachePolicy(read=False, write=False)
    if raw == "refresh":
        return CachePolicy(read=False)
    if raw.isdigit():
        return CachePolicy(max_reuse=int(raw))
    raise ValueError(f"{CASE_CACHE_ENV} must be off, refresh or a number of runs, not {raw!r}")


def cases_dir(catalog: Catalog, depth: Depth) -> Path:
    """Where the cases of this spec, depth and set of library versions are kept."""
    import hypothesis

    from brokercert import __version__

    key = json.dumps(
        {
            "format": _CASE_FORMAT,
            "spec": [catalog.dialect, catalog.version, catalog.spec_digest],
            "depth": [depth.name, depth.max_examples, depth.phases],
            "versions": [
                __version__,
                schemathesis.__version__,
                hypothesis.__version__,
                list(sys.version_info[:2]),
            ],
        },
        sort_keys=True,
    )
    digest = catalog.spec_digest.split(":", 1)[-1][:16]
    tail = hashlib.sha256(key.encode()).hexdigest()[:16]
    return (
        Path(user_cache_dir("brokercert")) / "cases" / f"{catalog.dialect}-{digest}"
        / f"{depth.name}-{tail}"
    )


class _AuthRef:
    """Stands for the value of an auth header in a stored case (the value is not stored)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _auth_header_value, (self.name,)


def _replace_value(stored: Any, value: Any) -> Any:
    if value is getattr(stored, "value", None):
        return stored
    clone = copy.copy(stored)
    clone.value = value
    return clone


def _auth_header_value(name: str) -> str:
    raise pickle.UnpicklingError("a stored case is read through CaseCache only")


def _dispatch_table() -> dict[type, Any]:
    """How to pickle the values pickle cannot rebuild by itself."""
    import copyreg

    table: dict[type, Any] = dict(copyreg.dispatch_table)
    try:  # a delimited query value and its wire form: a str subclass with a slot
        from schemathesis.core.parameters import DelimitedValue
    except ImportError:  # pragma: no cover - other Schemathesis versions
        return table
    table[DelimitedValue] = lambda value: (DelimitedValue, (str(value), value.encoded))
    return table


class _CaseUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, headers: Mapping[str, str]) -> None:
        super().__init__(io.BytesIO(data))
        self._headers = headers

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_auth_header_value":
            return self._header
        return super().find_class(module, name)

    def _header(self, name: str) -> str:
        if name not in self._headers:
            raise pickle.UnpicklingError(f"the stored case needs the auth header {name!r}")
        return self._headers[name]


class CaseCache:
    """The stored cases of one spec and depth: read back, or recorded during generation."""

    def __init__(
        self,
        folder: Path,
        schema: Any,
        auth_headers: Mapping[str, str],
        policy: CachePolicy,
        credentials: Iterable[str] = (),
    ) -> None:
        from schemathesis.generation.case import Case

        self._case_cls = Case
        self._slots = [s for s in Case.__slots__ if s != "operation"]
        self.folder = folder
        self.policy = policy
        self._headers = dict(auth_headers)
        self._secrets = {value: name for name, value in auth_headers.items() if value}
        self._guard = [v for v in (*auth_headers.values(), *credentials) if len(v) >= 6]
        self.operations: dict[str, Any] = {}
        for result in schema.get_all_operations():
            try:
                operation = result.ok()
            except Exception:  # an operation the schema cannot build: never replayable
                self.operations = {}
                break
            self.operations[operation.label] = operation
        self.labels = list(self.operations)
        # The generation settings the cases were made under (examples, phases, modes...):
        # stored cases are used only under the same ones.
        self._config = repr(schema.config.generation) + repr(schema.config.phases)
        self._dispatch = _dispatch_table()
        self._recorded: dict[str, list[bytes]] = {}
        self._unstorable: set[str] = set()
        self._committed: set[str] = set()
        self._emails = _EmailRenamer()
        self.replayable = policy.read and self._claim()

    # -- files ------------------------------------------------------------------------

    def _file(self, label: str) -> Path:
        return self.folder / f"op-{hashlib.sha256(label.encode()).hexdigest()[:16]}.pickle"

    @property
    def _manifest(self) -> Path:
        return self.folder / "manifest.json"

    def _claim(self) -> bool:
        """True when every operation has stored cases that may be used once more."""
        if not self.labels:
            return False
        try:
            manifest = json.loads(self._manifest.read_text(encoding="utf-8"))
            uses = int(manifest["uses"])
            stored = set(manifest["operations"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if stored != set(self.labels) or uses >= self.policy.max_reuse:
            return False
        if manifest.get("config") != self._config:
            return False
        try:  # every file there and readable (its first case, as a sample)
            for label in self.labels:
                first = pickle.loads(self._file(label).read_bytes())[0]
                _CaseUnpickler(first, self._headers).load()
        except Exception:
            return False
        self._write_manifest(uses + 1, manifest.get("created"))
        return True

    def _write_manifest(self, uses: int, created: Any = None) -> None:
        data = {
            "operations": self.labels,
            "config": self._config,
            "uses": uses,
            "created": created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write_atomic(self._manifest, json.dumps(data, indent=1).encode())

    # -- recording (generation runs) --------------------------------------------------

    def record(self, case: Any) -> None:
        """Keep a snapshot of a generated case as it is about to be sent."""
        if not self.policy.write or self.replayable:
            return
        label = case.operation.label
        state = {name: getattr(case, name) for name in self._slots}
        self._scrub(state)
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = self._dispatch
        try:
            pickler.dump((state, _hash_marks(case)))
        except Exception:  # a value pickle cannot carry: this operation is not stored
            self._unstorable.add(label)
            return
        self._recorded.setdefault(label, []).append(buffer.getvalue())

    def _scrub(self, state: dict[str, Any]) -> None:
        """Put references in place of the auth header values, wherever a case keeps headers:
        its headers, its record of the generated values, its metadata's snapshots. (Any
        other place would make the store refuse the operation: see ``commit``.)"""
        state["headers"] = self._scrubbed(state["headers"])
        components = state.get("_components")
        if isinstance(components, dict):
            state["_components"] = {
                location: _replace_value(stored, self._scrubbed(getattr(stored, "value", None)))
                for location, stored in components.items()
            }
        meta = state.get("_meta")
        if meta is not None:
            fields = ("_initial_containers", "raw_containers")
            if any(self._has_secret(v) for f in fields for v in getattr(meta, f, {}).values()):
                meta = copy.copy(meta)
                for f in fields:
                    setattr(meta, f, {k: self._scrubbed(v) for k, v in getattr(meta, f).items()})
                state["_meta"] = meta

    def _has_secret(self, value: Any) -> bool:
        return isinstance(value, Mapping) and any(
            type(v) is str and v in self._secrets for v in value.values()
        )

    def _scrubbed(self, value: Any) -> Any:
        if not self._has_secret(value):
            return value
        out = value.copy() if hasattr(value, "copy") else dict(value)  # never the live one
        for name, item in value.items():
            if type(item) is str and item in self._secrets:
                out[name] = _AuthRef(self._secrets[item])
        return out

    def discard(self, label: str) -> None:
        """The operation failed (or its run was cut short): keep nothing of it."""
        self._recorded.pop(label, None)
        self._unstorable.add(label)

    def commit(self, label: str) -> None:
        """The operation passed: store its cases; once all have, mark the set usable."""
        cases = self._recorded.pop(label, None)
        if not cases or label in self._unstorable or label not in self.operations:
            return
        blob = pickle.dumps(cases, protocol=pickle.HIGHEST_PROTOCOL)
        if any(secret.encode() in blob for secret in self._guard):
            self._unstorable.add(label)  # never write a credential to disk
            return
        try:  # only what reads back is stored
            for data in cases:
                _CaseUnpickler(data, self._headers).load()
        except Exception:
            self._unstorable.add(label)
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(self._file(label), blob)
            self._committed.add(label)
            if self._committed == set(self.labels):
                self._write_manifest(0)
        except OSError:
            self._unstorable.add(label)

    # -- replay -----------------------------------------------------------------------

    def cases(self, label: str) -> Iterator[Any]:
        """The stored cases of one operation, rebuilt against the current schema and target."""
        from schemathesis.generation import generate_random_case_id

        operation = self.operations[label]
        for data in pickle.loads(self._file(label).read_bytes()):
            state, marks = _CaseUnpickler(data, self._headers).load()
            case = self._case_cls.__new__(self._case_cls)
            object.__setattr__(case, "operation", operation)
            for name, value in state.items():
                object.__setattr__(case, name, value)
            object.__setattr__(case, "id", generate_random_case_id())
            _restore_hashes(case, marks)
            _refresh_emails(case, self._emails)
            yield case

    def replay(self, label: str, run_case: Callable[[Any, Callable[[], bool]], None]) -> int:
        """Send and check every stored case of ``label``; raise the first check failure
        after all were sent (transport errors stop at once). Returns the number sent."""
        failures: list[BaseException] = []
        sent = 0
        for case in self.cases(label):
            sent += 1
            try:
                run_case(case, lambda: len(failures) < _EVIDENCE_CASES)
            except (FailureGroup, AssertionError) as exc:
                failures.append(exc)
        if failures:
            first = failures[0]
            first.add_note(
                f"{len(failures)} of the {sent} cases replayed for {label} failed "
                "(stored cases of this spec; set BROKERCERT_CASE_CACHE=refresh to generate "
                "new ones)"
            )
            if isinstance(first, FailureGroup):
                raise as_reported_failure(first)
            raise first
        return sent


# Schemathesis notices edits to a case by comparing hash() values of its parts with the
# ones its metadata keeps; those hashes differ from one process to the next. A stored case
# keeps, instead of the numbers, whether each one matched the part it describes; a replayed
# case gets numbers that match (or not) in the same way under the current process.
_HASH_FIELDS = ("_last_validated_hashes", "_initial_hashes")


def _hash_marks(case: Any) -> dict[str, dict[Any, bool]]:
    meta = case._meta
    if meta is None:
        return {}
    current: dict[Any, int] = {}

    def now(location: Any) -> int:
        if location not in current:
            current[location] = case._hash_container(case.get_container(location))
        return current[location]

    return {
        field: {loc: value == now(loc) for loc, value in getattr(meta, field).items()}
        for field in _HASH_FIELDS
    }


def _restore_hashes(case: Any, marks: dict[str, dict[Any, bool]]) -> None:
    meta = case._meta
    for field, locations in marks.items():
        hashes = getattr(meta, field)
        for location, matched in locations.items():
            current = case._hash_container(case.get_container(location))
            hashes[location] = current if matched else current ^ 0x5BD1E995


def _refresh_emails(case: Any, renamer: _EmailRenamer) -> None:
    """New local parts for the email addresses of a positive fuzzing-phase body."""
    from schemathesis.core.parameters import ParameterLocation
    from schemathesis.generation.meta import TestPhase

    meta = case.meta
    if meta is None or meta.phase.name != TestPhase.FUZZING:
        return
    if meta.is_negative_at(ParameterLocation.BODY) or not isinstance(case.body, dict | list):
        return
    renamer.apply(case.body)


class _EmailRenamer:
    """Gives every stored address a new one of the same shape, the same for each repeat."""

    def __init__(self) -> None:
        self._rng = random.Random()
        self._new: dict[str, str] = {}

    def apply(self, value: Any) -> None:
        items: Iterable[tuple[Any, Any]]
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            return
        for key, item in items:
            if isinstance(item, str):
                if isinstance(key, str) and "email" in key.lower() and item.count("@") == 1:
                    value[key] = self._rename(item)
            else:
                self.apply(item)

    def _rename(self, address: str) -> str:
        if address not in self._new:
            local, domain = address.split("@")
            self._new[address] = self._same_shape(local) + "@" + domain
        return self._new[address]

    def _same_shape(self, text: str) -> str:
        out = []
        for ch in text:
            for alphabet in (string.ascii_lowercase, string.ascii_uppercase, string.digits):
                if ch in alphabet:
                    ch = self._rng.choice(alphabet)
                    break
            out.append(ch)
        return "".join(out)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def case_cache(
    catalog: Catalog, target: Target, depth: Depth, schema: Any, subset: Iterable[str] = ()
) -> CaseCache:
    """The case store of this spec and depth; ``subset``: the operations a filtered run
    fuzzes (benchmarks), which get a store of their own."""
    creds = target.credentials
    folder = cases_dir(catalog, depth)
    labels = sorted(subset)
    if labels:
        folder = folder.with_name(
            folder.name + "-ops-" + hashlib.sha256("\n".join(labels).encode()).hexdigest()[:12]
        )
    return CaseCache(
        folder,
        schema,
        target.auth_headers(),
        cache_policy(),
        credentials=(creds.key, creds.secret),
    )


__all__ = [
    "CASE_CACHE_ENV",
    "CachePolicy",
    "CaseCache",
    "cache_policy",
    "case_cache",
    "cases_dir",
]
