"""The contract as data: OpenAPI spec, dialect profile and requirement catalogue."""

from brokercert.catalog._loader import (
    Catalog,
    CatalogError,
    common_requirements,
    dialects,
    load,
    versions,
)
from brokercert.catalog._models import (
    ErrorEnvelope,
    Level,
    Limit,
    Operation,
    Pagination,
    Profile,
    Requirement,
    SandboxTrigger,
    StateMachine,
)

__all__ = [
    "Catalog",
    "CatalogError",
    "ErrorEnvelope",
    "Level",
    "Limit",
    "Operation",
    "Pagination",
    "Profile",
    "Requirement",
    "SandboxTrigger",
    "StateMachine",
    "common_requirements",
    "dialects",
    "load",
    "versions",
]
