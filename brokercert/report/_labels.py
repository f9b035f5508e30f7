"""Allure labels for one test, computed from the catalogue (no pytest, no allure import).

The pytest plugin calls :func:`allure_labels` once per test item (in a fixture, not in
the test body, which Hypothesis runs once per example) and applies the result with
``labels.apply(allure.dynamic)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from brokercert.catalog import Catalog, Level

AREAS = {
    "ACC": "Accounts",
    "DOC": "Documents",
    "CIP": "CIP",
    "AUTH": "Auth",
    "LIST": "List",
    "STATUS": "Status",
    "ERR": "Errors",
    "SCHEMA": "Schema",
    "SRV": "Server",
    "STATE": "Stateful",
}
SEVERITY = {Level.MUST: "critical", Level.SHOULD: "normal"}
_RANK = ("trivial", "minor", "normal", "critical", "blocker")


def area_name(req_id: str) -> str:
    """'BM-DOC-004' -> 'Documents'; an unknown area code is returned as it is."""
    parts = req_id.split("-")
    code = parts[1] if len(parts) >= 3 else req_id
    return AREAS.get(code, code)


@dataclass(frozen=True)
class AllureLabels:
    epic: str
    features: tuple[str, ...]
    story: str
    severity: str
    labels: tuple[tuple[str, str], ...]  # (name, value): one ("requirement", id) per id
    links: tuple[tuple[str, str], ...]  # (name, url)

    @property
    def feature(self) -> str:
        """The first feature (a test naming several areas has several: use ``features``)."""
        return self.features[0] if self.features else "General"

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(value for name, value in self.labels if name == "requirement")

    def apply(self, dynamic: Any) -> None:
        """Apply to ``allure.dynamic`` (passed in, so this module needs no allure import)."""
        dynamic.epic(self.epic)
        if self.features:
            dynamic.feature(*self.features)
        if self.story:
            dynamic.story(self.story)
        dynamic.severity(self.severity)
        for name, value in self.labels:
            dynamic.label(name, value)
        for name, url in self.links:
            dynamic.link(url, name=name)


def allure_labels(
    catalog: Catalog, requirement_ids: Iterable[str], operation: str | None
) -> AllureLabels:
    """Labels for a test verifying ``requirement_ids`` on ``operation`` ('POST /v1/accounts').

    With ``operation`` None (a scenario), the story is the operation the requirements
    name in the catalogue, or "every operation" for rules that apply to all ('*').
    An id the catalogue does not know still gets its requirement label and feature (the
    traceability check reports it); it adds no link and no severity.
    """
    ids = list(dict.fromkeys(requirement_ids))
    known = {r.id: r for r in catalog.requirements}
    if not operation:
        named = [known[r].operation for r in ids if r in known and known[r].operation != "*"]
        operation = named[0] if named else "every operation"
    features = tuple(dict.fromkeys(area_name(rid) for rid in ids))
    severity = "normal"
    labels: list[tuple[str, str]] = [("dialect", catalog.dialect)]
    links: list[tuple[str, str]] = []
    for rid in ids:
        labels.append(("requirement", rid))
        req = known.get(rid)
        if req is None:
            continue
        sev = SEVERITY[req.level]
        if _RANK.index(sev) > _RANK.index(severity):
            severity = sev
        if req.url:
            links.append((rid, req.url))
        else:
            labels.append(("source", f"{rid}: {req.source}"))
    return AllureLabels(
        epic=f"{catalog.dialect} {catalog.version}",
        features=features,
        story=operation,
        severity=severity,
        labels=tuple(labels),
        links=tuple(links),
    )
