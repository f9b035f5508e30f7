"""How the conformance stage's run time grows with the example budget and the operations.

    python benchmarks/scaling.py                     # alpaca, budgets 10/25/50/100, 4 subsets
    python benchmarks/scaling.py --dialect buildmarkets --budgets 10,50

Two series, each measured side by side with raw `schemathesis run` on the same target
(the reference server in its own process, counting requests, fresh for every run):

1. budget: the phases of `standard` (examples, coverage, fuzzing) with N examples per
   operation for N in --budgets, over every operation of the spec: brokercert cold
   (cases generated), brokercert warm (the same cases sent again) and raw;
2. operations: the first K operations of the spec (K in --op-counts), at the budget
   --op-budget, same three variants.

Figures per run: wall and CPU seconds, cases, requests, and the fitted cost per case
(least squares of wall time against cases, over each variant's points). brokercert runs
the conformance stage only (``pytest conformance/test_fuzzing.py``, internal options
``--bc-max-examples`` and ``--bc-only-operations``). Writes results/scaling.json/.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _suite_bench import (
    COLD,
    WARM,
    CountingServer,
    log,
    machine_info,
    pytest_env,
    run,
    stored_cases,
    suite_pytest,
    table,
    workdir,
    write_results,
)
from throughput import raw_cases, raw_command, raw_config

from brokercert import catalog

SPEC_VERSIONS = {"alpaca": "1.1.1", "buildmarkets": "1.0.0"}


def operation_labels(dialect: str) -> list[str]:
    import schemathesis

    spec = catalog.load(dialect, SPEC_VERSIONS[dialect]).spec
    schema = schemathesis.openapi.from_dict(spec)
    return [result.ok().label for result in schema.get_all_operations()]


def one(variant: str, dialect: str, budget: int, ops: list[str], all_ops: bool,
        tmp: Path) -> dict[str, Any]:
    with CountingServer(tmp) as server:
        if variant == "raw":
            cmd = raw_command(dialect, server.url, "standard", raw_config(dialect, tmp), 1)
            cmd[cmd.index("-n") + 1] = str(budget)
            if not all_ops:
                for label in ops:
                    cmd += ["--include-name", label]
            result = run(cmd, also=[server.pid])
            cases = raw_cases(result.output)
        else:
            extra = ["--bc-max-examples", str(budget)]
            subset: tuple[str, ...] = ()
            if not all_ops:
                extra += ["--bc-only-operations", ",".join(ops)]
                subset = tuple(ops)
            cmd = suite_pytest(["conformance/test_fuzzing.py"], dialect, server.url, "standard",
                               tmp / "report", extra)
            env = {**pytest_env(), **(COLD if variant == "cold" else WARM)}
            result = run(cmd, env=env, also=[server.pid])
            cases = stored_cases(dialect, "standard", budget, subset)
        requests = server.counts().get(f"{dialect} total", 0)
    log(f"{dialect} {variant:4} budget {budget:4} ops {len(ops):2}: {result.wall_s:6.1f} s, "
        f"{cases} cases, {requests} requests, exit {result.exit_code}")
    return {"variant": variant, "budget": budget, "operations": len(ops), **result.as_json(),
            "cases": cases, "requests": requests}


def fit(rows: list[dict[str, Any]]) -> dict[str, float] | None:
    """Least squares wall = fixed + per_case * cases."""
    pts = [(r["cases"], r["wall_s"]) for r in rows if r["cases"]]
    if len(pts) < 2:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if not sxx:
        return None
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
    return {"fixed_s": round(my - slope * mx, 2), "ms_per_case": round(slope * 1000, 2)}


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    out = [f"# Conformance-stage scaling ({data['dialect']})\n",
           f"Command: `python benchmarks/scaling.py {data['args']}`; {m['cpus_usable']} CPUs, "
           f"load {m['loadavg_at_start']} at start, {m['date']}. Phases of `standard` "
           "(examples, coverage, fuzzing); target: the reference server in its own process.\n"]
    for series, key, label in (("budget", "budget", "examples per operation"),
                                ("operations", "operations", "operations")):
        rows = data[series]
        if not rows:
            continue
        out.append(f"\n## Run time against {label}\n")
        out.append(table([label, "variant", "cases", "requests", "wall s", "CPU s",
                          "others CPU s"],
                         [[r[key], r["variant"], r["cases"], r["requests"], r["wall_s"],
                           r["cpu_s"], r["other_cpu_s"]] for r in rows]))
        fits = data["fits"][series]
        out.append("\nFitted wall = fixed + cost per case: " + "; ".join(
            f"{v}: {f['fixed_s']} s + {f['ms_per_case']} ms/case" for v, f in fits.items() if f
        ) + ".\n")
        if series == "budget":
            # Why the intercept can be negative: not a start-up time.
            out.append("Along the budget only the examples and fuzzing phases add cases; the "
                       "coverage phase's cases are the same at every budget and cheap to "
                       "make. The slope is the cost of one more generated case, and the "
                       "intercept is not a start-up time (it can come out negative).\n")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", default="alpaca")
    parser.add_argument("--budgets", default="10,25,50,100")
    parser.add_argument("--op-counts", default="1,3,6,all")
    parser.add_argument("--op-budget", type=int, default=25)
    parser.add_argument("--variants", default="raw,cold,warm")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    labels = operation_labels(args.dialect)
    data: dict[str, Any] = {"machine": machine_info(), "args": " ".join(sys.argv[1:]),
                            "dialect": args.dialect, "all_operations": labels,
                            "budget": [], "operations": [], "fits": {}}
    with workdir("bc-scaling-") as tmp:
        for budget in [int(b) for b in args.budgets.split(",") if b]:
            for variant in variants:
                if variant == "warm" and "cold" not in variants:
                    one("cold", args.dialect, budget, labels, True, tmp)
                data["budget"].append(one(variant, args.dialect, budget, labels, True, tmp))
        for count in [c for c in args.op_counts.split(",") if c]:
            k = len(labels) if count == "all" else min(int(count), len(labels))
            for variant in variants:
                if variant == "warm" and "cold" not in variants:
                    one("cold", args.dialect, args.op_budget, labels[:k], k == len(labels), tmp)
                data["operations"].append(
                    one(variant, args.dialect, args.op_budget, labels[:k], k == len(labels), tmp)
                )
    for series in ("budget", "operations"):
        data["fits"][series] = {
            v: fit([r for r in data[series] if r["variant"] == v]) for v in variants
        }
    write_results(args.out or f"scaling-{args.dialect}", data, markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
