"""A trained vision BC network as a policy under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from robomd_diagnoser.learning.model import BCNet
from robomd_diagnoser.learning.weights import load_bc
from robomd_diagnoser.policy import (
    Observation,
    PolicyError,
    as_action,
    shipped_weights,
    world_task,
)


class BCPolicy:
    """A trained :class:`BCNet` as a RolloutPolicy (needs images).

    :param model: the network.
    :param meta: its metadata (image size, proprioception normalisation).
    :param name: shown in error messages.
    :param device: torch device to run on.
    """

    uses_image = True

    def __init__(self, model: BCNet, meta: dict[str, Any], name: str = "BC policy",
                 device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.meta = meta
        self.name = name
        self.device = torch.device(device)
        self._mean = np.asarray(meta["eef_mean"], dtype=np.float32)
        self._std = np.asarray(meta["eef_std"], dtype=np.float32)

    @classmethod
    def from_file(cls, path: str | Path, device: str = "cpu") -> BCPolicy:
        """Load with :func:`load_bc`."""
        model, meta = load_bc(path, device)
        return cls(model, meta, f"BC policy {path}", device)

    def reset(self) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Observation) -> np.ndarray:
        image = obs["image"]
        size = self.meta["image_size"]
        if image.shape != (size, size, 3):
            raise PolicyError(f"{self.name} was trained on {size}x{size}x3 images, got "
                              f"{image.shape}; set the world's camera size to {size}")
        img = torch.as_tensor(np.ascontiguousarray(image), device=self.device)
        img = img.permute(2, 0, 1)[None].float() / 255.0
        prop = np.concatenate([(np.asarray(obs["eef_pos"], np.float32) - self._mean) / self._std,
                               np.asarray(obs["gripper"], np.float32).reshape(1)])
        with torch.no_grad():
            out = self.model(img, torch.as_tensor(prop, device=self.device)[None])[0]
        return np.clip(as_action(out, self.name), -1.0, 1.0)


def bc_kind(arg: str, world: object | None, device: str) -> BCPolicy:
    """Policy kind ``bc:<weights>``, or ``bc`` for the weights shipped for the world's task.

    :raises PolicyError: for missing or bad weights, or a world camera of another size than the
        weights were trained on.
    """
    if not arg:
        arg = str(shipped_weights("bc", world_task(world, "bc"),
                                  "`robomd collect-demos` and `robomd train-bc`"))
        spec = "bc"
    else:
        spec = f"bc:{arg}"
    policy = BCPolicy.from_file(arg, device)
    size = policy.meta["image_size"]
    camera = getattr(world, "camera_size", size)
    if camera != size:
        raise PolicyError(f"policy {spec!r} was trained on {size}x{size} images but the world's "
                          f"camera is {camera}x{camera}; use --camera-size {size}")
    return policy
