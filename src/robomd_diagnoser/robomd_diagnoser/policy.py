"""The policy-under-test interface (cf. robomimic's RolloutPolicy) and adapters that load one.

Observations are dicts of numpy arrays. Keys every world provides:
    ``image``        HxWx3 uint8 scene camera, upright
    ``eef_pos``      (3,) end-effector position in the robot base frame, metres
    ``gripper``      (1,) gripper opening in [0, 1] (1 = open)
Actions are (7,) float arrays: end-effector position delta (3), rotation delta (3), gripper (1,
-1 open .. +1 close), in the normalised units of robosuite's OSC_POSE controller.

A policy may set ``uses_image = False`` to tell the world it does not need camera frames (the
world may then skip rendering); policies without the attribute are given images.

Policy specs (:func:`make_policy`) are ``kind`` or ``kind:argument``; each kind is a plug-in of
the ``robomd.policies`` entry-point group (:mod:`robomd_diagnoser.plugins`). This package's:
    ``torchscript:<path>``        a TorchScript file (see :class:`TorchScriptPolicy`)
    ``module:<pkg.mod:factory>``  a Python factory returning a policy or a callable obs -> action
    ``bc:<path>``                 weights of the vision BC model (:mod:`robomd_diagnoser.learning`)
    ``bc``                        the BC weights a package ships for the world's task
                                  (``robomd.weights``)
    ``bc_state:<path>``, ``bc_state``  the low-dimensional-state BC policy (no camera,
                                  :mod:`robomd_diagnoser.learning.state_bc`)
    ``remote:<ws://host:port>``   a policy server (:mod:`robomd_diagnoser.remote_policy`)
    ``robomimic:<file.pth>``      a robomimic checkpoint (:mod:`robomd_diagnoser.robomimic_policy`)
    ``lerobot:<dir>``             a LeRobot checkpoint (:mod:`robomd_diagnoser.lerobot_policy`)
``robomd_sim_bridge`` adds ``expert`` (its scripted controllers).

A spec is trusted input: ``module:`` imports the named module and calls the factory, which runs
arbitrary Python code with the caller's rights (as does a campaign, sweep or node parameter that
names one). Only ``torchscript:`` and ``bc:`` files load data without running Python.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

Observation = dict[str, np.ndarray]
ACTION_DIM = 7
#: The observation keys handed to learned policies (privileged simulator keys are not).
POLICY_KEYS = ("image", "eef_pos", "gripper")


@runtime_checkable
class RolloutPolicy(Protocol):
    """A policy under test: reset at the start of a rollout, then one action per control step."""

    def reset(self) -> None:
        """Start a new rollout (clear any internal state)."""

    def act(self, obs: Observation) -> np.ndarray:
        """Return the (7,) action for this observation."""


class PolicyError(ValueError):
    """A policy spec, file or output is unusable; the message names it and the fix."""


def as_action(value: object, source: str) -> np.ndarray:
    """Convert a policy output to a finite (7,) float64 action.

    :param value: array-like (numpy array, torch tensor, list) with 7 elements.
    :param source: what produced it, for the error message.
    :raises PolicyError: on a wrong size or non-finite values.
    """
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    action = np.asarray(value, dtype=np.float64).reshape(-1)
    if action.shape != (ACTION_DIM,):
        raise PolicyError(f"{source} returned an action of {action.size} elements; a policy must "
                          f"return {ACTION_DIM} (dpos 3, drot 3, gripper 1)")
    if not np.all(np.isfinite(action)):
        raise PolicyError(f"{source} returned a non-finite action {action.tolist()}")
    return action


class CallablePolicy:
    """Wrap a plain callable ``obs -> action`` as a :class:`RolloutPolicy` (stateless).

    :param fn: called with the observation dict, returns 7 numbers.
    :param name: shown in error messages.
    """

    def __init__(self, fn: Callable[[Observation], object], name: str = "callable policy") -> None:
        self.fn = fn
        self.name = name

    def reset(self) -> None:
        """Nothing to clear: a plain callable has no state."""

    def act(self, obs: Observation) -> np.ndarray:
        return as_action(self.fn(obs), self.name)


class TorchScriptPolicy:
    """A user's TorchScript module as a :class:`RolloutPolicy`.

    The module's ``forward(obs: Dict[str, Tensor]) -> Tensor`` receives one unbatched observation:
    ``image`` (H, W, 3) uint8 upright, ``eef_pos`` (3,) float32 and ``gripper`` (1,) float32,
    and returns 7 action values. Optionally it defines ``@torch.jit.export def reset(self) -> None``
    (called at the start of each rollout) and a ``uses_image: bool`` attribute. Export with
    ``torch.jit.script(module).save(path)``. Loading runs no pickled Python: the archive holds
    TorchScript code and tensors only.

    :param path: the ``.pt`` file written by ``torch.jit.save``.
    :param device: torch device to run on.
    :raises PolicyError: if the file is missing or is not a TorchScript archive.
    """

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        import torch

        self.path = Path(path)
        if not self.path.is_file():
            raise PolicyError(f"TorchScript policy file {self.path} does not exist")
        try:
            with warnings.catch_warnings():  # torch >= 2.10 flags TorchScript as deprecated
                warnings.simplefilter("ignore", FutureWarning)
                self.module = torch.jit.load(str(self.path), map_location=device)
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PolicyError(
                f"{self.path} is not a TorchScript archive ({first}); export your policy with "
                "torch.jit.script(module).save(path)") from None
        self.module.eval()
        self.device = torch.device(device)
        self.uses_image = bool(getattr(self.module, "uses_image", True))
        self._torch = torch

    def reset(self) -> None:
        if hasattr(self.module, "reset"):
            self.module.reset()

    def act(self, obs: Observation) -> np.ndarray:
        torch = self._torch
        batch = {"image": torch.as_tensor(np.ascontiguousarray(obs["image"]), dtype=torch.uint8,
                                          device=self.device),
                 "eef_pos": torch.as_tensor(obs["eef_pos"], dtype=torch.float32,
                                            device=self.device),
                 "gripper": torch.as_tensor(obs["gripper"], dtype=torch.float32,
                                            device=self.device)}
        with torch.no_grad():
            out = self.module(batch)
        return as_action(out, f"TorchScript policy {self.path}")


def load_module_policy(target: str) -> RolloutPolicy:
    """Import ``pkg.mod:factory``, call ``factory()`` and adapt what it returns.

    :param target: dotted module path and attribute, separated by a colon.
    :return: the factory's RolloutPolicy, or its callable ``obs -> action`` wrapped in
        :class:`CallablePolicy`.
    :raises PolicyError: if the target is malformed, cannot be imported, or returns neither.
    """
    mod_name, sep, attr = target.partition(":")
    if not sep or not mod_name or not attr:
        raise PolicyError(f"module policy {target!r}: expected 'package.module:factory', "
                          "e.g. module:my_pkg.policies:make_policy")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise PolicyError(f"module policy {target!r}: cannot import {mod_name!r} ({exc}); "
                          "is it on PYTHONPATH or installed in this environment?") from None
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise PolicyError(f"module policy {target!r}: {mod_name} has no attribute {attr!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise PolicyError(f"module policy {target!r}: {attr!r} is not callable; it must be a "
                          "factory taking no arguments")
    made = factory()
    if callable(getattr(made, "act", None)) and callable(getattr(made, "reset", None)):
        return made
    if callable(made):
        return CallablePolicy(made, f"module policy {target}")
    raise PolicyError(f"module policy {target!r}: the factory returned {type(made).__name__}; "
                      "return an object with reset() and act(obs), or a callable obs -> action")


def torchscript_kind(arg: str, world: object | None, device: str) -> RolloutPolicy:
    """Policy kind ``torchscript:<path>`` (registered in ``robomd.policies``)."""
    return TorchScriptPolicy(arg, device)


def module_kind(arg: str, world: object | None, device: str) -> RolloutPolicy:
    """Policy kind ``module:<pkg.mod:factory>`` (registered in ``robomd.policies``).

    The factory's code runs in this process: a policy spec is trusted input, like a Python path.
    """
    return load_module_policy(arg)


def shipped_weights(kind: str, task: str, train: str) -> Path:
    """The weights of policy kind ``kind`` an installed package ships for ``task``: the
    ``robomd.weights`` plug-in named ``<kind>.<task>``.

    :param train: the commands that make such weights, for the message.
    :raises PolicyError: if none is shipped for it; the message says how to train one.
    """
    from robomd_diagnoser.plugins import WEIGHTS, PluginError, load

    try:
        return Path(load(WEIGHTS, f"{kind}.{task}", f"shipped {kind} weights")())
    except PluginError as exc:
        raise PolicyError(f"no shipped {kind} policy for task {task!r} ({exc}); train one with "
                          f"{train}, then use {kind}:<weights>") from None


def world_task(world: object | None, kind: str) -> str:
    """The task of the world a shipped policy (spec ``kind`` alone) is asked for.

    :raises PolicyError: without a simulated world.
    """
    catalog = getattr(world, "catalog", None)
    if catalog is None:
        raise PolicyError(f"policy spec {kind!r} names the weights shipped for the world's task; "
                          f"without a simulated world give {kind}:<weights>")
    return catalog.task


def make_policy(spec: str, world: object | None = None, device: str = "cpu") -> RolloutPolicy:
    """Resolve a policy spec ``kind`` or ``kind:arg`` through the ``robomd.policies`` plug-ins.

    :param spec: e.g. ``bc``, ``expert``, ``bc:<weights>``, ``torchscript:<path>``,
        ``module:<pkg.mod:factory>``; the installed kinds are listed in the error for another.
    :param world: the world the policy will act in (some kinds read its task, camera size or
        privileged state); None where there is none (the real robot's executor).
    :param device: torch device for learned policies.
    :raises PolicyError: for an unknown kind, a missing or corrupt file, or a bad target.
    """
    from robomd_diagnoser.plugins import POLICIES, PluginError, load

    kind, sep, arg = spec.partition(":")
    if not kind or (sep and not arg):
        raise PolicyError(f"policy spec {spec!r}: use kind or kind:argument, e.g. bc, expert, "
                          "bc:<weights>, torchscript:<path>, module:<pkg.mod:factory>")
    try:
        factory = load(POLICIES, kind, "policy kind")
    except PluginError as exc:
        raise PolicyError(f"policy spec {spec!r}: {exc}") from None
    return factory(arg, world, device)
