"""Which requirements the tests name, and where tests and catalogue have drifted apart.

Tests name requirements in two ways, both found statically (no target needed):
``@pytest.mark.requirement("BM-DOC-004", ...)`` on a scenario, and module-level
mappings whose name ends in ``_REQUIREMENTS``: the conformance stage maps each
Schemathesis check to a requirement this way, in brokercert/fuzzing.py, and marks
its tests with those mappings' values.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from brokercert._paths import suite_root
from brokercert.catalog import Catalog

ID_RE = re.compile(r"^(ALP|BM|GEN)-[A-Z]+-\d{3}$")
TEST_DIRS = ("conformance", "scenarios")
_CHECK_MAP = Path(__file__).resolve().parent / "fuzzing.py"


@dataclass(frozen=True)
class Drift:
    untested: dict[str, list[str]]  # dialect -> requirement ids no test names
    unknown: dict[str, list[str]]  # id -> places naming it ("file:line")

    @property
    def ok(self) -> bool:
        return not any(self.untested.values()) and not self.unknown


def _ids_in(node: ast.AST) -> list[str]:
    return [
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and ID_RE.match(n.value)
    ]


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def named_requirements(root: Path | None = None) -> dict[str, list[str]]:
    """Map each requirement ID named by a test to the places ("path:line") naming it."""
    root = root or suite_root()
    found: dict[str, list[str]] = defaultdict(list)
    paths = [p for folder in TEST_DIRS for p in sorted((root / folder).rglob("*.py"))]
    for path in [*paths, _CHECK_MAP]:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node.func) == "requirement":
                for arg in node.args:
                    for rid in _ids_in(arg):
                        found[rid].append(f"{rel}:{node.lineno}")
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if any(n.endswith("_REQUIREMENTS") for n in names) and node.value:
                    for rid in _ids_in(node.value):
                        found[rid].append(f"{rel}:{node.lineno}")
    return dict(found)


def check(catalogs: list[Catalog], root: Path | None = None) -> Drift:
    named = named_requirements(root)
    known: set[str] = set()
    untested: dict[str, list[str]] = {}
    for cat in catalogs:
        known |= cat.ids
        untested[cat.dialect] = sorted(rid for rid in cat.ids if rid not in named)
    unknown = {rid: where for rid, where in sorted(named.items()) if rid not in known}
    return Drift(untested=untested, unknown=unknown)
