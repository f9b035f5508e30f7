"""Request validation taken from the spec itself: JSON bodies and query parameters.

Every operation's request schema is read from the OpenAPI document (with its local
``$ref``s inlined) and checked with openapi-schema-validator's OAS 3.0 write
validator and a format checker, so what the spec forbids is refused and what it
allows gets through. Problems come out dialect-neutral (:class:`Problem`); each
dialect turns them into its own error envelope.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jsonschema import FormatChecker  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]
from jsonschema.validators import extend  # type: ignore[import-untyped]
from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker

_METHODS = ("get", "post", "put", "patch", "delete")
_KIND_RANK = {"required": 0, "type": 1, "enum": 2, "format": 3, "other": 4}


def _is_base64(instance: object) -> bool:
    """Standard base64, padded, nothing else; ASCII str is decoded without an extra copy."""
    if not isinstance(instance, str):
        return True
    try:
        binascii.a2b_base64(instance, strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checkers = dict(oas30_format_checker.checkers)
    checker.checks("byte")(_is_base64)
    return checker


FORMATS = _format_checker()

# Python's backtracking engine keeps one backtrack frame per iteration of a repeated
# group: the specs' base64 patterns cost about 1.2 GB and 3 s on a 32 MB document. Each
# entry here is an exact equivalent that runs in linear time and constant memory: base64
# characters, then at most two '=', and a length that is a multiple of four (which
# forces one '=' after 4k+3 characters and two after 4k+2, as the patterns spell out).
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _padded_base64(text: str) -> bool:
    return len(text) % 4 == 0 and _BASE64_CHARS.fullmatch(text) is not None


_LINEAR_FORMS: dict[str, Callable[[str], bool]] = {
    "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$": _padded_base64,
    "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$":
        lambda text: bool(text) and _padded_base64(text),
}


@cache
def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """An ECMA-262 pattern as a test on text. A final ``$`` means end of text (``\\Z``),
    as in ECMA-262, not "before a final newline" as in Python."""
    if pattern in _LINEAR_FORMS:
        return _LINEAR_FORMS[pattern]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    compiled = re.compile(pattern)
    return lambda text: compiled.search(text) is not None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not compile_pattern(pattern)(instance):
        shown = instance if len(instance) <= 40 else instance[:37] + "..."
        yield ValidationError(f"{shown!r} does not match {pattern!r}")


_RequestValidator = extend(OAS30WriteValidator, {"pattern": _pattern})


def inline_refs(node: Any, root: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """A copy of ``node`` with every local ``$ref`` replaced by its target."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref are supported, got {ref!r}")
            if ref in seen:
                raise ValueError(f"recursive $ref {ref!r}")
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return inline_refs(target, root, (*seen, ref))
        return {k: inline_refs(v, root, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_refs(v, root, seen) for v in node]
    return node


@dataclass(frozen=True)
class Problem:
    """One reason a request is refused: its kind, where (JSON path) and a short message.

    ``kind`` is one of ``required``, ``type``, ``enum``, ``format``, ``other``;
    ``location`` is ``body`` or ``query``.
    """

    kind: str
    path: tuple[str | int, ...]
    message: str
    location: str = "body"
    keyword: str = ""

    @property
    def field(self) -> str:
        """Dotted path with indexes: ``agreements[0].signed_at``."""
        out = ""
        for part in self.path:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else part
        return out


class Invalid(Exception):
    """The request does not match the spec; ``problem`` is the one to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def required_at(schema: Any, path: tuple[str | int, ...]) -> bool:
    """True when the member at ``path`` is listed as required by its parent object."""
    node = schema
    for i, part in enumerate(path):
        if not isinstance(node, dict):
            return False
        if isinstance(part, int):
            node = node.get("items", {})
        elif i == len(path) - 1:
            return part in node.get("required", ())
        else:
            node = node.get("properties", {}).get(part, {})
    return False


def _problem(err: ValidationError, location: str, prefix: tuple[str | int, ...],
             root: Any) -> Problem:
    path: tuple[str | int, ...] = (*prefix, *err.absolute_path)
    keyword = str(err.validator)
    if keyword == "type" and err.instance is None and required_at(root, tuple(err.absolute_path)):
        name = path[-1] if path else ""
        return Problem("required", path, f"missing required field {name}", location, keyword)
    if keyword == "required":
        instance = err.instance if isinstance(err.instance, dict) else {}
        missing = [p for p in err.validator_value if p not in instance]
        name = missing[0] if missing else ""
        return Problem("required", (*path, name), f"missing required field {name}", location,
                       keyword)
    if keyword == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        name = extra[0] if extra else ""
        return Problem("other", (*path, name), f"unknown field {name}", location, keyword)
    if keyword == "enum":
        return Problem("enum", path, "value is not one of the allowed values", location, keyword)
    if keyword in ("type", "nullable"):
        return Problem("type", path, "value has the wrong type", location, keyword)
    if keyword == "format":
        return Problem("format", path, f"value is not a valid {err.validator_value}", location,
                       keyword)
    limit = err.validator_value
    shown = repr(limit) if isinstance(limit, (int, float, str)) and len(repr(limit)) < 80 else ""
    return Problem("other", path, f"value violates {keyword} {shown}".strip(), location, keyword)


def first_problem(validator: Any, instance: Any, location: str,
                  prefix: tuple[str | int, ...] = ()) -> Problem | None:
    """The problem to report: missing fields first (a required member that is null
    counts as missing), then type, enum, format, the rest."""
    best: Problem | None = None
    for err in validator.iter_errors(instance):
        p = _problem(err, location, prefix, validator.schema)
        if best is None or (_KIND_RANK[p.kind], len(p.path)) < (_KIND_RANK[best.kind],
                                                                 len(best.path)):
            best = p
    return best


@dataclass(frozen=True)
class Param:
    name: str
    required: bool
    schema: dict[str, Any]
    explode: bool
    validator: Any = field(repr=False)

    @property
    def is_array(self) -> bool:
        return self.schema.get("type") == "array"


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


@dataclass
class OperationSchema:
    """What one operation accepts: its JSON body schema and query parameters."""

    method: str
    path: str
    body_required: bool = False
    body: Any = None
    query: list[Param] = field(default_factory=list)

    def validate_body(self, data: Any) -> None:
        if self.body is None:
            return
        problem = first_problem(self.body, data, "body")
        if problem is not None:
            raise Invalid(problem)

    def parse_query(self, params: Any) -> dict[str, Any]:
        """Typed query values (lists for array parameters); unknown names are ignored."""
        out: dict[str, Any] = {}
        for p in self.query:
            raw: list[str] = params.getlist(p.name)
            if not raw:
                if p.required:
                    raise Invalid(Problem("required", (p.name,),
                                          f"missing query parameter {p.name}", "query",
                                          "required"))
                continue
            if p.is_array:
                # form style without explode: one comma-separated value ("" = empty list)
                items = raw if p.explode else [v for r in raw if r for v in r.split(",")]
                value: Any = [_coerce(v, p.schema.get("items", {})) for v in items]
            else:
                value = _coerce(raw[-1], p.schema)
            problem = first_problem(p.validator, value, "query", (p.name,))
            if problem is not None:
                raise Invalid(problem)
            out[p.name] = value
        return out


def _validator(schema: Any) -> Any:
    return _RequestValidator(schema, format_checker=FORMATS)


def operation_schemas(spec: Mapping[str, Any]) -> dict[tuple[str, str], OperationSchema]:
    """``(METHOD, path template)`` -> what the operation accepts, for every operation."""
    out: dict[tuple[str, str], OperationSchema] = {}
    for path, item in spec.get("paths", {}).items():
        item = inline_refs(item, spec)
        shared = item.get("parameters", [])
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            schema = OperationSchema(method.upper(), path)
            params = {(p["name"], p["in"]): p for p in [*shared, *op.get("parameters", [])]}
            for p in params.values():
                if p["in"] != "query":
                    continue
                pschema = p.get("schema", {})
                explode = p.get("explode", p.get("style", "form") == "form")
                schema.query.append(
                    Param(p["name"], bool(p.get("required")), pschema, explode,
                          _validator(pschema))
                )
            body = op.get("requestBody")
            if body:
                media = body.get("content", {}).get("application/json")
                schema.body_required = bool(body.get("required"))
                if media and "schema" in media:
                    schema.body = _validator(media["schema"])
            out[(method.upper(), path)] = schema
    return out
