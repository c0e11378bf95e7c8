"""Policies under test in the simulated world: resolve a spec into a RolloutPolicy.

Specs: ``expert`` (the scripted controller, privileged state), ``bc`` (the shipped vision BC
weights for Lift, :data:`SHIPPED_BC`), ``bc_state`` (the shipped state BC weights for Lift,
:data:`SHIPPED_STATE_BC`), and everything :func:`robomd_diagnoser.policy.load_policy`
understands (``torchscript:<path>``, ``module:<pkg.mod:factory>``, ``bc:<path>``).
"""

from __future__ import annotations

from pathlib import Path

from robomd_diagnoser.bc import BCPolicy
from robomd_diagnoser.policy import PolicyError, RolloutPolicy, load_policy

#: Vision BC weights shipped for Lift (UR5e, 84x84 agentview image + eef_pos + gripper).
SHIPPED_BC = Path(__file__).resolve().parent / "data" / "lift_bc.pt"
SHIPPED_BC_TASK = "lift"
#: Low-dimensional-state BC weights shipped for Lift (eef_pos + gripper + object state, no camera).
SHIPPED_STATE_BC = Path(__file__).resolve().parent / "data" / "lift_state_bc.pt"


def make_policy(spec: str, world: object) -> RolloutPolicy:
    """Build the policy named by ``spec`` for ``world`` (a :class:`RobosuiteWorld`).

    :param spec: ``expert``, ``bc``, ``bc_state`` or a :func:`load_policy` spec.
    :param world: the world the policy will run in (the expert reads its privileged state).
    :raises PolicyError: for an unknown spec, a task without shipped weights, or a camera size
        the weights were not trained for.
    """
    if spec == "expert":
        from robomd_sim_bridge.experts import make_expert

        return make_expert(world)
    if spec in ("bc", "bc_state"):
        task = world.catalog.task
        if task != SHIPPED_BC_TASK:
            train = ("collect-demos` and `robomd train-bc" if spec == "bc" else
                     "collect-state-demos` and `robomd train-state-bc")
            raise PolicyError(f"the shipped {spec} policy is for task {SHIPPED_BC_TASK!r}, not "
                              f"{task!r}; train one with `robomd {train}`, then use "
                              f"{spec}:<weights>")
        policy = load_policy(f"bc:{SHIPPED_BC}" if spec == "bc" else
                             f"bc_state:{SHIPPED_STATE_BC}")
    else:
        policy = load_policy(spec)
    if not isinstance(policy, BCPolicy):
        return policy
    size = policy.meta["image_size"]
    camera = getattr(world, "camera_size", size)
    if camera != size:
        raise PolicyError(f"policy {spec!r} was trained on {size}x{size} images but the world's "
                          f"camera is {camera}x{camera}; use --camera-size {size}")
    return policy
