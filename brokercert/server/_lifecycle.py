"""Account status: a path planned at creation and walked forward by a clock.

Each account gets a plan at creation (a list of :class:`Step`) that the dialect's
state machine allows step by step. ``kyc_delay`` sets the pace: with a positive delay
the account moves one step every ``kyc_delay`` seconds; with 0 every read of the
account (GET by id) moves it one step, so a test sees each state exactly once and in
order, without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from brokercert.catalog import StateMachine
from brokercert.server._storage import AccountRow, Step


class PlanError(ValueError):
    """A planned path that the dialect's state machine does not allow."""


def check_plan(machine: StateMachine, plan: Sequence[Step]) -> tuple[Step, ...]:
    statuses = [s.status for s in plan]
    if not plan or statuses[0] not in machine.initial or not machine.is_path(statuses):
        raise PlanError(f"status path {' -> '.join(statuses)} is not allowed")
    return tuple(plan)


@dataclass(frozen=True)
class Position:
    """Where an account stands on its plan at a moment."""

    step: int
    stepped_at: float
    current: Step
    changed: bool


class Clock:
    """Advances accounts along their plans; ``now`` is injectable for tests."""

    def __init__(self, delay: float, now: Callable[[], float] = time.time) -> None:
        if delay < 0:
            raise ValueError("kyc_delay must be >= 0")
        self.delay = delay
        self.now = now

    def position(self, row: AccountRow, *, reading: bool) -> Position:
        """The account's step now; ``reading`` is True for a GET of that one account."""
        last = len(row.plan) - 1
        step, stepped_at = row.step, row.stepped_at
        if step < last:
            if self.delay == 0:
                if reading:
                    step, stepped_at = step + 1, self.now()
            else:
                moves = int((self.now() - stepped_at) // self.delay)
                if moves > 0:
                    moves = min(moves, last - step)
                    step += moves
                    stepped_at += moves * self.delay
        return Position(step, stepped_at, row.plan[step], step != row.step)
