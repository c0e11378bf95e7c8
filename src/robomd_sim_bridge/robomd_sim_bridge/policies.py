"""Policies under test in the simulated world: resolve a spec into a RolloutPolicy.

Specs: ``expert`` (the scripted controller, privileged state), ``bc`` (the shipped vision BC
weights for Lift, :data:`SHIPPED_BC`), and everything :func:`robomd_diagnoser.policy.load_policy`
understands (``torchscript:<path>``, ``module:<pkg.mod:factory>``, ``bc:<path>``).
"""

from __future__ import annotations

from pathlib import Path

from robomd_diagnoser.bc import BCPolicy
from robomd_diagnoser.policy import PolicyError, RolloutPolicy, load_policy

#: Vision BC weights shipped for Lift (UR5e, 84x84 agentview image + eef_pos + gripper).
SHIPPED_BC = Path(__file__).resolve().parent / "data" / "lift_bc.pt"
SHIPPED_BC_TASK = "lift"


def make_policy(spec: str, world: object) -> RolloutPolicy:
    """Build the policy named by ``spec`` for ``world`` (a :class:`RobosuiteWorld`).

    :param spec: ``expert``, ``bc`` or a :func:`load_policy` spec.
    :param world: the world the policy will run in (the expert reads its privileged state).
    :raises PolicyError: for an unknown spec, a task without shipped weights, or a camera size
        the weights were not trained for.
    """
    if spec == "expert":
        from robomd_sim_bridge.experts import make_expert

        return make_expert(world)
    if spec == "bc":
        task = world.catalog.task
        if task != SHIPPED_BC_TASK:
            raise PolicyError(f"the shipped bc policy is for task {SHIPPED_BC_TASK!r}, not "
                              f"{task!r}; train one with `robomd collect-demos` and "
                              "`robomd train-bc`, then use bc:<weights>")
        policy = load_policy(f"bc:{SHIPPED_BC}")
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
