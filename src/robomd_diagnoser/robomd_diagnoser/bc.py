"""Vision behaviour cloning: a small CNN policy on the scene image and proprioception.

Input: the upright HxWx3 uint8 ``image`` plus ``eef_pos`` (3,) and ``gripper`` (1,); output: the
(7,) OSC_POSE action. The encoder is a 4-layer CNN with a spatial-softmax keypoint head (as in
robomimic's BC), followed by an MLP. Training uses random-shift augmentation and, optionally,
photometric colour augmentation of chosen factors (see :data:`COLOR_AUG_FACTORS`).

Demonstrations are compressed ``.npz`` files, one episode each (see :func:`save_demo`). Weights are
saved with ``torch.save`` as plain tensors, lists and numbers and always loaded with
``weights_only=True``: loading a weights file never runs pickled code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from robomd_diagnoser.policy import ACTION_DIM, Observation, PolicyError, as_action

FORMAT = "robomd-bc"
FORMAT_VERSION = 1
#: Arrays in every demonstration file (one row per control step) and their row shapes (the image
#: is (H, W, 3) uint8 of any size).
DEMO_ARRAYS = {"image": None, "eef_pos": (3,), "gripper": (1,), "action": (ACTION_DIM,)}
#: Photometric factors :func:`color_augment` knows, each with an amount in [0, 1]:
#: brightness/contrast/saturation scale by U(1-a, 1+a); tint scales each RGB channel independently
#: by U(1-a, 1+a) (a coloured light); hue rotates the hue by U(-a, a) half-turns.
COLOR_AUG_FACTORS = ("brightness", "contrast", "saturation", "tint", "hue")
PROPRIO_DIM = 4


class BCWeightsError(PolicyError):
    """A BC weights file is missing, corrupt or inconsistent; the message names the file."""


# ----------------------------------------------------------------------------------------- data

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


# ---------------------------------------------------------------------------------------- model

class SpatialSoftmax(nn.Module):
    """Expected (x, y) image coordinates of each feature channel, in [-1, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        attn = F.softmax(x.reshape(b, c, h * w), dim=-1).reshape(b, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device)
        return torch.cat([(attn.sum(2) * xs).sum(-1), (attn.sum(3) * ys).sum(-1)], dim=1)


class BCNet(nn.Module):
    """CNN + spatial softmax encoder, concatenated with proprioception, MLP to a (7,) action.

    :param channels: output channels of the conv layers: the first is 5x5 with stride 2, the
        second 3x3 with stride 2, the rest 3x3 with stride 1 (84 px in -> 15x15 keypoint maps).
    :param hidden: width of the two MLP hidden layers.
    """

    def __init__(self, channels: Sequence[int] = (32, 32, 32, 32), hidden: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, 5 if i == 0 else 3, stride=2 if i < 2 else 1)]
            if i < len(channels) - 1:
                layers.append(nn.ReLU(inplace=True))
            c_in = c
        self.encoder = nn.Sequential(*layers, SpatialSoftmax())
        self.head = nn.Sequential(
            nn.Linear(2 * c_in + PROPRIO_DIM, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, ACTION_DIM))

    def forward(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """:param image: (B, 3, H, W) float in [0, 1]. :param proprio: (B, 4) normalised."""
        return self.head(torch.cat([self.encoder(image - 0.5), proprio], dim=1))


# --------------------------------------------------------------------------------- augmentation

def random_shift(images: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Pad by replicating edges and crop back at a random offset per image (DrQ).

    :param images: (B, C, H, W) float.
    :param pad: maximum shift in pixels.
    """
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    ox = torch.randint(0, 2 * pad + 1, (b,), device=images.device)
    oy = torch.randint(0, 2 * pad + 1, (b,), device=images.device)
    rows = (oy[:, None] + torch.arange(h, device=images.device)[None, :])  # (B, H)
    cols = (ox[:, None] + torch.arange(w, device=images.device)[None, :])  # (B, W)
    idx_b = torch.arange(b, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


def parse_color_aug(items: Sequence[str]) -> dict[str, float]:
    """Parse ``factor=amount`` strings (e.g. ``tint=0.3``) into a factor dict.

    :raises ValueError: naming an unknown factor or an amount outside [0, 1].
    """
    out: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in COLOR_AUG_FACTORS:
            raise ValueError(f"colour augmentation {item!r}: use factor=amount with factor one "
                             f"of {', '.join(COLOR_AUG_FACTORS)} (e.g. tint=0.3)")
        try:
            amount = float(raw)
        except ValueError:
            raise ValueError(f"colour augmentation {item!r}: amount {raw!r} is not a number") \
                from None
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"colour augmentation {item!r}: amount must be in [0, 1]")
        out[name] = amount
    return out


def _uniform(b: int, amount: float, device: torch.device) -> torch.Tensor:
    return (1.0 + amount * (2.0 * torch.rand(b, 1, 1, 1, device=device) - 1.0))


def color_augment(images: torch.Tensor, factors: dict[str, float]) -> torch.Tensor:
    """Random photometric changes per image.

    :param images: (B, 3, H, W) float in [0, 1].
    :param factors: amounts by factor name, see :data:`COLOR_AUG_FACTORS`.
    """
    b, dev = images.shape[0], images.device
    x = images
    if factors.get("hue"):
        # rotate chroma in YIQ space
        angle = math.pi * factors["hue"] * (2.0 * torch.rand(b, device=dev) - 1.0)
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322],
                               [0.211, -0.523, 0.312]], device=dev)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.zeros(b, 3, 3, device=dev)
        rot[:, 0, 0] = 1.0
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
        mat = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # (B, 3, 3)
        x = torch.einsum("bij,bjhw->bihw", mat, x)
    if factors.get("tint"):
        a = factors["tint"]
        x = x * (1.0 + a * (2.0 * torch.rand(b, 3, 1, 1, device=dev) - 1.0))
    if factors.get("saturation"):
        gray = (x * torch.tensor([0.299, 0.587, 0.114], device=dev)[:, None, None]).sum(
            1, keepdim=True)
        x = gray + (x - gray) * _uniform(b, factors["saturation"], dev)
    if factors.get("contrast"):
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = mean + (x - mean) * _uniform(b, factors["contrast"], dev)
    if factors.get("brightness"):
        x = x * _uniform(b, factors["brightness"], dev)
    return x.clamp(0.0, 1.0)


# ------------------------------------------------------------------------------ weights on disk

def _check_meta(meta: Any, path: Path) -> dict[str, Any]:
    def bad(msg: str) -> BCWeightsError:
        return BCWeightsError(f"BC weights {path}: {msg}; re-create them with "
                              "`robomd train-bc --demos DIR --out FILE`")

    if not isinstance(meta, dict):
        raise bad("metadata is missing")
    for key, typ in (("image_size", int), ("channels", list), ("hidden", int),
                     ("eef_mean", list), ("eef_std", list), ("training", dict)):
        if not isinstance(meta.get(key), typ):
            raise bad(f"metadata field {key!r} must be a {typ.__name__}, got "
                      f"{type(meta.get(key)).__name__}")
    if len(meta["eef_mean"]) != 3 or len(meta["eef_std"]) != 3:
        raise bad("metadata fields 'eef_mean' and 'eef_std' need 3 numbers each")
    if not all(s > 0 for s in meta["eef_std"]):
        raise bad(f"metadata 'eef_std' must be positive, got {meta['eef_std']}")
    if meta["image_size"] < 16 or len(meta["channels"]) < 1:
        raise bad(f"metadata 'image_size' {meta['image_size']} or 'channels' "
                  f"{meta['channels']} is invalid")
    return meta


def save_bc(path: str | Path, model: BCNet, meta: dict[str, Any]) -> None:
    """Save weights and metadata (plain types only, loadable with ``weights_only=True``).

    :param meta: image_size, channels, hidden, eef_mean, eef_std, training (dict).
    """
    path = Path(path)
    _check_meta(meta, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": FORMAT_VERSION, "meta": meta, "state_dict": state},
               tmp)
    tmp.replace(path)


def load_bc(path: str | Path, device: str = "cpu") -> tuple[BCNet, dict[str, Any]]:
    """Load BC weights safely and validate them.

    :raises BCWeightsError: naming ``path`` if it is missing, not a BC weights file, or its
        tensors do not match its metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise BCWeightsError(f"BC weights file {path} does not exist")
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BCWeightsError(f"BC weights {path} cannot be loaded safely ({first}); only plain "
                             "tensor files written by `robomd train-bc` are accepted") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise BCWeightsError(f"BC weights {path}: not a {FORMAT} file (no 'format': '{FORMAT}')")
    if blob.get("version") != FORMAT_VERSION:
        raise BCWeightsError(f"BC weights {path}: format version {blob.get('version')!r}, this "
                             f"code reads version {FORMAT_VERSION}")
    meta = _check_meta(blob.get("meta"), path)
    model = BCNet(meta["channels"], meta["hidden"])
    try:
        model.load_state_dict(blob.get("state_dict") or {})
    except RuntimeError as exc:
        raise BCWeightsError(f"BC weights {path}: tensors do not match the metadata's "
                             f"architecture ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), meta


# ------------------------------------------------------------------------------------- policy

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


# ----------------------------------------------------------------------------------- training

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
