"""Conformance-stage throughput against raw `schemathesis run`, side by side.

    python benchmarks/throughput.py                       # standard budget, both dialects
    python benchmarks/throughput.py --depth quick --reps 1

Same spec, same example budget, same checks, same target, one run:

- target: the reference server as its own process, counting every request it receives
  (benchmarks/_counting_server.py), a fresh database for every measurement;
- raw: ``schemathesis run SPEC --url ... -n N --phases <the depth's phases>
  --checks <the checks brokercert maps to requirements> --continue-on-failure`` with a
  config file that, like brokercert, leaves positive-data acceptance out on the operations
  brokercert.fuzzing exempts (so neither stops early on them); one worker (its default) and,
  for reference, ``-w 2``;
- brokercert: the conformance stage exactly as `brokercert run` starts it
  (``pytest conformance/test_fuzzing.py`` with the suite's plugins and options), cold
  (``BROKERCERT_CASE_CACHE=refresh``: every case generated) and warm (the stored cases of
  the previous run of the same spec and depth sent again);
- both dialects at once (what `brokercert run` does with both cores): brokercert's two
  sessions in parallel against raw's two runs in parallel and one after the other.

Counting is the same for both: cases are the generated test cases (raw: its summary's
"N generated"; brokercert: the cases its run stored, one per case sent) and requests are
what the target received (cases, plus the auth probes of the ignored_auth check: raw
probes each operation once per run, brokercert after every 2xx answer). Throughput is
cases per wall second of the whole command, start-up included. The stateful phase is
not part of this comparison (its sequences depend on the target's answers and are not
stored). Writes results/throughput.json and results/throughput.md.
Goal (issue 9): brokercert >= 2x raw cases/s, and never slower.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _suite_bench import (
    COLD,
    KEY,
    PYTHON,
    SECRET,
    SPEC_VERSIONS,
    WARM,
    CountingServer,
    Measured,
    log,
    machine_info,
    median,
    pytest_env,
    run,
    stored_cases,
    suite_pytest,
    table,
    workdir,
    write_results,
)

from brokercert import catalog, fuzzing
from brokercert._paths import specs_root
from brokercert.depth import preset

GOAL = 2.0
DIALECTS = ("alpaca", "buildmarkets")


def raw_command(dialect: str, url: str, depth: str, config: Path, workers: int) -> list[str]:
    spec = specs_root() / dialect / SPEC_VERSIONS[dialect] / "openapi.yaml"
    auth = (["-a", f"{KEY}:{SECRET}"] if dialect == "alpaca"
            else ["-H", f"X-API-Key:{KEY}", "-H", f"X-API-Secret:{SECRET}"])
    checks = ",".join(fuzzing.CHECK_REQUIREMENTS)  # the envelope check is brokercert's own
    d = preset(depth)
    return [
        str(Path(PYTHON).parent / "schemathesis"), "--config-file", str(config), "run", str(spec),
        "--url", f"{url}/{dialect}", *auth, "-n", str(d.max_examples),
        "--phases", ",".join(d.phases), "--checks", checks, "--continue-on-failure",
        "-w", str(workers), "--no-color", "--report-dir", str(config.parent / "st-report"),
    ]


def raw_config(dialect: str, folder: Path) -> Path:
    cat = catalog.load(dialect, SPEC_VERSIONS[dialect])
    labels = sorted(fuzzing.positive_data_exempt_labels(cat.profile))
    path = folder / f"schemathesis-{dialect}.toml"
    names = ", ".join(f'"{label}"' for label in labels)
    path.write_text(
        "[[operations]]\n"
        f"include-name = [{names}]\n"
        "checks.positive_data_acceptance.enabled = false\n",
        encoding="utf-8",
    )
    return path


def raw_cases(output: str) -> int | None:
    found = re.search(r"^\s*(\d+) generated", output, re.M)
    return int(found.group(1)) if found else None


def measure(variant: str, dialect: str, depth: str, tmp: Path) -> dict[str, Any]:
    with CountingServer(tmp) as server:
        cpu0 = server.cpu()
        if variant.startswith("raw"):
            workers = 2 if variant == "raw-w2" else 1
            result = run(raw_command(dialect, server.url, depth, raw_config(dialect, tmp), workers),
                         also=[server.pid])
            cases = raw_cases(result.output)
        else:
            env = {**pytest_env(), **(COLD if variant == "cold" else WARM)}
            cmd = suite_pytest(["conformance/test_fuzzing.py"], dialect, server.url, depth,
                               tmp / f"report-{variant}-{dialect}")
            result = run(cmd, env=env, also=[server.pid])
            cases = stored_cases(dialect, depth)
        requests = server.counts().get(f"{dialect} total", 0)
        server_cpu = server.cpu() - cpu0
    row = _row(variant, dialect, depth, result, cases, requests, server_cpu)
    log(f"{dialect:12} {variant:7}: {result.wall_s:6.1f} s, {cases} cases "
        f"({row['cases_per_s']} /s), {requests} requests, exit {result.exit_code}, "
        f"others {result.other_cpu_s:.1f} s CPU")
    return row


def _row(variant: str, dialect: str, depth: str, result: Measured, cases: int | None,
         requests: int, server_cpu: float) -> dict[str, Any]:
    return {
        "variant": variant, "dialect": dialect, "depth": depth, **result.as_json(),
        "cases": cases, "requests": requests, "server_cpu_s": round(server_cpu, 2),
        "cases_per_s": round(cases / result.wall_s, 1) if cases else None,
        "requests_per_s": round(requests / result.wall_s, 1),
    }


def measure_pair(variant: str, depth: str, tmp: Path, sequential: bool = False) -> dict[str, Any]:
    """Both dialects: two processes at once (or one after the other), one server each."""
    rows: dict[str, dict[str, Any]] = {}

    def one(dialect: str) -> None:
        rows[dialect] = measure(variant, dialect, depth, tmp)

    import time

    t0 = time.monotonic()
    if sequential:
        for dialect in DIALECTS:
            one(dialect)
    else:
        threads = [threading.Thread(target=one, args=(d,)) for d in DIALECTS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall = time.monotonic() - t0
    cases = sum(r["cases"] or 0 for r in rows.values())
    return {
        "variant": variant + (" sequential" if sequential else " parallel"),
        "wall_s": round(wall, 2), "cases": cases, "cases_per_s": round(cases / wall, 1),
        "requests": sum(r["requests"] for r in rows.values()),
        "per_dialect": rows,
    }


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    out = [
        "# Conformance-stage throughput: brokercert against raw `schemathesis run`\n",
        f"Command: `python benchmarks/throughput.py {data['args']}`; {m['cpus_usable']} CPUs "
        f"({m['cpu_model']}), load {m['loadavg_at_start']} at start, {m['date']}; "
        f"schemathesis {m['schemathesis']}, hypothesis {m['hypothesis']}.\n",
        f"Budget: depth `{data['depth']}` ({data['budget']['max_examples']} examples per "
        f"operation, phases {', '.join(data['budget']['phases'])}), the same checks on both "
        "sides, target: the reference server in its own process. Medians of "
        f"{data['reps']} repetition(s), variants interleaved. Cases per second of wall time, "
        "start-up included; the ratio is against raw with its default single worker.\n",
    ]
    rows = []
    for dialect in DIALECTS:
        base = data["summary"].get(f"{dialect}/raw")
        for variant in data["variants"]:
            s = data["summary"].get(f"{dialect}/{variant}")
            if not s:
                continue
            ratio = s["cases_per_s"] / base["cases_per_s"] if base else None
            rows.append([dialect, variant, s["cases"], s["requests"], f"{s['wall_s']:.1f}",
                         f"{s['cpu_s']:.1f}", f"{s['server_cpu_s']:.1f}",
                         f"{s['cases_per_s']:.1f}", f"{ratio:.2f}x" if ratio else "-",
                         f"{s['other_cpu_s']:.1f}"])
    out.append(table(["dialect", "variant", "cases", "requests", "wall s", "client CPU s",
                      "server CPU s", "cases/s", "vs raw", "others CPU s"], rows))
    if data.get("pairs"):
        out.append("\nBoth dialects at once (each side's two runs, one server each):\n")
        base = next((p for p in data["pairs"] if p["variant"] == "raw parallel"), None)
        prow = []
        for p in data["pairs"]:
            ratio = p["cases_per_s"] / base["cases_per_s"] if base else None
            prow.append([p["variant"], p["cases"], p["requests"], f"{p['wall_s']:.1f}",
                         f"{p['cases_per_s']:.1f}", f"{ratio:.2f}x" if ratio else "-"])
        out.append(table(["variant", "cases", "requests", "wall s", "cases/s",
                          "vs raw parallel"], prow))
    out.append("\nGoal: brokercert >= 2x raw cases/s at equal coverage, never slower. "
               + data["verdict"] + "\n")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", default="standard")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dialects", default=",".join(DIALECTS))
    parser.add_argument("--variants", default="raw,raw-w2,cold,warm")
    parser.add_argument("--no-pairs", action="store_true", help="skip the both-dialects runs")
    parser.add_argument("--out", default="throughput")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    dialects = [d for d in args.dialects.split(",") if d]
    d = preset(args.depth)
    data: dict[str, Any] = {
        "machine": machine_info(), "args": " ".join(sys.argv[1:]), "depth": args.depth,
        "budget": {"max_examples": d.max_examples, "phases": d.phases}, "reps": args.reps,
        "variants": variants, "runs": [], "summary": {}, "pairs": [],
    }
    with workdir("bc-throughput-") as tmp:
        if "warm" in variants and "cold" not in variants:
            for dialect in dialects:  # stored cases for the warm runs (not measured)
                measure("cold", dialect, args.depth, tmp)
        for _ in range(args.reps):
            for dialect in dialects:
                for variant in variants:
                    data["runs"].append(measure(variant, dialect, args.depth, tmp))
        if not args.no_pairs and len(dialects) == 2:
            for variant, sequential in (("raw", False), ("raw", True), ("cold", False),
                                        ("warm", False)):
                if variant in variants:
                    data["pairs"].append(measure_pair(variant, args.depth, tmp, sequential))
    for dialect in dialects:
        for variant in variants:
            rows = [r for r in data["runs"] if r["dialect"] == dialect and r["variant"] == variant]
            data["summary"][f"{dialect}/{variant}"] = {
                key: round(median([r[key] for r in rows if r[key] is not None]), 2)
                for key in ("wall_s", "cpu_s", "server_cpu_s", "other_cpu_s", "cases",
                            "requests", "cases_per_s")
            }
    ratios = {
        f"{dialect}/{variant}": round(data["summary"][f"{dialect}/{variant}"]["cases_per_s"]
                                      / data["summary"][f"{dialect}/raw"]["cases_per_s"], 2)
        for dialect in dialects for variant in ("cold", "warm")
        if variant in variants and "raw" in variants
    }
    data["ratios_vs_raw"] = ratios
    warm_ok = all(v >= GOAL for k, v in ratios.items() if k.endswith("/warm"))
    never_slower = all(v >= 1.0 for v in ratios.values())
    data["verdict"] = (
        f"Warm (stored cases): {'met' if warm_ok else 'missed'} "
        f"({', '.join(f'{k} {v}x' for k, v in ratios.items())}); never slower: "
        f"{'yes' if never_slower else 'no'}."
    )
    write_results(args.out, data, markdown(data))
    return 0 if warm_ok and never_slower else 1


if __name__ == "__main__":
    sys.exit(main())
