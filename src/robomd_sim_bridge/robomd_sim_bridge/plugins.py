"""What this package adds to ``robomd_diagnoser`` through its entry points (see setup.py):

- the ``sim`` world type (:func:`build_world`: a :class:`~robomd_sim_bridge.world.RobosuiteWorld`
  with its policy under test),
- the ``expert`` policy kind (the scripted controllers; they read privileged simulator state),
- the Lift weights shipped in ``data/`` (policy specs ``bc``, ``bc_state`` and ``lerobot`` on
  Lift),
- the ``sim`` demonstration source (its experts' episodes, for fine-tuning),
- the ``collect-demos`` and ``collect-state-demos`` commands and the ``bench sim`` benchmark.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from robomd_diagnoser.config import WorldSettings
from robomd_diagnoser.policy import PolicyError, RolloutPolicy, make_policy
from robomd_diagnoser.world import World

if TYPE_CHECKING:
    from robomd_sim_bridge.demos import DemoSummary

#: Vision BC weights shipped for Lift (UR5e, 84x84 agentview image + eef_pos + gripper).
SHIPPED_BC = Path(__file__).resolve().parent / "data" / "lift_bc.pt"
#: Low-dimensional-state BC weights shipped for Lift (eef_pos + gripper + object state, no camera).
SHIPPED_STATE_BC = Path(__file__).resolve().parent / "data" / "lift_state_bc.pt"
#: A LeRobot ACT checkpoint shipped for Lift (action chunks from the same state, no camera).
SHIPPED_LEROBOT_ACT = Path(__file__).resolve().parent / "data" / "lift_act_state"


def lift_bc_weights() -> Path:
    """The shipped Lift vision BC weights (``robomd.weights`` entry ``bc.lift``)."""
    return SHIPPED_BC


def lift_state_bc_weights() -> Path:
    """The shipped Lift state BC weights (``robomd.weights`` entry ``bc_state.lift``)."""
    return SHIPPED_STATE_BC


def lift_lerobot_weights() -> Path:
    """The shipped Lift LeRobot ACT checkpoint (``robomd.weights`` entry ``lerobot.lift``)."""
    return SHIPPED_LEROBOT_ACT


def build_world(settings: WorldSettings) -> World:
    """The ``sim`` world type: robosuite with the settings' catalog, robot, camera and policy
    (none when ``settings.policy`` is empty: the world then only shows scenes).

    Rendering is offscreen: ``MUJOCO_GL`` is honoured when set, else EGL is used. The simulator
    is imported here, not when the entry point is looked up.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    from robomd_sim_bridge.world import RobosuiteWorld

    world = RobosuiteWorld(settings.load_catalog(), robot=settings.robot, camera=settings.camera,
                           camera_size=settings.camera_size, horizon=settings.horizon)
    if settings.policy:  # else a world that only shows scenes
        world.policy = make_policy(settings.policy, world)
    return world


def expert(arg: str, world: World | None, device: str) -> RolloutPolicy:
    """Policy kind ``expert``: the scripted controller of the simulated world's task."""
    from robomd_sim_bridge.experts import make_expert
    from robomd_sim_bridge.world import RobosuiteWorld

    if arg:
        raise PolicyError(f"policy spec 'expert:{arg}': the expert takes no argument; use expert")
    if not isinstance(world, RobosuiteWorld):
        raise PolicyError("policy 'expert' reads the simulator's privileged state; it runs only "
                          "in a simulated (sim) world")
    return make_expert(world)


def collect_expert_demos(catalog: str, perturbations: tuple[str, ...], n: int, root: Path, *,
                         noise: float, horizon: int, camera_size: int, robot: str, workers: int,
                         seed: int, log: Callable[[str], None]) -> DemoSummary:
    """The ``sim`` demonstration source: ``n`` expert episodes under ``perturbations``."""
    from robomd_sim_bridge.demos import DemoSettings, collect_demos

    settings = DemoSettings(catalog=catalog, perturbations=perturbations, noise=noise,
                            horizon=horizon, camera_size=camera_size, robot=robot)
    return collect_demos(settings, root, n, workers=workers, seed=seed, log=log)
