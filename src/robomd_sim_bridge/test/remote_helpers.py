"""A light policy for tests that serve one from a subprocess (imports numpy only)."""

import numpy as np


class HoldStill:
    """Keeps the arm still with the gripper open; does not use the camera."""

    uses_image = False

    def reset(self) -> None:
        """Stateless."""

    def act(self, obs: dict) -> np.ndarray:
        return np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0])


def make_policy() -> HoldStill:
    """Factory for ``module:remote_helpers:make_policy``."""
    return HoldStill()
