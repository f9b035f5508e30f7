"""Request validation taken from the spec itself: JSON bodies and query parameters.

Every operation's request schema is read from the OpenAPI document (with its local
``$ref``s inlined) and checked with openapi-schema-validator's OAS 3.0 write
validator and a format checker, so what the spec forbids is refused and what it
allows gets through. Problems come out dialect-neutral (:class:`Problem`); each
dialect turns them into its own error envelope.

That validator is exact but slow (a few hundred microseconds for a create body), so
each schema is also compiled with fastjsonschema after an exact translation of its
OAS 3.0 keywords (:func:`fast_schema`). A value the compiled check accepts is accepted;
anything else (a rejection, an exception, a schema that could not be translated)
goes to the exact validator, which alone decides and words every refusal.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import fastjsonschema
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
# The run of characters is possessive: '=' is not one of them, so giving some back could
# never help, and a misplaced '=' near the end of 32 MB is refused without 32M steps back.
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/]*+={0,2}")


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


# -- the fast path ------------------------------------------------------------------------
#
# fast_schema() rewrites an (inlined) OAS 3.0 schema as a draft-04 schema that
# fastjsonschema compiles to a check accepting exactly what _RequestValidator accepts.
# It keeps only keywords whose meaning it reproduces and refuses (Untranslatable) any
# other, so that an operation it cannot translate simply has no fast path:
#
# * ``type: T`` + ``nullable: true`` is ``type: [T, "null"]`` (OAS 3.0.3: nullable only
#   widens the type assertion of its own schema object); nullable without a type, and
#   annotations (description, default, example, x-..., ...), are dropped;
# * ``format`` is checked by the very function FORMATS uses (a custom format), for the
#   formats FORMATS knows; others are dropped, as FORMATS ignores them;
# * ``pattern`` is checked by compile_pattern() (the linear base64 forms, ``$`` = end of
#   text), as a custom format in an ``allOf`` beside the schema's own format;
# * enums of scalars, minimum/maximum (draft-04 boolean exclusive*), lengths, required,
#   properties, additionalProperties, single-schema items, allOf and anyOf are the same
#   in both; readOnly: true, discriminator, oneOf, not and anything unknown refuse.

_DRAFT04 = "http://json-schema.org/draft-04/schema#"
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_ANNOTATIONS = frozenset({"description", "title", "default", "example", "externalDocs",
                          "xml", "deprecated", "writeOnly"})
_COUNTS = frozenset({"minLength", "maxLength", "minItems", "maxItems", "minProperties",
                     "maxProperties"})
# FORMATS checkers that also judge non-strings; fastjsonschema calls formats on strings only
_NON_STRING_FORMATS = frozenset({"int32", "int64", "float", "double"})

# custom format name -> test; names are opaque (they end up in generated code)
_FAST_FORMATS: dict[str, Callable[[str], bool]] = {}
_FAST_NAMES: dict[tuple[str, str], str] = {}


class Untranslatable(ValueError):
    """The schema uses something the fast path does not reproduce exactly."""


def _format_test(name: str) -> Callable[[str], bool]:
    """FORMATS' verdict on a string for format ``name``: false where FormatChecker.check
    raises FormatError; an exception it lets through propagates here too."""
    func, raises = FORMATS.checkers[name]

    def test(text: str) -> bool:
        try:
            return bool(func(text))
        except raises:
            return False

    return test


def _custom_format(kind: str, value: str) -> str:
    key = (kind, value)
    name = _FAST_NAMES.get(key)
    if name is None:
        test = compile_pattern(value) if kind == "pattern" else _format_test(value)
        name = f"brokercert-{len(_FAST_NAMES)}"
        _FAST_FORMATS[name] = test
        _FAST_NAMES[key] = name
    return name


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _translate(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise Untranslatable(f"schema is not an object: {node!r}")
    out: dict[str, Any] = {}
    extra: list[dict[str, Any]] = []
    for key, value in node.items():
        if not isinstance(key, str):
            raise Untranslatable(f"keyword {key!r}")
        if key.startswith("x-") or key in _ANNOTATIONS or key == "nullable":
            continue
        if key == "readOnly":
            if value is not False:
                raise Untranslatable("readOnly")
        elif key == "type":
            if value not in _TYPES:
                raise Untranslatable(f"type {value!r}")
            out["type"] = [value, "null"] if node.get("nullable") is True else value
        elif key == "format":
            if not isinstance(value, str):
                raise Untranslatable(f"format {value!r}")
            if value in _NON_STRING_FORMATS:
                raise Untranslatable(f"format {value!r}")
            if value in FORMATS.checkers:
                out["format"] = _custom_format("format", value)
        elif key == "pattern":
            if not isinstance(value, str):
                raise Untranslatable(f"pattern {value!r}")
            try:
                name = _custom_format("pattern", value)
            except re.error as exc:
                raise Untranslatable(f"pattern {value!r}: {exc}") from None
            extra.append({"format": name})
        elif key in _COUNTS:
            if not _is_count(value):
                raise Untranslatable(f"{key} {value!r}")
            out[key] = value
        elif key in ("minimum", "maximum"):
            if not _is_number(value):
                raise Untranslatable(f"{key} {value!r}")
            out[key] = value
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if not isinstance(value, bool):
                raise Untranslatable(f"{key} {value!r}")
            out[key] = value
        elif key == "enum":
            if not isinstance(value, list) or not all(
                    v is None or isinstance(v, (str, int))
                    or (isinstance(v, float) and math.isfinite(v)) for v in value):
                raise Untranslatable(f"enum {value!r}")
            out[key] = list(value)
        elif key == "required":
            if (not isinstance(value, list) or not all(isinstance(v, str) for v in value)
                    or len(set(value)) != len(value)):
                raise Untranslatable(f"required {value!r}")
            out[key] = list(value)
        elif key == "properties":
            if not isinstance(value, dict):
                raise Untranslatable("properties")
            out[key] = {str(k): _translate(v) for k, v in value.items()}
        elif key == "additionalProperties":
            out[key] = value if isinstance(value, bool) else _translate(value)
        elif key == "items":
            out[key] = _translate(value)
        elif key in ("allOf", "anyOf"):
            if not isinstance(value, list) or not value:
                raise Untranslatable(key)
            out[key] = [_translate(v) for v in value]
        else:
            raise Untranslatable(f"keyword {key!r}")
    if extra:
        out["allOf"] = [*out.get("allOf", []), *extra]
    return out


def fast_schema(schema: Any) -> dict[str, Any]:
    """The draft-04 schema (with brokercert custom formats) that accepts exactly what
    the OAS 3.0 ``schema`` accepts; raises :class:`Untranslatable`."""
    return {"$schema": _DRAFT04, **_translate(schema)}


@cache
def _compiled(key: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(json.loads(key), formats=_FAST_FORMATS,
                                  use_default=False, detailed_exceptions=False)


def fast_validator(schema: Any) -> Callable[[Any], Any] | None:
    """A compiled check that returns for what ``schema`` accepts and raises for the
    rest, or None when the schema cannot be translated exactly."""
    try:
        return _compiled(json.dumps(fast_schema(schema), sort_keys=True))
    except (Untranslatable, fastjsonschema.JsonSchemaDefinitionException, TypeError,
            ValueError):
        return None


def fast_accepts(check: Callable[[Any], Any] | None, instance: Any) -> bool:
    """True when the compiled ``check`` accepts ``instance``; any doubt is False."""
    if check is None:
        return False
    try:
        check(instance)
    except Exception:  # a rejection, or something unforeseen: the exact validator decides
        return False
    return True


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
    fast: Callable[[Any], Any] | None = field(default=None, repr=False, compare=False)

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
    fast_body: Callable[[Any], Any] | None = field(default=None, repr=False)

    def validate_body(self, data: Any) -> None:
        if self.body is None or fast_accepts(self.fast_body, data):
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
            if not fast_accepts(p.fast, value):
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
                          _validator(pschema), fast_validator(pschema))
                )
            body = op.get("requestBody")
            if body:
                media = body.get("content", {}).get("application/json")
                schema.body_required = bool(body.get("required"))
                if media and "schema" in media:
                    schema.body = _validator(media["schema"])
                    schema.fast_body = fast_validator(media["schema"])
            out[(method.upper(), path)] = schema
    return out
