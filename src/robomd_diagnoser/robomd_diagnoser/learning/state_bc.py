"""Low-dimensional-state behaviour cloning: an MLP on proprioception and the object's state.

Input: ``eef_pos`` (3,), ``gripper`` (1,) and ``object`` (10,: the object's position and
orientation in the robot base frame and its offset from the end effector, as robosuite's
``object-state``); output: the (7,) OSC_POSE action. The policy never looks at the camera
(``uses_image = False``), so a simulated world skips rendering and a rollout costs physics only.
That makes it the fast subject for physical perturbations (sizes, mass, friction, poses, noise);
it is blind to visual ones by construction.

Demonstrations are ``.npz`` files, one episode each, with per-step arrays ``eef_pos``,
``gripper``, ``object`` and ``action`` (see :data:`STATE_DEMO_ARRAYS`). Weights are saved with
``torch.save`` as plain tensors, lists and numbers and always loaded with ``weights_only=True``.
"""

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

from robomd_diagnoser.learning.weights import load_tensors, read_weights, write_weights
from robomd_diagnoser.policy import ACTION_DIM, Observation, PolicyError, as_action

FORMAT = "robomd-state-bc"
FORMAT_VERSION = 1
#: Observation keys the policy reads, in input order, with their sizes.
STATE_KEYS: dict[str, int] = {"eef_pos": 3, "gripper": 1, "object": 10}
#: Arrays of a state demonstration file (one row per control step) and their row sizes.
STATE_DEMO_ARRAYS: dict[str, int] = {**STATE_KEYS, "action": ACTION_DIM}


class StateBCError(PolicyError):
    """State-BC weights or demonstrations are missing or inconsistent; the message names them."""


# ----------------------------------------------------------------------------------------- data

def save_state_demo(path: str | Path, arrays: dict[str, np.ndarray], **info: Any) -> None:
    """Write one state demonstration episode as a compressed ``.npz`` (atomically).

    :param path: output file; parent directories are created.
    :param arrays: per-step arrays with the keys of :data:`STATE_DEMO_ARRAYS`, equal lengths.
    :param info: scalar metadata stored as ``info_<name>`` (seed, ...).
    :raises ValueError: naming a missing or mis-shaped array.
    """
    n = None
    for key, size in STATE_DEMO_ARRAYS.items():
        if key not in arrays:
            raise ValueError(f"state demo {path}: missing array {key!r}")
        shape = np.shape(arrays[key])
        n = shape[0] if n is None else n
        if shape != (n, size):
            raise ValueError(f"state demo {path}: {key} must be ({n}, {size}), got {shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **{k: np.asarray(arrays[k], np.float32) for k in STATE_DEMO_ARRAYS},
                        **{f"info_{k}": np.asarray(v) for k, v in info.items()})
    tmp.replace(path)


def load_state_demos(demo_dir: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load every state demonstration ``*.npz`` under ``demo_dir`` (recursively, sorted).

    :return: inputs (N, 14) in :data:`STATE_KEYS` order, actions (N, 7), episode index (N,).
    :raises FileNotFoundError: if there are none.
    :raises StateBCError: naming a file whose arrays are missing or mis-shaped.
    """
    files = sorted(p for p in Path(demo_dir).rglob("*.npz") if not p.name.endswith(".tmp.npz"))
    if not files:
        raise FileNotFoundError(f"no state demonstrations (*.npz) under {demo_dir}; collect "
                                "them with `robomd collect-state-demos --out DIR`")
    inputs, actions, episode = [], [], []
    for i, f in enumerate(files):
        with np.load(f, allow_pickle=False) as z:
            for key, size in STATE_DEMO_ARRAYS.items():
                if key not in z.files:
                    raise StateBCError(f"state demo {f}: missing array {key!r} (an image "
                                       "demonstration? use `robomd collect-state-demos`)")
                if z[key].ndim != 2 or z[key].shape[1] != size:
                    raise StateBCError(f"state demo {f}: {key} must be (T, {size}), got "
                                       f"{z[key].shape}")
            inputs.append(np.concatenate([z[k] for k in STATE_KEYS], axis=1))
            actions.append(z["action"])
            episode.append(np.full(len(z["action"]), i))
    return (np.concatenate(inputs).astype(np.float32), np.concatenate(actions).astype(np.float32),
            np.concatenate(episode))


# ---------------------------------------------------------------------------------------- model

class StateBCNet(nn.Module):
    """MLP from the normalised state vector to the (7,) action.

    :param in_dim: state size (14 for :data:`STATE_KEYS`).
    :param hidden: width of each hidden layer.
    :param layers: number of hidden layers.
    """

    def __init__(self, in_dim: int = sum(STATE_KEYS.values()), hidden: int = 256,
                 layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = in_dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        self.net = nn.Sequential(*mods, nn.Linear(width, ACTION_DIM))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """:param state: (B, in_dim) normalised state."""
        return self.net(state)


def _check_meta(meta: Any, path: Path) -> dict[str, Any]:
    def bad(msg: str) -> StateBCError:
        return StateBCError(f"state-BC weights {path}: {msg}; re-create them with "
                            "`robomd train-state-bc --demos DIR --out FILE`")

    if not isinstance(meta, dict):
        raise bad("metadata is missing")
    for key, typ in (("keys", dict), ("mean", list), ("std", list), ("hidden", int),
                     ("layers", int), ("training", dict)):
        if not isinstance(meta.get(key), typ):
            raise bad(f"metadata field {key!r} must be a {typ.__name__}")
    dim = sum(meta["keys"].values())
    if len(meta["mean"]) != dim or len(meta["std"]) != dim:
        raise bad(f"'mean' and 'std' need {dim} numbers each (the sum of the key sizes)")
    if not all(s > 0 for s in meta["std"]):
        raise bad("'std' must be positive")
    return meta


def save_state_bc(path: str | Path, model: StateBCNet, meta: dict[str, Any]) -> None:
    """Save weights and metadata (plain types only, loadable with ``weights_only=True``).

    :param meta: keys (name -> size), mean, std, hidden, layers, training (dict).
    """
    path = Path(path)
    _check_meta(meta, path)
    write_weights(path, FORMAT, FORMAT_VERSION, model, meta)


def load_state_bc(path: str | Path) -> tuple[StateBCNet, dict[str, Any]]:
    """Load state-BC weights safely (no pickled code runs) and validate them.

    :raises StateBCError: naming ``path`` if it is missing, not a state-BC file, or its tensors
        do not match its metadata.
    """
    path = Path(path)
    blob = read_weights(path, FORMAT, FORMAT_VERSION, "state-BC weights", StateBCError,
                        format_hint="; vision BC weights load as bc:<path>")
    meta = _check_meta(blob.get("meta"), path)
    model = StateBCNet(sum(meta["keys"].values()), meta["hidden"], meta["layers"])
    return load_tensors(model, blob, path, "state-BC weights", StateBCError), meta


# ------------------------------------------------------------------------------------- policy

class StateBCPolicy:
    """A trained :class:`StateBCNet` as a RolloutPolicy; needs no camera.

    :param model: the network.
    :param meta: its metadata (input keys and normalisation).
    :param name: shown in error messages.
    """

    uses_image = False

    def __init__(self, model: StateBCNet, meta: dict[str, Any], name: str = "state-BC policy"
                 ) -> None:
        self.model = model.eval()
        self.meta = meta
        self.name = name
        self.keys: dict[str, int] = dict(meta["keys"])
        self._mean = np.asarray(meta["mean"], np.float32)
        self._std = np.asarray(meta["std"], np.float32)

    @classmethod
    def from_file(cls, path: str | Path) -> StateBCPolicy:
        """Load with :func:`load_state_bc`."""
        model, meta = load_state_bc(path)
        return cls(model, meta, f"state-BC policy {path}")

    def reset(self) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Observation) -> np.ndarray:
        parts = []
        for key, size in self.keys.items():
            if key not in obs:
                raise PolicyError(f"{self.name} needs observation key {key!r} ({size} values), "
                                  f"which this world does not provide (it has "
                                  f"{', '.join(sorted(obs))}); in simulation RobosuiteWorld "
                                  "provides it, a real robot needs an object pose estimate")
            value = np.asarray(obs[key], np.float32).reshape(-1)
            if value.size != size:
                raise PolicyError(f"{self.name}: observation {key!r} has {value.size} values, "
                                  f"the weights expect {size}")
            parts.append(value)
        state = (np.concatenate(parts) - self._mean) / self._std
        with torch.no_grad():
            out = self.model(torch.from_numpy(state)[None])[0]
        return np.clip(as_action(out, self.name), -1.0, 1.0)


def load_state_policy(path: str, world: object | None = None, device: str = "cpu"
                      ) -> StateBCPolicy:
    """Policy-spec factory of ``bc_state:<path>``, or ``bc_state`` for the weights shipped for
    the world's task.

    :param path: weights written by :func:`train_state_bc`; empty for the shipped ones.
    :param world: the world (its task picks the shipped weights).
    :param device: unused: the MLP runs on the CPU.
    """
    from robomd_diagnoser.policy import shipped_weights, world_task

    del device
    if not path:
        path = str(shipped_weights("bc_state", world_task(world, "bc_state"),
                                   "`robomd collect-state-demos` and `robomd train-state-bc`"))
    return StateBCPolicy.from_file(path)


# ----------------------------------------------------------------------------------- training

@dataclass
class StateTrainConfig:
    """State-BC training settings.

    :param epochs: passes over the training split.
    :param batch_size: samples per step.
    :param lr: peak learning rate (cosine decay to 1% of it).
    :param weight_decay: AdamW weight decay.
    :param val_fraction: share of episodes held out for validation (0 disables it).
    :param hidden: MLP width.
    :param layers: MLP hidden layers.
    :param input_noise: std of Gaussian noise added to the normalised inputs while training.
    :param seed: RNG seed (split, initialisation, batches).
    """

    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    hidden: int = 256
    layers: int = 3
    input_noise: float = 0.01
    seed: int = 0


def train_state_bc(demo_dir: str | Path, out: str | Path, cfg: StateTrainConfig,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train a :class:`StateBCNet` on the state demonstrations in ``demo_dir``, save to ``out``.

    :param log: receives one progress line per epoch (every tenth when there are many).
    :return: the training summary stored in the weights' metadata.
    """
    start = time.monotonic()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    inputs, actions, episode = load_state_demos(demo_dir)
    n_eps = int(episode.max()) + 1
    n_val = min(int(round(cfg.val_fraction * n_eps)), n_eps - 1)
    is_val = np.isin(episode, rng.permutation(n_eps)[:n_val])
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    mean = inputs[train_idx].mean(0)
    std = inputs[train_idx].std(0) + 1e-3
    x = torch.from_numpy((inputs - mean) / std)
    y = torch.from_numpy(actions)
    model = StateBCNet(x.shape[1], cfg.hidden, cfg.layers)
    log(f"train-state-bc: {n_eps} episodes ({n_eps - n_val} train, {n_val} val), "
        f"{len(train_idx)} + {len(val_idx)} frames")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_idx) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr * 0.01)
    train_loss = val_loss = float("nan")
    every = max(1, cfg.epochs // 10)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(train_idx)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = torch.from_numpy(order[s * cfg.batch_size:(s + 1) * cfg.batch_size])
            xb = x[idx]
            if cfg.input_noise:
                xb = xb + cfg.input_noise * torch.randn_like(xb)
            loss = F.mse_loss(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        train_loss = total / steps_per_epoch
        if len(val_idx):
            model.eval()
            with torch.no_grad():
                vi = torch.from_numpy(val_idx)
                val_loss = F.mse_loss(model(x[vi]), y[vi]).item()
        if epoch % every == 0 or epoch == cfg.epochs:
            log(f"epoch {epoch:3d}/{cfg.epochs}  train mse {train_loss:.4f}  "
                f"val mse {val_loss:.4f}  {time.monotonic() - start:5.0f} s")
    training = {"episodes": n_eps, "val_episodes": n_val, "frames": int(len(inputs)),
                "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr,
                "input_noise": cfg.input_noise, "seed": cfg.seed,
                "train_mse": round(train_loss, 6),
                "val_mse": None if math.isnan(val_loss) else round(val_loss, 6),
                "seconds": round(time.monotonic() - start, 1)}
    meta = {"keys": dict(STATE_KEYS), "mean": mean.astype(float).tolist(),
            "std": std.astype(float).tolist(), "hidden": cfg.hidden, "layers": cfg.layers,
            "training": training}
    save_state_bc(out, model, meta)
    log(f"train-state-bc: saved {out} ({Path(out).stat().st_size / 1e6:.2f} MB) in "
        f"{training['seconds']:.0f} s")
    return training
