"""The ASGI application: both dialects under their mount points, plus readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from brokercert import __version__, catalog
from brokercert.server._alpaca import AlpacaApi
from brokercert.server._buildmarkets import BuildmarketsApi
from brokercert.server._config import ServerConfig
from brokercert.server._http import Context, DialectApi
from brokercert.server._lifecycle import Clock
from brokercert.server._storage import Storage

_APIS: dict[str, type[DialectApi]] = {"alpaca": AlpacaApi, "buildmarkets": BuildmarketsApi}


def create_app(config: ServerConfig | None = None, *, storage: Storage | None = None,
               clock: Clock | None = None) -> Starlette:
    """The reference server as an ASGI app; ``storage`` and ``clock`` may be injected."""
    config = config or ServerConfig()
    store = storage or Storage(config.database)
    ctx = Context(config=config, storage=store, clock=clock or Clock(config.kyc_delay))
    apis = {name: cls(ctx, catalog.load(name)) for name, cls in _APIS.items()}

    async def health(request: Request) -> Response:
        return JSONResponse({
            "status": "ok",
            "server": f"brokercert reference server {__version__}",
            "dialects": {name: f"/{name}" for name in apis},
            "faults": sorted(config.faults),
        })

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if storage is None:
                store.close()

    async def elsewhere(scope: Scope, receive: Receive, send: Send) -> None:
        """Paths no mount matched (a mount's pattern stops at a newline): the dialect's
        own 404 under its prefix, a JSON 404 everywhere else."""
        path = scope.get("path", "")
        for name, api in apis.items():
            if path.startswith(f"/{name}/"):
                await api.fallback(scope, receive, send)
                return
        await JSONResponse({"error": "not found"}, 404)(scope, receive, send)

    routes: list[BaseRoute] = [Route("/", health), Route("/healthz", health)]
    routes += [Mount(f"/{name}", app=api.router()) for name, api in apis.items()]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.router.default = elsewhere
    app.state.context = ctx
    return app
