"""The reference server as its own process, counting the requests it receives.

Benchmarks count test cases the same way for every client (brokercert, raw
Schemathesis): as requests the target received. The count is kept by an ASGI wrapper
around the unchanged reference-server app; ``GET /__bench/counts`` returns it and
``POST /__bench/reset`` zeroes it (these two paths are outside both dialects' mounts).

    python benchmarks/_counting_server.py --db PATH --key K --secret S

prints ``URL http://127.0.0.1:PORT`` once it answers, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from typing import Any

import uvicorn

from brokercert.server import ServerConfig, create_app
from brokercert.server._runner import _bind

_ACCOUNT = re.compile(r"^(/[^/]+/v\d+/accounts/)[^/]+")  # the account id segment


def counting(app: Any) -> Any:
    counts: Counter[str] = Counter()

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/__bench/counts":
            body = json.dumps(dict(counts)).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if path == "/__bench/reset":
            counts.clear()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        dialect = path.strip("/").split("/", 1)[0] or "-"
        counts[f"{dialect} total"] += 1
        route = _ACCOUNT.sub(lambda m: m.group(1) + "{id}", path)
        key = f"{dialect} {scope['method']} {route}"
        counts[key] += 1

        async def counted_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                counts[f"{key} -> {message['status']}"] += 1
            await send(message)

        await app(scope, receive, counted_send)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--key", default=os.environ.get("BROKERCERT_API_KEY", "bench-key"))
    parser.add_argument("--secret", default=os.environ.get("BROKERCERT_API_SECRET", "bench-s"))
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    config = ServerConfig(db=args.db, key=args.key, secret=args.secret, kyc_delay=0.0)
    sock = _bind("127.0.0.1", args.port)
    server = uvicorn.Server(uvicorn.Config(counting(create_app(config)), log_level="warning",
                                           access_log=False, lifespan="on", server_header=False))
    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets=sockets)
        print(f"URL http://127.0.0.1:{sock.getsockname()[1]}", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
