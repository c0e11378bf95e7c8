"""Demonstrations for behaviour cloning: one compressed ``.npz`` episode per file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.policy import ACTION_DIM

#: Arrays in every demonstration file (one row per control step) and their row shapes (the image
#: is (H, W, 3) uint8 of any size).
DEMO_ARRAYS = {"image": None, "eef_pos": (3,), "gripper": (1,), "action": (ACTION_DIM,)}


def save_demo(path: str | Path, arrays: dict[str, np.ndarray], **info: Any) -> None:
    """Write one demonstration episode as a compressed ``.npz``.

    :param path: output file (``.npz``); parent directories are created.
    :param arrays: per-step arrays with the keys of :data:`DEMO_ARRAYS`, equal lengths.
    :param info: scalar or string-list metadata stored alongside (seed, perturbations, ...).
    """
    missing = set(DEMO_ARRAYS) - set(arrays)
    if missing:
        raise ValueError(f"demo {path}: missing arrays {sorted(missing)}")
    lengths = {k: len(arrays[k]) for k in DEMO_ARRAYS}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"demo {path}: arrays have different lengths {lengths}")
    extra = {f"info_{k}": np.asarray(v) for k, v in info.items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **{k: arrays[k] for k in DEMO_ARRAYS}, **extra)
    tmp.replace(path)


@dataclass
class DemoSet:
    """Demonstrations stacked along time.

    :param image: (N, H, W, 3) uint8.
    :param proprio: (N, 4) float32, eef_pos then gripper.
    :param action: (N, 7) float32.
    :param episode: (N,) int index of the file each step came from.
    :param files: the episode files, in index order.
    """

    image: np.ndarray
    proprio: np.ndarray
    action: np.ndarray
    episode: np.ndarray
    files: list[Path]


def load_demos(demo_dir: str | Path) -> DemoSet:
    """Load every ``*.npz`` demonstration under ``demo_dir`` (recursively, sorted by path).

    :raises FileNotFoundError: if the directory holds no demonstrations.
    :raises ValueError: naming the file whose arrays are missing or malformed.
    """
    demo_dir = Path(demo_dir)
    files = sorted(p for p in demo_dir.rglob("*.npz") if not p.name.endswith(".tmp.npz"))
    if not files:
        raise FileNotFoundError(f"no demonstrations (*.npz) under {demo_dir}; collect some with "
                                "`robomd collect-demos --out DIR`")
    images, proprio, actions, episode = [], [], [], []
    for i, f in enumerate(files):
        with np.load(f, allow_pickle=False) as z:
            missing = set(DEMO_ARRAYS) - set(z.files)
            if missing:
                raise ValueError(f"demo {f}: missing arrays {sorted(missing)}")
            img = z["image"]
            if img.ndim != 4 or img.shape[-1] != 3 or img.dtype != np.uint8:
                raise ValueError(f"demo {f}: image must be (T, H, W, 3) uint8, got "
                                 f"{img.shape} {img.dtype}")
            for key, shape in DEMO_ARRAYS.items():
                if shape is not None and z[key].shape != (len(img), *shape):
                    raise ValueError(f"demo {f}: {key} must be ({len(img)}, "
                                     f"{', '.join(map(str, shape))}), got {z[key].shape}")
            if images and img.shape[1:] != images[0].shape[1:]:
                raise ValueError(f"demo {f}: image size {img.shape[1:3]} differs from "
                                 f"{images[0].shape[1:3]} in {files[0]}")
            images.append(img)
            proprio.append(np.concatenate([z["eef_pos"], z["gripper"]], axis=1))
            actions.append(z["action"])
            episode.append(np.full(len(img), i))
    return DemoSet(np.concatenate(images), np.concatenate(proprio).astype(np.float32),
                   np.concatenate(actions).astype(np.float32), np.concatenate(episode), files)
