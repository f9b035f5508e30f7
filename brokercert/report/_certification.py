"""certification.json: the machine-readable verdict of one run (schema brokercert.certification/1).

The document is deterministic: keys in a fixed order, dialect results sorted by
dialect and spec version, requirements in catalogue order, test node ids sorted.
The same run gives byte-identical output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brokercert.catalog import Catalog
from brokercert.errors import UserError
from brokercert.report._verdicts import DialectResult, evaluate
from brokercert.results import RunRecord

SCHEMA_ID = "brokercert.certification/1"
CONFORMANT = "conformant"
NOT_CONFORMANT = "not_conformant"


@dataclass(frozen=True)
class Certification:
    """Every dialect result of one run, and the verdict they add up to."""

    run_id: str
    suite_version: str
    started_at: str
    finished_at: str
    results: tuple[DialectResult, ...]

    @property
    def conformant(self) -> bool:
        """True iff there is at least one result and every result is conformant."""
        return bool(self.results) and all(r.conformant for r in self.results)

    @property
    def verdict(self) -> str:
        return CONFORMANT if self.conformant else NOT_CONFORMANT

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_ID,
            "suite_version": self.suite_version,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "verdict": self.verdict,
            "results": [_result_json(r) for r in self.results],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"


def _result_json(res: DialectResult) -> dict[str, Any]:
    return {
        "dialect": res.dialect,
        "spec_version": res.spec_version,
        "spec_digest": res.spec_digest,
        "target": res.target,
        "depth": res.depth,
        "started_at": res.started_at,
        "finished_at": res.finished_at,
        "verdict": CONFORMANT if res.conformant else NOT_CONFORMANT,
        "counts": res.counts,
        "requirements": [
            {
                "id": r.id,
                "level": r.level,
                "title": r.title,
                "source": r.source,
                "url": r.url,
                "verdict": r.verdict.value,
                "tests": list(r.tests),
                "messages": list(r.messages),
            }
            for r in res.requirements
        ],
        "leftover_accounts": list(res.leftover_accounts),
    }


def build_certification(
    records: list[RunRecord], catalogs: dict[str, Catalog], *, run_id: str
) -> Certification:
    """Judge each run record against its dialect's catalogue (``catalogs`` keyed by dialect)."""
    results = []
    for record in records:
        try:
            cat = catalogs[record.dialect]
        except KeyError:
            raise ValueError(f"no catalogue given for dialect {record.dialect!r}") from None
        results.append(evaluate(record, cat))
    results.sort(key=lambda r: (r.dialect, r.spec_version, r.started_at))
    if results:
        suite_version = results[0].suite_version
    else:
        from brokercert import __version__ as suite_version
    starts = [r.started_at for r in results if r.started_at]
    ends = [r.finished_at for r in results if r.finished_at]
    return Certification(
        run_id=run_id,
        suite_version=suite_version,
        started_at=min(starts, default=""),
        finished_at=max(ends, default=""),
        results=tuple(results),
    )


def load_certification(path: Path, *, what: str = "certification file") -> dict[str, Any]:
    """Read and check a certification.json; any problem is one UserError line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory, not a certification.json") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(
            f"{what} {path} is not JSON; expected a brokercert certification.json"
        ) from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_ID:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise UserError(
            f"{what} {path} is not a brokercert certification.json "
            f"(schema {found!r}, expected {SCHEMA_ID!r})"
        )
    results = doc.get("results")
    ok = isinstance(results, list) and all(
        isinstance(r, dict)
        and isinstance(r.get("dialect"), str)
        and isinstance(r.get("requirements"), list)
        and all(
            isinstance(q, dict)
            and isinstance(q.get("id"), str)
            and isinstance(q.get("verdict"), str)
            for q in r["requirements"]
        )
        for r in results
    )
    if not ok:
        raise UserError(f"{what} {path} is damaged: 'results' is missing or malformed")
    return doc
