"""The suite's detection power: run it against the clean reference server and every fault.

A fault is *detected* when the run is not conformant and every requirement the
fault names failed. Requirements that fail although the fault does not name them
are *collateral* (reported, not penalised); requirements that fail against the
clean server are *false failures* (each one costs the score).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from brokercert import catalog as catalog_mod
from brokercert.report import build_certification
from brokercert.results import RunRecord, Verdict
from brokercert.runner import DialectJob, RunOptions, run_dialects
from brokercert.server import FAULTS, Fault, ServerConfig, start_in_thread

CLEAN = "clean"


@dataclass
class FaultOutcome:
    fault: str
    dialect: str
    expected: list[str]
    conformant: bool
    failed: list[str]  # every requirement that failed or warned
    missed: list[str]  # expected requirements that did not fail
    collateral: list[str]
    seconds: float
    error: str = ""

    @property
    def detected(self) -> bool:
        return not self.error and not self.conformant and not self.missed


@dataclass
class SelftestReport:
    depth: str
    scope: str
    clean: dict[str, list[str]]  # dialect -> requirements failing on the clean server
    faults: list[FaultOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def false_failures(self) -> int:
        return sum(len(v) for v in self.clean.values())

    @property
    def detection(self) -> float:
        if not self.faults:
            return 0.0
        return sum(f.detected for f in self.faults) / len(self.faults)

    @property
    def passed(self) -> bool:
        return bool(self.faults) and self.detection == 1.0 and self.false_failures == 0

    def to_json(self) -> dict[str, object]:
        return {
            "depth": self.depth,
            "scope": self.scope,
            "detection_score": round(self.detection, 4),
            "faults_detected": sum(f.detected for f in self.faults),
            "faults_total": len(self.faults),
            "false_failures": self.false_failures,
            "clean_failures": self.clean,
            "seconds": round(self.seconds, 1),
            "passed": self.passed,
            "faults": [{**asdict(f), "detected": f.detected} for f in self.faults],
        }


@contextmanager
def _server(faults: frozenset[str], db: Path, key: str, secret: str) -> Iterator[str]:
    config = ServerConfig(db=db, key=key, secret=secret, kyc_delay=0.0, faults=faults)
    with start_in_thread(config) as server:
        yield server.url


def _failed(record: RunRecord, cat: catalog_mod.Catalog, run_id: str) -> tuple[bool, list[str]]:
    cert = build_certification([record], {cat.dialect: cat}, run_id=run_id)
    result = cert.results[0]
    failed = sorted(
        r.id for r in result.requirements if r.verdict in (Verdict.FAILED, Verdict.WARNING)
    )
    untested = [
        r.id for r in result.requirements if r.verdict is Verdict.NOT_TESTED and r.level == "MUST"
    ]
    return cert.conformant, failed + [f"{rid} (not tested)" for rid in untested]


def _run_one(
    name: str,
    dialect: str,
    faults: frozenset[str],
    only: tuple[str, ...],
    depth: str,
    out: Path,
) -> tuple[bool, list[str], float]:
    cat = catalog_mod.load(dialect)
    key, secret = "st-" + secrets.token_hex(6), secrets.token_urlsafe(18)
    run_dir = out / name / dialect
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with _server(faults, run_dir / "server.db", key, secret) as url:
        job = DialectJob(
            dialect=dialect,
            base_url=f"{url}/{dialect}",
            catalog=cat,
            progress_file=run_dir / ".progress",
            log_file=run_dir / "pytest.log",
        )
        extra = ("--bc-only-requirements", ",".join(only)) if only else ()
        options = RunOptions(
            depth=depth,
            run_id=f"selftest-{name}",
            run_dir=run_dir,
            extra_pytest_args=extra,
        )
        env = {"BROKERCERT_API_KEY": key, "BROKERCERT_API_SECRET": secret}
        [record] = run_dialects([job], options, env)
    conformant, failed = _failed(record, cat, options.run_id)
    return conformant, failed, time.monotonic() - start


def run_selftest(
    fault_names: list[str] | None,
    out: Path,
    *,
    depth: str = "quick",
    scope: str = "full",
    workers: int | None = None,
    on_done: Callable[[str], None] | None = None,
) -> SelftestReport:
    """Clean run per dialect, then every selected fault in its own server, in parallel."""
    selected: list[Fault] = (
        [FAULTS[n] for n in fault_names] if fault_names else list(FAULTS.values())
    )
    dialects = sorted({f.dialect for f in selected}) if fault_names else catalog_mod.dialects()
    workers = workers or max(1, os.cpu_count() or 1)
    started = time.monotonic()
    report = SelftestReport(depth=depth, scope=scope, clean={})
    clean_failed: dict[str, set[str]] = {}

    def clean(dialect: str) -> None:
        conformant, failed, _ = _run_one(CLEAN, dialect, frozenset(), (), depth, out)
        report.clean[dialect] = failed
        clean_failed[dialect] = set(failed)
        if on_done:
            status = "conformant" if conformant and not failed else f"FAILED {failed}"
            on_done(f"clean {dialect}: {status}")

    def one(fault: Fault) -> FaultOutcome:
        only = fault.requirements if scope == "relevant" else ()
        try:
            conformant, failed, secs = _run_one(
                fault.name, fault.dialect, frozenset({fault.name}), only, depth, out
            )
        except Exception as exc:  # a crashed run is a missed detection, with the reason
            return FaultOutcome(
                fault.name, fault.dialect, list(fault.requirements), True, [], [], [], 0.0, str(exc)
            )
        ids = {f.split(" ")[0] for f in failed if not f.endswith("(not tested)")}
        missed = [r for r in fault.requirements if r not in ids]
        baseline = clean_failed.get(fault.dialect, set())
        collateral = sorted(ids - set(fault.requirements) - baseline)
        outcome = FaultOutcome(
            fault.name,
            fault.dialect,
            list(fault.requirements),
            conformant,
            sorted(ids),
            missed,
            collateral,
            round(secs, 1),
        )
        if on_done:
            mark = "caught" if outcome.detected else f"MISSED {missed}"
            on_done(f"{fault.name}: {mark} ({secs:.0f}s)")
        return outcome

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(clean, dialects))
        report.faults = list(pool.map(one, selected))
    report.seconds = time.monotonic() - started
    (out / "selftest.json").write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    return report
