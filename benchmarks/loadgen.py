"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections, one request in
flight on each, for a warm-up and then a measured window.

Why this and not a published tool: it runs anywhere the project's Python runs (no extra
install), it is the same code for every target, and it can send a different request
body each time (unique emails for account creation) at almost no cost, by filling a
counter into pre-encoded bytes. It is written on asyncio's protocol layer rather than
an HTTP client library so that it spends as little CPU per request as it can: on a
2-core machine every cycle the load generator burns is a cycle the server under test
does not get. It reports its own CPU time so that a reader can check it was not the
bottleneck.

Run as a script (its own process); it prints one JSON object on stdout::

    python benchmarks/loadgen.py --port 8700 --path /alpaca/v1/accounts/<id> \\
        --header 'Authorization: Basic ...' --concurrency 16 --warmup 1.5 --duration 5

``--body-template FILE`` sends POSTs whose body is FILE with every ``@@N@@`` replaced by
a number unique within the run (``--tag`` keeps runs apart). ``--watch-pid PID``
adds the CPU seconds that process used during the measured window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from typing import Any

COUNTER = b"@@N@@"


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), from /proc; None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (not idle, not waiting on I/O)."""
    try:
        with open("/proc/stat", "rb") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class RequestSource:
    """The bytes of the next request: fixed, or a template with a unique counter."""

    def __init__(self, method: str, path: str, host: str, headers: list[str],
                 template: bytes | None) -> None:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *headers]
        self.fixed: bytes | None = None
        self.head = "\r\n".join(lines).encode("latin-1")
        self.parts: list[bytes] = []
        if template is None:
            self.fixed = self.head + b"\r\n\r\n"
        else:
            self.parts = template.split(COUNTER)
            if len(self.parts) == 1:  # no counter: the same body every time
                body = template
                self.fixed = self.head + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        self.n = 0

    def next(self) -> bytes:
        if self.fixed is not None:
            return self.fixed
        self.n += 1
        body = str(self.n).encode().join(self.parts)
        return self.head + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body


class Run:
    """Shared state of one load run: the clock windows and what was recorded."""

    def __init__(self, source: RequestSource) -> None:
        self.source = source
        # set when the warm-up ends; until then every answer counts as warm-up
        self.measure_from = float("inf")
        self.measure_to = float("inf")
        self.latencies: list[int] = []  # nanoseconds, requests completed inside the window
        self.statuses: Counter[int] = Counter()
        self.all_statuses: Counter[int] = Counter()  # warm-up and tail included
        self.errors: Counter[str] = Counter()
        self.warmup_requests = 0
        self.sample: bytes = b""
        self.done = asyncio.get_running_loop().create_future()
        self.open = 0


class Conn(asyncio.Protocol):
    """One keep-alive connection sending a request as soon as the previous answer is in."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.buf = bytearray()
        self.sent_at = 0
        self.transport: asyncio.Transport | None = None
        self.need: int | None = None  # total bytes of the response once the head is parsed
        self.status = 0
        self.chunked = False
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.run.open += 1
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if time.monotonic() >= self.run.measure_to:
            self.closing = True
            self.transport.close()
            return
        data = self.run.source.next()
        self.sent_at = time.perf_counter_ns()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                self.status = int(head[9:12])
                length = 0
                self.chunked = False
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"transfer-encoding" and b"chunked" in value:
                        self.chunked = True
                if self.chunked:
                    self.need = -(end + 4)  # body starts here; length found by _chunked_end
                else:
                    self.need = end + 4 + length
            if self.need < 0:
                total = _chunked_end(self.buf, -self.need)
                if total is None:
                    return
                self.need = total
            if len(self.buf) < self.need:
                return
            response = self.buf[: self.need]
            del self.buf[: self.need]
            self.need = None
            self._complete(response)
            if self.closing:
                return

    def _complete(self, response: bytearray) -> None:
        now_ns = time.perf_counter_ns()
        run = self.run
        now = time.monotonic()
        run.all_statuses[self.status] += 1
        if now < run.measure_from:
            run.warmup_requests += 1
        elif now <= run.measure_to:
            run.latencies.append(now_ns - self.sent_at)
            run.statuses[self.status] += 1
            if not run.sample:
                run.sample = bytes(response[:600])
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.open -= 1
        if not self.closing:
            self.run.errors[f"connection lost: {exc or 'closed by server'}"] += 1
        if self.run.open == 0 and not self.run.done.done():
            self.run.done.set_result(None)


def _chunked_end(buf: bytearray, pos: int) -> int | None:
    """End offset of a chunked body that starts at ``pos``, or None if not all in yet."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2 + size + 2
        if size == 0:
            # no trailers expected; the final CRLF ends the message
            return pos if len(buf) >= pos else None
        if len(buf) < pos:
            return None


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of nanosecond values, in milliseconds."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1] / 1e6


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    template = None
    if args.body_template:
        with open(args.body_template, "rb") as fh:
            template = fh.read().replace(b"@@TAG@@", args.tag.encode())
    headers = list(args.header)
    if template is not None:
        headers.append("Content-Type: application/json")
    source = RequestSource(args.method, args.path, f"{args.host}:{args.port}", headers, template)
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    run = Run(source)
    conns = []
    for _ in range(args.concurrency):
        conns.append(loop.create_connection(lambda: Conn(run), args.host, args.port))
    await asyncio.gather(*conns)

    # Warm-up: at least --warmup seconds and --warmup-requests answers (a JIT-compiled
    # server such as Node's warms up per request, not per second), at most --max-warmup.
    await asyncio.sleep(args.warmup)
    while (run.warmup_requests < args.warmup_requests
           and time.monotonic() - start < args.max_warmup and run.open):
        await asyncio.sleep(0.02)
    if not run.open:
        raise SystemExit(f"loadgen: every connection was closed during the warm-up: "
                         f"{dict(run.errors)}")
    warmup_s = time.monotonic() - start
    run.measure_from = time.monotonic()
    run.measure_to = run.measure_from + args.duration
    # CPU accounting of the measured window only
    srv0 = _cpu_seconds(args.watch_pid) if args.watch_pid else None
    cpu0, all0, t0 = _own_cpu(), _machine_busy_seconds(), time.monotonic()
    await asyncio.sleep(max(0.0, run.measure_to - time.monotonic()))
    srv1 = _cpu_seconds(args.watch_pid) if args.watch_pid else None
    cpu1, all1, t1 = _own_cpu(), _machine_busy_seconds(), time.monotonic()
    try:
        await asyncio.wait_for(run.done, timeout=10)
    except TimeoutError:
        run.errors["requests still in flight 10 s after the window"] += run.open

    lat = sorted(run.latencies)
    window = t1 - t0
    result: dict[str, Any] = {
        "method": args.method,
        "path": args.path,
        "concurrency": args.concurrency,
        "warmup_s": round(warmup_s, 3),
        "duration_s": round(window, 4),
        "requests": len(lat),
        "warmup_requests": run.warmup_requests,
        "rps": round(len(lat) / window, 2) if window > 0 else 0.0,
        "latency_ms": {
            "p50": round(percentile(lat, 50), 3),
            "p90": round(percentile(lat, 90), 3),
            "p99": round(percentile(lat, 99), 3),
            "max": round(lat[-1] / 1e6, 3) if lat else None,
            "mean": round(sum(lat) / len(lat) / 1e6, 3) if lat else None,
        },
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "all_statuses": {str(k): v for k, v in sorted(run.all_statuses.items())},
        "errors": dict(run.errors),
        "loadgen_cpu_s": round(cpu1 - cpu0, 3),
        "loadgen_cpu_pct_of_core": round(100 * (cpu1 - cpu0) / window, 1) if window else None,
        "sample_response_head": run.sample.decode("latin-1"),
    }
    if srv0 is not None and srv1 is not None:
        result["server_cpu_s"] = round(srv1 - srv0, 3)
        result["server_cpu_pct_of_core"] = round(100 * (srv1 - srv0) / window, 1)
    if all0 is not None and all1 is not None and window:
        # Everything else on the machine (other users' jobs); high values mean noise.
        other = (all1 - all0) - (cpu1 - cpu0) - ((srv1 - srv0) if srv0 is not None
                                                 and srv1 is not None else 0.0)
        result["machine_cpu_pct"] = round(100 * (all1 - all0) / window, 1)
        result["other_processes_cpu_pct_of_core"] = round(max(0.0, 100 * other / window), 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--method", default="GET")
    p.add_argument("--path", required=True)
    p.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    p.add_argument("--body-template", help="file with the body; @@N@@ -> unique number")
    p.add_argument("--tag", default="run", help="replaces @@TAG@@ in the body template")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--warmup-requests", type=int, default=0,
                   help="the warm-up also lasts until this many answers came back")
    p.add_argument("--max-warmup", type=float, default=60.0,
                   help="the warm-up ends after this many seconds whatever the count")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--watch-pid", type=int, help="report this process's CPU use in the window")
    args = p.parse_args()
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        sys.exit("loadgen: only loopback targets are allowed")
    if args.duration <= 0 or args.duration > 120 or not 0 <= args.warmup <= args.max_warmup <= 120:
        sys.exit("loadgen: --duration must be in (0, 120] s and "
                 "0 <= --warmup <= --max-warmup <= 120 s")
    result = asyncio.run(main_async(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
