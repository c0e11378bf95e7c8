"""The World protocol: what a simulated or a real scene offers the diagnoser.

Executing a rollout and judging it are separate roles (a real arm executes, a detector judges).
An aborted rollout (safety stop, operator abort, fault, cancel) is never a policy failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

from robomd_diagnoser.catalog import Catalog


class RolloutStatus(StrEnum):
    """How a rollout ended. Only COMPLETED rollouts are judged."""

    COMPLETED = "completed"  # ran to success or to the step limit
    ABORTED = "aborted"  # stopped by safety, operator or fault: not the policy's failure
    CANCELLED = "cancelled"  # stopped on request
    UNAVAILABLE = "unavailable"  # the scene could not be set up (e.g. operator skipped)


@dataclass(frozen=True)
class RolloutResult:
    """What executing a rollout produced (before judging)."""

    status: RolloutStatus
    steps: int
    duration: float
    reason: str = ""


@dataclass(frozen=True)
class Outcome:
    """A judged rollout: success, how sure the judge is, and why."""

    success: bool
    confidence: float = 1.0
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class WorldError(RuntimeError):
    """The world could not do what was asked (a dead node, a fault); never a policy failure."""


class PerturbationUnavailable(WorldError):
    """The scene cannot show these perturbations here (e.g. the operator skipped them)."""


StepCallback = Callable[[int, float], None]
"""Called after each control step with (step, elapsed seconds)."""


@runtime_checkable
class World(Protocol):
    """A scene the diagnoser can perturb and roll a policy out in (cf. robomimic's EnvBase)."""

    catalog: Catalog

    def reset(self, seed: int) -> None:
        """Return to the nominal scene (all perturbations removed), seeded."""

    def apply(self, perturbations: Sequence[str]) -> None:
        """Set the scene's perturbations to exactly this cumulative list of catalog names.

        :raises PerturbationUnavailable: the scene cannot show them (not a policy failure).
        """

    def observe(self) -> np.ndarray:
        """The scene camera image, HxWx3 uint8, upright."""

    def execute(self, max_steps: int, seed: int, on_step: StepCallback | None = None,
                should_stop: Callable[[], bool] | None = None) -> RolloutResult:
        """Run the policy under test once from the current scene."""

    def judge(self) -> Outcome:
        """Judge the last executed rollout."""

    def close(self) -> None:
        """Release resources."""
