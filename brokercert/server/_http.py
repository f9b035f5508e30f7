"""What both dialects share on the HTTP side: routing by method, auth, capped body
reading, JSON parsing, spec validation and error rendering.

A dialect subclasses :class:`DialectApi`, registers its handlers with
:meth:`DialectApi.handle` and supplies three things: how it authenticates, how it
renders an :class:`ApiError`, and how a spec :class:`Problem` becomes an ApiError.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from brokercert.catalog import Catalog
from brokercert.server._config import ServerConfig
from brokercert.server._errors import ApiError
from brokercert.server._faults import FAULTS
from brokercert.server._lifecycle import Clock
from brokercert.server._storage import Storage
from brokercert.server._validation import Invalid, OperationSchema, Problem, operation_schemas

log = logging.getLogger("brokercert.server")

Handler = Callable[[Request], Awaitable[Response]]

# A body over the cap is read and thrown away (up to this much) before the 413 goes
# out, so that the client, still sending, gets the answer instead of a reset socket.
_DRAIN_LIMIT = 256 * 1024 * 1024


MAX_NESTING = 64


def _nesting_exceeds(data: Any, limit: int) -> bool:
    """True when ``data`` holds containers more than ``limit`` levels deep (iterative)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def single_header(request: Request, name: str) -> str:
    """The header's value, or "" when it is missing or sent more than once.

    A credential header sent twice is ambiguous (a proxy may have checked the other
    copy), so it counts as no credential at all.
    """
    values = request.headers.getlist(name)
    return values[0] if len(values) == 1 else ""


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def empty(status: int = 204) -> Response:
    return Response(None, status)


class _Endpoint:
    """An ASGI app around a handler, so that Starlette routes every method to it (a plain
    function endpoint would get GET only) and the dispatcher answers 405 itself."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)


@dataclass
class Context:
    """What every handler of the running server shares."""

    config: ServerConfig
    storage: Storage
    clock: Clock


class DialectApi:
    """One dialect's routes under its mount point (``/alpaca``, ``/buildmarkets``)."""

    name: str = ""

    def __init__(self, ctx: Context, catalog: Catalog) -> None:
        self.ctx = ctx
        self.catalog = catalog
        self.profile = catalog.profile
        self.faults = frozenset(f for f in ctx.config.faults if FAULTS[f].dialect == self.name)
        self.schemas: dict[tuple[str, str], OperationSchema] = operation_schemas(catalog.spec)
        self.cap = ctx.config.body_cap(self.name)
        self._paths: dict[str, dict[str, Handler]] = {}

    # to be supplied by each dialect -------------------------------------------------------

    def authenticated(self, request: Request) -> bool:
        raise NotImplementedError

    def render_error(self, err: ApiError) -> Response:
        raise NotImplementedError

    def problem_error(self, problem: Problem) -> ApiError:
        raise NotImplementedError

    def not_found(self) -> ApiError:
        return ApiError(404, "route not found")

    # registration and dispatch ------------------------------------------------------------

    def fault(self, name: str) -> bool:
        return name in self.faults

    def handle(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method path`` (a path template of the spec)."""

        def register(handler: Handler) -> Handler:
            self._paths.setdefault(path, {})[method] = handler
            return handler

        return register

    def schema(self, method: str, path: str) -> OperationSchema:
        return self.schemas[(method, path)]

    def _dispatcher(self, handlers: dict[str, Handler]) -> Handler:
        allow = ", ".join(sorted(handlers))

        async def dispatch(request: Request) -> Response:
            try:
                if not self.authenticated(request):
                    raise ApiError(401, "request is not authorized")
                handler = handlers.get(request.method)
                if handler is None and request.method == "HEAD":
                    handler = handlers.get("GET")
                if handler is None:
                    raise ApiError(405, "method not allowed", headers={"Allow": allow})
                return await handler(request)
            except ApiError as err:
                return self.render_error(err)
            except Invalid as exc:
                return self.render_error(self.problem_error(exc.problem))
            except Exception:
                log.exception("internal error on %s %s", request.method, request.url.path)
                return self.render_error(ApiError(500, "internal error"))

        return dispatch

    async def fallback(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any path under the mount that no route matched: 401 without credentials, else 404."""
        request = Request(scope, receive)
        if not self.authenticated(request):
            response = self.render_error(ApiError(401, "request is not authorized"))
        else:
            response = self.render_error(self.not_found())
        await response(scope, receive, send)

    def router(self) -> Router:
        routes: list[BaseRoute] = []
        for path, handlers in self._paths.items():
            routes.append(Route(path, _Endpoint(self._dispatcher(handlers)), methods=None))
        return Router(routes, default=self.fallback)

    # request bodies -----------------------------------------------------------------------

    async def read_body(self, request: Request) -> bytearray:
        """The raw body, refused with 413 past the dialect's cap before it is all read."""
        length = request.headers.get("content-length")
        declared = -1
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise ApiError(400, "invalid Content-Length header") from None
        too_large = ApiError(413, f"request body larger than {self.cap} bytes")
        if declared > self.cap:
            if declared <= _DRAIN_LIMIT:
                async for _ in request.stream():
                    pass
            raise too_large
        buf = bytearray()
        drained = 0
        async for chunk in request.stream():
            if drained:
                drained += len(chunk)
                if drained > _DRAIN_LIMIT:
                    break
                continue
            buf += chunk
            if len(buf) > self.cap:
                drained = len(buf)
                buf.clear()
        if drained:
            raise too_large
        return buf

    async def json_body(self, request: Request, op: OperationSchema, validate: bool = True) -> Any:
        """Read, parse and validate a JSON body against ``op``'s request schema.

        The raw bytes are decoded to text and released before parsing, so a large
        upload is held at most twice (bytes and text, then text and parsed value).
        """
        ctype = request.headers.get("content-type", "")
        media = ctype.split(";", 1)[0].strip().lower()
        buf = await self.read_body(request)
        if media != "application/json" and not media.endswith("+json"):
            raise ApiError(400, "Content-Type must be application/json", code="MALFORMED")
        if not buf:
            raise ApiError(400, "request body is empty", code="MALFORMED")
        try:
            text = buf.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "request body is not UTF-8", code="MALFORMED") from None
        buf.clear()
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise ApiError(400, "request body is not valid JSON", code="MALFORMED") from None
        del text
        if _nesting_exceeds(data, MAX_NESTING):
            # No schema nests deeper than a handful of levels; a hostile body hundreds of
            # levels deep would otherwise exhaust the recursion of schema validation.
            raise ApiError(
                400, f"request body is nested deeper than {MAX_NESTING} levels", code="MALFORMED"
            )
        if validate:
            op.validate_body(data)
        return data

    def query(self, request: Request, op: OperationSchema) -> dict[str, Any]:
        return op.parse_query(request.query_params)
