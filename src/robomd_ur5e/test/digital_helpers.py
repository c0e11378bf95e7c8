"""A policy for graph tests that keeps what it saw: the first camera image of each rollout is
saved to ``$ROBOMD_RECORD_DIR/rollout_<n>.npy`` (imports numpy only)."""

import os
from pathlib import Path

import numpy as np


class RecordingPolicy:
    """Holds the arm still with the gripper open; records each rollout's first image."""

    uses_image = True

    def __init__(self, out: Path) -> None:
        self.out, self.rollouts, self.first = out, 0, False

    def reset(self) -> None:
        self.rollouts += 1
        self.first = True

    def act(self, obs: dict) -> np.ndarray:
        if self.first:
            np.save(self.out / f"rollout_{self.rollouts}.npy", obs["image"])
            self.first = False
        return np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0])


def recording_policy() -> RecordingPolicy:
    """Factory for ``module:digital_helpers:recording_policy``."""
    out = Path(os.environ["ROBOMD_RECORD_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    return RecordingPolicy(out)
