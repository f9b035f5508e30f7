"""Where the time of one `brokercert run` goes: a sampling profile of every process.

    python benchmarks/profile_run.py                       # standard depth, stored cases
    python benchmarks/profile_run.py --state cold --depth quick

Runs `brokercert run --depth D` (both dialects, embedded server, HTML report) under
py-spy (``py-spy record --subprocesses``, 100 samples/s of CPU, not idle time), so the
CLI process (with the embedded reference server) and both pytest sessions are sampled;
Node (the Allure HTML renderer) is not Python and shows up in the wall-time phases only.
Every sample is put in one bucket by the frames on its stack (first rule that matches,
see RULES), per process. Writes results/profile.md (the summary, and what was done about
the costs it shows), results/profile.json and results/profile-<depth>.raw (py-spy's raw
stacks, for a flame graph). Needs py-spy (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _suite_bench import (
    COLD,
    PYTHON,
    RESULTS,
    WARM,
    log,
    machine_info,
    run,
    table,
    workdir,
)

# (bucket, substrings: the first rule with any substring in any frame of the stack wins)
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("session start-up: imports, plugins, options", ("_prepareconfig", "import_plugin",
                                                     "pytest_cmdline_parse")),
    ("reading stored cases (replay)", ("CaseCache.cases ", "_claim ", "_CaseUnpickler")),
    ("storing generated cases", ("CaseCache.record", "CaseCache.commit")),
    ("collection: Schemathesis builds tests, coverage-phase cases",
     ("perform_collect", "pytest_collection ")),
    ("fuzzing: generating data (Hypothesis)", ("prep_args_kwargs_from_strategies",
                                               "ConjectureRunner", "generate_new_test_cases")),
    ("fuzzing + stateful: sending requests", ("Case.call ", "RequestsTransport.send")),
    ("fuzzing + stateful: checks on responses", ("validate_response",)),
    ("stateful sequences: other", ("state_machine", "APIStateMachine")),
    ("Allure results and attachments", ("allure_commons/logger", "allure_commons/reporter",
                                        "allure_pytest/listener", "allure_commons/utils")),
    ("session end: closing created accounts, records", ("pytest_sessionfinish",)),
    ("scenarios: test data and redaction", ("datagen.py", "redact.py")),
    ("scenarios: HTTP (httpx)", ("httpx/",)),
    ("reference server (embedded)", ("uvicorn/", "starlette/", "brokercert/server/",
                                     "anyio/")),
    ("reports: certification.json, summary, HTML driver", ("write_reports",)),
    ("CLI start-up (imports)", ("<module> brokercert", "_find_and_load")),
]

# What was done about the costs a profile shows: (change, where, effect, notes). Effects
# were measured side by side on this machine on 2026-11-23: a copy of the tree from before
# these changes (with the other engineers' later changes copied in) against the working
# tree, alternating runs; CPU seconds are the steadier figure on a shared machine.
CHANGES: list[tuple[str, str, str, str]] = [
    ("Hypothesis' own files (Unicode tables, constants) kept in the user cache instead of "
     "`./.hypothesis` in the run's fresh report folder, where every session rebuilt them",
     "`pytest_plugin/__init__.py`, `fuzzing.py`",
     "quick: 20.6 -> 17.3 CPU s (-2.5 s per session)", "no `.hypothesis/` in reports"),
    ("one keep-alive HTTP session for the generated cases and the stateful steps "
     "(Schemathesis opened a TCP connection per case); plain-HTTP loopback targets skip the "
     "environment's proxy/netrc lookups",
     "`conformance/test_fuzzing.py`, `test_stateful.py`, `fuzzing.py`",
     "client time per request -43% (py-spy: Case.call 1465 -> 841 samples, bm standard)",
     "cookies still dropped between cases"),
    ("generated cases stored per spec digest, depth, generation settings and library "
     "versions after a run whose fuzzed operations all passed, and sent again by the next "
     "runs (up to 10, then generated afresh); requests per route and status compared with "
     "a generating run: equal (buildmarkets) or within 0.2% (alpaca)",
     "`case_cache.py` (CaseCache), `conformance/test_fuzzing.py`, `conformance/conftest.py`",
     "conformance stage 2-3x faster warm (throughput.md); quick 18.5 -> 15.1, standard "
     "53.0 -> 42.6 CPU s", "`BROKERCERT_CASE_CACHE=off|refresh|N`"),
    ("objects alive after collection frozen out of the garbage collector's passes "
     "(`gc.freeze()`)", "`pytest_plugin/__init__.py`",
     "GC per buildmarkets standard session 1.35-1.47 -> 0.85 s", "suite sessions only"),
    ("tax ids of the fuzzing stage's own accounts handed to the redactor in batches (each "
     "`Redactor.add` rebuilds the pattern of all secrets so far: 100 ids 0.15 s, 300 1.1 s, "
     "600 5.2 s one by one)", "`conformance/test_fuzzing.py`, `conformance/conftest.py`",
     "one rebuild per fuzzed operation instead of one per account",
     "flushed before anything is redacted"),
    ("the stateful test's example database is per run again (as when Hypothesis' home was "
     "the run folder)", "`conformance/test_stateful.py`", "-",
     "one sequence saved by a run would otherwise fail every later run"),
    ("auth enforcement confirmed once per operation and run, as Schemathesis' CLI does "
     "(called from pytest its `ignored_auth` check sent two probes after every 2xx: the "
     "largest bucket above, 'sending requests', was a third probes)",
     "`fuzzing.py` (`ignored_auth_once_per_operation`)",
     "requests of a standard buildmarkets conformance stage 3,281 -> 1,937 (raw "
     "Schemathesis: 1,719); warm cases/s vs raw 1.63x -> 3.39x (throughput.md, two "
     "recordings 2026-11-30, idle machine)",
     "a fault that ignores auth is still caught (selftest: alp/bm_auth_not_checked)"),
]

BEFORE_AFTER_TEXT = """\
All together (`brokercert run`, both dialects, embedded server, `--no-html`, medians of 3,
load 1.1-2.2; before = the tree before these changes):

| depth | before: wall / CPU s | now, cold: wall / CPU s | now, warm: wall / CPU s |
|---|---|---|---|
| quick | 13.2 / 21.2 | 11.4 / 18.5 | 9.4 / 15.1 |
| standard | 37.4 / 64.3 | 32.2 / 53.0 | 27.9 / 42.6 |

The HTML report adds 2-3 s of wall time at the end (Node); `run_wall.md` has the figures
with it."""

LEFT_ALONE = [
    "the embedded server in the CLI process: started as its own process instead (an "
    "experiment), quick took 10.1 s against 9.5 s in-process (same CPU): no gain, and on 2 "
    "cores three busy processes share the machine either way; its biggest cost is the 32 MB "
    "upload scenarios' JSON and base64 handling (`brokercert/server/`);",
    "the Allure HTML rendering (Node, 2-3 s of wall time at the end of every run, "
    "`brokercert/report/`);",
    "`Redactor.add` recompiles its pattern of every secret for each new tax id (O(n^2) over "
    "a run, ~10% of a scenario session's CPU, `brokercert/redact.py`);",
    "allure-pytest writes one container file per function-scoped fixture instance (about 4 "
    "per test; file writes, ~14% of a scenario session's CPU);",
    "Schemathesis builds the coverage-phase cases while collecting (library code; a warm "
    "run skips it: its items are plain parametrized tests).",
]


def bucket(frames: list[str]) -> str:
    text = ";".join(frames)
    for name, needles in RULES:
        if any(n in text for n in needles):
            return name
    return "other"


def analyse(raw: Path) -> dict[str, Any]:
    """Seconds per process kind and bucket, and the top leaf functions per process kind."""
    per: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaves: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        procs = [f for f in frames if f.startswith("process ")]
        cmd = procs[-1] if procs else ""
        if "pytest" in cmd:
            kind = "session " + ("alpaca" if "--dialect alpaca" in cmd else "buildmarkets")
        else:
            kind = "CLI process (embedded server)"
        body = [f for f in frames if not f.startswith(("process ", "thread "))]
        n = int(count) / 100.0
        per[kind][bucket(body)] += n
        if body:
            leaves[kind][body[-1].split(" (")[0] + " " + _short(body[-1])] += n
    return {
        "seconds": {k: dict(v.most_common()) for k, v in per.items()},
        "top_leaves": {k: v.most_common(8) for k, v in leaves.items()},
    }


def _short(frame: str) -> str:
    loc = frame.split(" (", 1)[1].rstrip(")") if " (" in frame else ""
    return "(" + loc.split("site-packages/")[-1].split("/main/")[-1] + ")"


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    secs = data["profile"]["seconds"]
    kinds = sorted(secs)
    buckets = sorted({b for k in kinds for b in secs[k]},
                     key=lambda b: -sum(secs[k].get(b, 0) for k in kinds))
    rows = [[b, *(f"{secs[k].get(b, 0):.1f}" for k in kinds),
             f"{sum(secs[k].get(b, 0) for k in kinds):.1f}"] for b in buckets]
    rows.append(["**total**", *(f"{sum(secs[k].values()):.1f}" for k in kinds),
                 f"{sum(sum(secs[k].values()) for k in kinds):.1f}"])
    phases = data.get("phases") or {}
    out = [
        f"# Where the time of a `brokercert run --depth {data['depth']}` goes\n",
        f"Command: `python benchmarks/profile_run.py {data['args']}` (case store: "
        f"{data['state']}); {m['cpus_usable']} CPUs ({m['cpu_model']}), load "
        f"{m['loadavg_at_start']} at start, {m['date']}. Under py-spy the run took "
        f"{data['wall_s']:.1f} s wall ({data['cpu_s']:.1f} s CPU over all processes, other "
        f"work on the machine {data['other_cpu_s']:.1f} s); phases: start-up "
        f"{phases.get('startup', '?')} s, sessions {phases.get('sessions', '?')} s, reports "
        f"and HTML {phases.get('reports', '?')} s.\n",
        "CPU seconds sampled per process and bucket (a sample counts once, in the first "
        "bucket of `RULES` its stack matches):\n",
        table(["bucket", *kinds, "all"], rows),
        "\nTop leaf functions per process (CPU s):\n",
    ]
    for kind in kinds:
        top = data["profile"]["top_leaves"][kind]
        leaves = ", ".join(f"`{name}` {sec:.1f}" for name, sec in top)
        out.append(f"- {kind}: {leaves}\n")
    out.append("\n## What was done about it\n")
    out.append(table(["change", "where", "effect", "notes"],
                     [list(c) for c in CHANGES]))
    out.append("\n" + BEFORE_AFTER_TEXT + "\n")
    out.append("\nLeft alone, with the evidence:\n")
    out.extend(f"- {item}\n" for item in LEFT_ALONE)
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", default="standard")
    parser.add_argument("--state", choices=("warm", "cold"), default="warm")
    parser.add_argument("--rate", type=int, default=100)
    args = parser.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(pyspy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"profile-{args.depth}.raw"
    with workdir("bc-profile-") as tmp:
        if args.state == "warm":
            log("a first run stores the cases (not profiled)")
            run([PYTHON, "-m", "brokercert.cli", "run", "--depth", args.depth, "--report-dir",
                 str(tmp / "first"), "--no-html"], env=COLD)
        run_dir = tmp / "profiled" / "run"
        seen: dict[str, float] = {}

        def watch(elapsed: float) -> None:
            if "start" not in seen and any(run_dir.glob("pytest-*.log")):
                seen["start"] = elapsed
            if "end" not in seen and len(list(run_dir.glob("record-*.json"))) >= 2:
                seen["end"] = elapsed

        cmd = [pyspy, "record", "--subprocesses", "-f", "raw", "-r", str(args.rate), "-o",
               str(raw), "--", PYTHON, "-m", "brokercert.cli", "run", "--depth", args.depth,
               "--report-dir", str(tmp / "profiled"), "--run-id", "run"]
        log("profiling " + " ".join(cmd[cmd.index("--") + 1:]))
        result = run(cmd, env=WARM if args.state == "warm" else COLD, watch=watch)
    phases = None
    if len(seen) == 2:
        phases = {"startup": round(seen["start"], 1),
                  "sessions": round(seen["end"] - seen["start"], 1),
                  "reports": round(result.wall_s - seen["end"], 1)}
    data = {"machine": machine_info(), "args": " ".join(sys.argv[1:]), "depth": args.depth,
            "state": args.state, "wall_s": result.wall_s, "cpu_s": result.cpu_s,
            "other_cpu_s": result.other_cpu_s, "exit_code": result.exit_code,
            "phases": phases, "profile": analyse(raw), "rules": RULES}
    (RESULTS / "profile.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    (RESULTS / "profile.md").write_text(markdown(data), encoding="utf-8")
    log(f"wrote {RESULTS / 'profile.md'}, profile.json and {raw.name}")
    return 0 if result.exit_code in (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
