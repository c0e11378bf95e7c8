"""Training of the vision BC policy (also fine-tuning from parent weights)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from robomd_diagnoser.learning.augment import color_augment, random_shift
from robomd_diagnoser.learning.data import load_demos
from robomd_diagnoser.learning.model import BCNet
from robomd_diagnoser.learning.weights import load_bc, save_bc
from robomd_diagnoser.policy import ACTION_DIM


@dataclass
class TrainConfig:
    """BC training settings.

    :param epochs: passes over the training split.
    :param batch_size: samples per step.
    :param lr: peak learning rate (cosine decay to 1% of it).
    :param weight_decay: AdamW weight decay.
    :param val_fraction: share of episodes held out for validation (0 disables it).
    :param color_aug: colour augmentation amounts by factor (empty: none).
    :param shift: random-shift padding in pixels (0 disables it).
    :param channels: conv channels.
    :param hidden: MLP width.
    :param seed: RNG seed (split, initialisation, batches, augmentation).
    """

    epochs: int = 25
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    color_aug: dict[str, float] | None = None
    shift: int = 2
    channels: tuple[int, ...] = (32, 32, 32, 32)
    hidden: int = 256
    seed: int = 0


def _to_images(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0


def train_bc(demo_dir: str | Path, out: str | Path, cfg: TrainConfig,
             log: Callable[[str], None] = print, init: str | Path | None = None) -> dict[str, Any]:
    """Train a :class:`BCNet` on the demonstrations in ``demo_dir`` and save it to ``out``.

    :param log: receives one progress line per epoch.
    :param init: fine-tune: start from these BC weights, keeping their architecture and
        proprioception normalisation (``cfg.channels`` and ``cfg.hidden`` are then ignored).
    :return: the training summary stored in the weights' metadata.
    """
    start = time.monotonic()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = load_demos(demo_dir)
    n_eps = len(data.files)
    n_val = min(int(round(cfg.val_fraction * n_eps)), n_eps - 1)  # keep one to train on
    val_eps = set(rng.permutation(n_eps)[:n_val].tolist())
    is_val = np.isin(data.episode, list(val_eps))
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if init is None:
        model = BCNet(cfg.channels, cfg.hidden)
        mean = data.proprio[train_idx, :3].mean(0)
        std = data.proprio[train_idx, :3].std(0) + 1e-3
    else:
        model, parent = load_bc(init)
        if parent["image_size"] != data.image.shape[1]:
            raise ValueError(f"{init} was trained on {parent['image_size']}px images but the "
                             f"demonstrations under {demo_dir} are {data.image.shape[1]}px; "
                             "collect them with --camera-size " + str(parent["image_size"]))
        mean = np.asarray(parent["eef_mean"], np.float32)
        std = np.asarray(parent["eef_std"], np.float32)
    proprio = data.proprio.copy()
    proprio[:, :3] = (proprio[:, :3] - mean) / std
    proprio_t, action_t = torch.from_numpy(proprio), torch.from_numpy(data.action)
    log(f"train-bc: {n_eps} episodes ({n_eps - n_val} train, {n_val} val), "
        f"{len(train_idx)} + {len(val_idx)} frames, image {data.image.shape[1]}px, "
        f"colour augmentation {cfg.color_aug or 'none'}")

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_idx) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr * 0.01)
    val_loss = float("nan")
    train_loss = float("nan")
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(train_idx)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = np.sort(order[s * cfg.batch_size:(s + 1) * cfg.batch_size])
            img = _to_images(data.image[idx])
            if cfg.shift:
                img = random_shift(img, cfg.shift)
            if cfg.color_aug:
                img = color_augment(img, cfg.color_aug)
            loss = F.mse_loss(model(img, proprio_t[idx]), action_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        train_loss = total / steps_per_epoch
        if len(val_idx):
            val_loss = _evaluate(model, data.image, proprio_t, action_t, val_idx)
        log(f"epoch {epoch:3d}/{cfg.epochs}  train mse {train_loss:.4f}  val mse {val_loss:.4f}  "
            f"{time.monotonic() - start:6.0f} s")

    training = {"episodes": n_eps, "val_episodes": n_val, "frames": int(len(data.image)),
                "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr,
                "shift": cfg.shift, "color_aug": dict(cfg.color_aug or {}), "seed": cfg.seed,
                "init": None if init is None else str(init),
                "train_mse": round(train_loss, 6),
                "val_mse": None if math.isnan(val_loss) else round(val_loss, 6),
                "seconds": round(time.monotonic() - start, 1)}
    meta = {"image_size": int(data.image.shape[1]),
            "channels": [m.out_channels for m in model.encoder if isinstance(m, nn.Conv2d)],
            "hidden": model.head[0].out_features, "eef_mean": mean.astype(float).tolist(),
            "eef_std": std.astype(float).tolist(), "training": training}
    save_bc(out, model, meta)
    log(f"train-bc: saved {out} ({Path(out).stat().st_size / 1e6:.2f} MB) in "
        f"{training['seconds']:.0f} s")
    return training


def _evaluate(model: BCNet, images: np.ndarray, proprio: torch.Tensor, action: torch.Tensor,
              idx: np.ndarray, batch: int = 512) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for s in range(0, len(idx), batch):
            b = idx[s:s + batch]
            pred = model(_to_images(images[b]), proprio[b])
            total += F.mse_loss(pred, action[b], reduction="sum").item()
    return total / (len(idx) * ACTION_DIM)
