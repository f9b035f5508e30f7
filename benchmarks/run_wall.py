"""Wall time of `brokercert run` (both dialects, embedded server) at each depth.

    python benchmarks/run_wall.py                          # quick, standard (3 reps), deep (1)
    python benchmarks/run_wall.py --depths quick --reps 5

Each measurement is the command a user types, `brokercert run --depth D` with a fresh
report folder, timed from start to exit, HTML report included (``--no-html`` to leave
it out). Two states of the machine's case store (brokercert.case_cache.CaseCache):

- cold: ``BROKERCERT_CASE_CACHE=refresh``: every fuzzing case is generated (and stored);
  what the first run of a spec on a machine costs;
- warm: the cases the previous run of the same spec and depth generated are sent again
  (what later runs, e.g. nightly ones, cost, up to 10 runs per generated set).

Cold and warm runs alternate, so that load from other work hits both alike. Besides
wall time it records the CPU time of the run (all its processes), the CPU every other
process used meanwhile, the exit code and verdicts, and where the wall time went:
start-up (until the sessions started), the test sessions, and the reports (JSON, JUnit,
summary and the Allure HTML). Writes results/run_wall.json and results/run_wall.md.
Goals (issue 9): quick <= 15 s, standard <= 60 s.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _suite_bench import (
    COLD,
    PYTHON,
    WARM,
    log,
    machine_info,
    median,
    run,
    table,
    workdir,
    write_results,
)

GOALS = {"quick": 15.0, "standard": 60.0}


def one_run(depth: str, state: str, html: bool, tmp: Path, index: int) -> dict[str, Any]:
    report_dir = tmp / f"{depth}-{state}-{index}"
    cmd = [PYTHON, "-m", "brokercert.cli", "run", "--depth", depth, "--report-dir",
           str(report_dir), "--run-id", "run"]
    if not html:
        cmd.append("--no-html")
    env = COLD if state == "cold" else WARM
    run_dir = report_dir / "run"
    seen: dict[str, float] = {}

    def watch(elapsed: float) -> None:
        # the sessions start once their logs exist; they are over once both wrote a record
        if "sessions_start" not in seen and any(run_dir.glob("pytest-*.log")):
            seen["sessions_start"] = elapsed
        if "sessions_end" not in seen and len(list(run_dir.glob("record-*.json"))) >= 2:
            seen["sessions_end"] = elapsed

    result = run(cmd, env=env, watch=watch)
    phases = None
    if len(seen) == 2:
        phases = {
            "startup": round(seen["sessions_start"], 2),
            "sessions": round(seen["sessions_end"] - seen["sessions_start"], 2),
            "reports": round(result.wall_s - seen["sessions_end"], 2),
        }
    verdicts = re.findall(r"^(\w+) [\d.]+: (CONFORMANT|NOT CONFORMANT)", result.output, re.M)
    row = {
        "depth": depth,
        "state": state,
        **result.as_json(),
        "verdicts": dict(verdicts),
        "phases_s": phases,
        "html_rendered": (run_dir / "allure-report" / "index.html").is_file(),
    }
    log(f"{depth:8} {state:4}: {result.wall_s:6.1f} s wall, {result.cpu_s:6.1f} s CPU, "
        f"others {result.other_cpu_s:5.1f} s CPU, exit {result.exit_code} {dict(verdicts)}")
    if result.exit_code not in (0, 1):
        log(result.output[-3000:])
    return row


def markdown(data: dict[str, Any]) -> str:
    out = ["# `brokercert run` wall time (both dialects, embedded server)\n",
           f"Command: `python benchmarks/run_wall.py {data['args']}`; machine: "
           f"{data['machine']['cpus_usable']} CPUs ({data['machine']['cpu_model']}), load "
           f"{data['machine']['loadavg_at_start']} at start, {data['machine']['date']}.\n",
           "Medians per depth and case-store state; `others CPU` is what every other process "
           "on the machine used during the run (a busy machine stretches wall time).\n"]
    rows = []
    for key, summary in data["summary"].items():
        depth, state = key.split("/")
        goal = GOALS.get(depth)
        met = "" if goal is None else ("yes" if summary["wall_s"] <= goal else "no")
        rows.append([depth, state, summary["runs"], f"{summary['wall_s']:.1f}",
                     f"{summary['cpu_s']:.1f}", f"{summary['other_cpu_s']:.1f}",
                     summary["phases"], f"{goal:.0f}" if goal else "-", met,
                     summary["verdicts"]])
    out.append(table(["depth", "case store", "runs", "wall s", "CPU s", "others CPU s",
                      "start-up / sessions / reports s", "goal s", "met", "verdicts"], rows))
    out.append("\nEvery run:\n")
    out.append(table(
        ["depth", "state", "wall s", "CPU s", "others CPU s", "load1 before", "exit"],
        [[r["depth"], r["state"], r["wall_s"], r["cpu_s"], r["other_cpu_s"],
          r["loadavg_before"], r["exit_code"]] for r in data["runs"]]))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="quick,standard,deep")
    parser.add_argument("--reps", type=int, default=3, help="per depth and state (deep: 1)")
    parser.add_argument("--deep-reps", type=int, default=1)
    parser.add_argument("--states", default="cold,warm")
    parser.add_argument("--no-html", action="store_true")
    parser.add_argument("--out", default="run_wall", help="results file name (no suffix)")
    args = parser.parse_args()
    depths = [d for d in args.depths.split(",") if d]
    states = [s for s in args.states.split(",") if s]
    data: dict[str, Any] = {"machine": machine_info(), "runs": [], "summary": {},
                            "args": " ".join(sys.argv[1:]), "goals_s": GOALS}
    with workdir("bc-runwall-") as tmp:
        for depth in depths:
            reps = args.deep_reps if depth == "deep" else args.reps
            if "warm" in states and "cold" not in states:
                # a warm run needs stored cases: one unmeasured generating run first
                one_run(depth, "cold", not args.no_html, tmp, -1)
            for i in range(reps):
                for state in states:
                    data["runs"].append(one_run(depth, state, not args.no_html, tmp, i))
    for depth in depths:
        for state in states:
            rows = [r for r in data["runs"] if r["depth"] == depth and r["state"] == state]
            phases = [r["phases_s"] for r in rows if r["phases_s"]]
            data["summary"][f"{depth}/{state}"] = {
                "runs": len(rows),
                "wall_s": round(median([r["wall_s"] for r in rows]), 2),
                "cpu_s": round(median([r["cpu_s"] for r in rows]), 2),
                "other_cpu_s": round(median([r["other_cpu_s"] for r in rows]), 2),
                "phases": " / ".join(
                    f"{median([p[k] for p in phases]):.1f}" for k in ("startup", "sessions",
                                                                      "reports")
                ) if phases else "-",
                "verdicts": sorted({f"{d}: {v}" for r in rows for d, v in r["verdicts"].items()}),
                "exit_codes": sorted({r["exit_code"] for r in rows}),
            }
    write_results(args.out, data, markdown(data))
    missed = [k for k, s in data["summary"].items()
              if k.split("/")[0] in GOALS and s["wall_s"] > GOALS[k.split("/")[0]]]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
