"""Typed form of a dialect's profile.yaml and requirements.yaml.

The models are strict (unknown keys are errors) so that a typo in a YAML file
fails loudly at load time instead of silently dropping a rule.
"""

from __future__ import annotations

from enum import StrEnum
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(StrEnum):
    """How a requirement weighs in the verdict: MUST fails certification, SHOULD warns."""

    MUST = "MUST"
    SHOULD = "SHOULD"


class Requirement(_Strict):
    """One checkable rule, cited to the document it comes from."""

    id: str = Field(pattern=r"^(ALP|BM|GEN)-[A-Z]+-\d{3}$")
    level: Level
    title: str = Field(min_length=10)
    operation: str = Field(description="'METHOD /path' as in the spec, or '*' for every operation")
    source: str = Field(min_length=5)
    tags: tuple[str, ...] = ()
    url: str | None = None

    @property
    def area(self) -> str:
        return self.id.split("-")[1]

    @property
    def dialect_prefix(self) -> str:
        return self.id.split("-")[0]


class Operation(_Strict):
    """A logical operation the harness drives, mapped to the dialect's method and path."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    success: int = Field(ge=200, le=299)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


class Auth(_Strict):
    scheme: Literal["basic", "api_key_headers"]
    key_header: str | None = None
    secret_header: str | None = None

    @model_validator(mode="after")
    def _headers_for_api_keys(self) -> Auth:
        if self.scheme == "api_key_headers" and not (self.key_header and self.secret_header):
            raise ValueError("api_key_headers auth needs key_header and secret_header")
        return self


class Limit(_Strict):
    """A size or count limit, with the boundary values that every reading must agree on.

    ``value`` and ``unit`` state the documented limit; ``accept_at`` must be accepted and
    ``reject_at`` rejected, both counted on the ``measured`` form: characters of base64
    text when encoded, bytes when decoded, items when a count.
    """

    name: str
    operation: str
    value: float
    unit: Literal["MB", "bytes", "chars", "items"]
    measured: Literal["encoded", "decoded", "count"]
    accept_at: int = Field(ge=0)
    reject_at: int = Field(ge=1)
    reject_status: tuple[int, ...] = (400, 413, 422)
    error_code: str | int | None = None
    source: str

    @model_validator(mode="after")
    def _ordered(self) -> Limit:
        if self.accept_at >= self.reject_at:
            raise ValueError(f"limit {self.name}: accept_at must be below reject_at")
        return self


class SandboxTrigger(_Strict):
    """An input that forces the account to a documented status in a sandbox."""

    name: str
    field: str = Field(description="dotted path in the create body")
    value: str = Field(description="literal value, or a template with {status}, or a suffix")
    match: Literal["exact", "suffix", "template"]
    reaches: str | None = Field(
        default=None, description="final status; None for templates (the status is the input)"
    )
    kyc_status: str | None = None
    statuses: tuple[str, ...] = Field(
        default=(), description="statuses a template trigger can force"
    )


class StateMachine(_Strict):
    states: tuple[str, ...]
    initial: tuple[str, ...]
    terminal: tuple[str, ...]
    closed: str
    transitions: dict[str, tuple[str, ...]]
    triggers: tuple[SandboxTrigger, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> StateMachine:
        known = set(self.states)
        named = set(self.initial) | set(self.terminal) | {self.closed} | set(self.transitions)
        for targets in self.transitions.values():
            named |= set(targets)
        for trig in self.triggers:
            named |= {s for s in (trig.reaches,) if s} | set(trig.statuses)
        unknown = named - known
        if unknown:
            raise ValueError(f"state machine names unknown states: {sorted(unknown)}")
        return self

    def allows(self, before: str, after: str) -> bool:
        """True when ``before -> after`` is one observed step (staying put is always allowed)."""
        return before == after or after in self.transitions.get(before, ())

    def is_path(self, observed: list[str]) -> bool:
        if not observed:
            return True
        if observed[0] not in self.states:
            return False
        return all(self.allows(a, b) for a, b in pairwise(observed))


class ErrorEnvelope(_Strict):
    """Where an error body keeps its code, message and field (dotted JSON paths)."""

    code_path: str
    message_path: str
    field_path: str | None = None
    request_id_path: str | None = None
    code_type: Literal["integer", "string"]


class Close(_Strict):
    operation: str = Field(description="logical operation key used to close")
    again_status: tuple[int, ...] = Field(description="statuses accepted when closing twice")
    again_code: str | int | None = None


class RateLimit(_Strict):
    requests: int = Field(ge=1)
    per_seconds: float = Field(gt=0)
    documented: bool
    source: str

    @property
    def per_second(self) -> float:
        return self.requests / self.per_seconds


class Pagination(_Strict):
    """How the list operation pages: a cursor envelope, or one bare array."""

    style: Literal["cursor", "bare_array"]
    default_limit: int | None = None
    max_limit: int = Field(ge=1)
    over_max: tuple[Literal["reject", "clamp"], ...] = Field(
        description="readings accepted when a client asks for more than max_limit"
    )
    limit_param: str | None = None
    cursor_param: str | None = None
    items_path: str | None = Field(default=None, description="dotted path to the items list")
    next_cursor_path: str | None = None
    has_more_path: str | None = None
    default_sort: Literal["asc", "desc"] = "desc"


class Profile(_Strict):
    """What the OpenAPI document cannot say about a dialect."""

    dialect: str
    version: str
    title: str
    auth: Auth
    id_param: str
    operations: dict[str, Operation]
    limits: tuple[Limit, ...]
    state_machine: StateMachine
    error_envelope: ErrorEnvelope
    close: Close
    production_hosts: tuple[str, ...]
    sandbox_hosts: tuple[str, ...] = ()
    rate_limit: RateLimit
    pagination: Pagination
    create_initial_status: tuple[str, ...] = Field(
        description="statuses a fresh account may report in the create response"
    )
    unknown_account_status: tuple[int, ...] = Field(
        description="statuses accepted for an id that does not exist"
    )

    @model_validator(mode="after")
    def _refs(self) -> Profile:
        keys = set(self.operations)
        if self.close.operation not in keys:
            raise ValueError(f"close.operation {self.close.operation!r} is not an operation")
        for limit in self.limits:
            if limit.operation not in keys:
                raise ValueError(f"limit {limit.name}: unknown operation {limit.operation!r}")
        return self

    def operation(self, name: str) -> Operation:
        return self.operations[name]

    def limit(self, name: str) -> Limit:
        for limit in self.limits:
            if limit.name == name:
                return limit
        raise KeyError(name)
