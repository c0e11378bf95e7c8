"""A policy for the automatic-reset graph test: the simulator's expert (it lifts the cube), which
writes what the fake hardware saw to ``$ROBOMD_RECORD_DIR`` at the start of each rollout n:
``cube_<n>.npy`` (the cube's position, base frame) and ``between_<n>.npz`` (the TCP twists and
positions the fake recorded between the previous rollout's last step and now: the reset's
place-back). With ``$ROBOMD_PUSH_ROLLOUT`` = n, rollout n first slides the cube 6 cm along y (after
the executor took its frame), as if the policy had pushed it before grasping."""

import os
from pathlib import Path

import mujoco
import numpy as np

from robomd_ur5e import fake


class RecordingExpert:
    """The expert, recording the fake robot between rollouts."""

    uses_image = True

    def __init__(self, out: Path) -> None:
        self.robot = fake._ACTIVE
        self.expert = fake.expert_policy()
        self.out, self.rollouts, self.mark = out, 0, 0
        self.push = int(os.environ.get("ROBOMD_PUSH_ROLLOUT", "0"))

    def _cube(self) -> np.ndarray:
        world = self.robot.world
        return world.to_base(world.object_state("cube").world_pos)

    def reset(self) -> None:
        self.rollouts += 1
        n, robot = self.rollouts, self.robot
        np.save(self.out / f"cube_{n}.npy", self._cube())
        np.savez(self.out / f"between_{n}.npz", twists=np.array(robot.twists[self.mark:]),
                 positions=np.array(robot.positions[self.mark:]))
        if n == self.push:
            world = self.robot.world
            joint = world.model.joint(world.model.body("cube_main").jntadr[0])
            world.data.qpos[joint.qposadr[0] + 1] += 0.06
            mujoco.mj_forward(world.model, world.data)
        self.expert.reset()

    def act(self, obs: dict) -> np.ndarray:
        action = self.expert.act(obs)
        self.mark = len(self.robot.twists) + 1  # the twist of this step is the rollout's too
        return action


def recording_expert() -> RecordingExpert:
    """Factory for ``module:autoreset_helpers:recording_expert``."""
    out = Path(os.environ["ROBOMD_RECORD_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    return RecordingExpert(out)
