"""Train the shipped Lift action-chunking subject with LeRobot's own code (run it in the LeRobot
environment, `make lerobot-env`):

    .venv-lerobot/bin/python scripts/train_lerobot_act.py --demos demos/lift_state \
        --dataset runs/lerobot/lift_state --out runs/lerobot/lift_act_state

1. The state demonstrations of `robomd collect-state-demos` (one .npz per episode: eef_pos,
   gripper, object, action) become a local LeRobotDataset (`LeRobotDataset.create`, no videos,
   nothing uploaded): `observation.state` = eef_pos + gripper (4), `observation.environment_state`
   = object (10), `action` (7), 20 frames a second (robosuite's control rate).
2. An ACT policy (LeRobot's `ACTPolicy`, no image backbone) learns from it with LeRobot's
   pre/post-processors (normalisation from the dataset's statistics), its action chunks
   (`delta_timestamps` from the config) and its optimiser preset (AdamW).
3. The policy and its processors are saved with `save_pretrained` into `--out`, a
   `pretrained_model` directory that `lerobot:<dir>` loads.

Seeded; prints one line per 500 steps. The dataset is rebuilt only if `--dataset` is missing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

FPS = 20
STATE = ("eef_pos", "gripper")
ENV = "object"
REPO_ID = "robomd/lift_state"
#: Std of the Gaussian noise added to the normalised inputs while training (as train-state-bc).
INPUT_NOISE = 0.01


def build_dataset(demos: Path, root: Path) -> None:
    """Write the demonstrations as a LeRobotDataset at ``root``."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    files = sorted(demos.glob("*.npz"))
    if not files:
        raise SystemExit(f"--demos: no .npz episodes in {demos}; make them with "
                         "`robomd collect-state-demos --task lift --episodes 200 --out DIR`")
    features = {
        "observation.state": {"dtype": "float32", "shape": (4,),
                              "names": ["eef_x", "eef_y", "eef_z", "gripper"]},
        "observation.environment_state": {"dtype": "float32", "shape": (10,), "names": None},
        "action": {"dtype": "float32", "shape": (7,),
                   "names": ["dx", "dy", "dz", "drx", "dry", "drz", "grip"]},
    }
    ds = LeRobotDataset.create(REPO_ID, FPS, root=root, features=features, use_videos=False,
                               robot_type="UR5e")
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            state = np.concatenate([z[k] for k in STATE], axis=1).astype(np.float32)
            env = z[ENV].astype(np.float32)
            action = z["action"].astype(np.float32)
        for t in range(len(action)):
            ds.add_frame({"observation.state": state[t],
                          "observation.environment_state": env[t],
                          "action": action[t], "task": "Lift the cube"})
        ds.save_episode()
    ds.finalize()
    print(f"dataset: {len(files)} episodes, {ds.num_frames} frames in {root}", flush=True)


def train(root: Path, out: Path, steps: int, batch_size: int, seed: int) -> None:
    """Train ACT on the dataset at ``root`` and save it to ``out``."""
    from lerobot.configs.types import FeatureType
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
    from lerobot.datasets.utils import dataset_to_policy_features
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    torch.manual_seed(seed)
    meta = LeRobotDatasetMetadata(REPO_ID, root=root)
    features = dataset_to_policy_features(meta.features)
    outputs = {k: f for k, f in features.items() if f.type is FeatureType.ACTION}
    inputs = {k: f for k, f in features.items() if k not in outputs}
    # small enough to ship (about 3 MB) and to train on 2 CPU cores; no VAE: the labels are
    # the expert's noise-free actions, one mode per state. Chunks of 10 are predicted every
    # step and blended by ACT's temporal ensembling (executing 5-action chunks open-loop
    # succeeded 27/50 nominally). ACT's preset learning rate (1e-5, for fine-tuning a
    # pretrained backbone) under-fits a model trained from scratch in a few thousand steps.
    cfg = ACTConfig(input_features=inputs, output_features=outputs, chunk_size=10,
                    dim_model=128, n_heads=4, dim_feedforward=512,
                    n_encoder_layers=2, n_decoder_layers=1, use_vae=False,
                    n_action_steps=1, temporal_ensemble_coeff=0.01, optimizer_lr=3e-4,
                    pretrained_backbone_weights=None, device="cpu")
    policy = ACTPolicy(cfg)
    policy.train()
    pre, post = make_pre_post_processors(cfg, dataset_stats=meta.stats)
    delta = {"action": [i / FPS for i in cfg.action_delta_indices]}
    dataset = LeRobotDataset(REPO_ID, root=root, delta_timestamps=delta)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                         drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    optimizer = cfg.get_optimizer_preset().build(policy.get_optim_params())
    start, step, running = time.monotonic(), 0, []
    while step < steps:
        for batch in loader:
            batch = pre(batch)
            for key in ("observation.state", "observation.environment_state"):
                batch[key] = batch[key] + INPUT_NOISE * torch.randn_like(batch[key])
            loss, _ = policy.forward(batch)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
            optimizer.step()
            running.append(loss.item())
            step += 1
            if step % 500 == 0 or step == steps:
                print(f"step {step}/{steps}: loss {np.mean(running):.4f} "
                      f"({time.monotonic() - start:.0f} s)", flush=True)
                running = []
            if step == steps:
                break
    out.mkdir(parents=True, exist_ok=True)
    for thing in (policy, pre, post):
        thing.save_pretrained(out)
    print(f"saved {out} ({sum(p.numel() for p in policy.parameters())} parameters)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demos", type=Path, required=True, help="state demonstrations (.npz)")
    p.add_argument("--dataset", type=Path, required=True, help="the LeRobotDataset's root")
    p.add_argument("--out", type=Path, required=True, help="the pretrained_model directory")
    p.add_argument("--steps", type=int, default=6000, help="optimiser steps (default 6000)")
    p.add_argument("--batch-size", type=int, default=64, help="default 64")
    p.add_argument("--seed", type=int, default=0, help="default 0")
    args = p.parse_args()
    import datasets

    datasets.disable_progress_bars()
    torch.set_num_threads(1)
    if not (args.dataset / "meta" / "info.json").is_file():
        build_dataset(args.demos, args.dataset)
    train(args.dataset, args.out, args.steps, args.batch_size, args.seed)


if __name__ == "__main__":
    main()
