"""Depth presets: how much generated data a run uses. Speed is never bought by testing less.

Every preset runs every scenario; the presets differ only in the fuzzing budget.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Depth:
    name: str
    max_examples: int  # generated cases per operation in the fuzzing phase
    coverage_phase: bool  # Schemathesis' deterministic boundary and negative values
    stateful_examples: int  # state-machine runs (sequences through the links); 0 = none
    stateful_steps: int

    @property
    def phases(self) -> list[str]:
        phases = ["examples"]
        if self.coverage_phase:
            phases.append("coverage")
        phases.append("fuzzing")
        return phases


PRESETS: dict[str, Depth] = {
    "quick": Depth(
        "quick", max_examples=10, coverage_phase=False, stateful_examples=0, stateful_steps=0
    ),
    "standard": Depth(
        "standard", max_examples=50, coverage_phase=True, stateful_examples=20, stateful_steps=6
    ),
    "deep": Depth(
        "deep", max_examples=500, coverage_phase=True, stateful_examples=200, stateful_steps=10
    ),
}


def preset(name: str) -> Depth:
    from brokercert.errors import UserError

    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown depth {name!r}; choose one of: {', '.join(PRESETS)}") from None
