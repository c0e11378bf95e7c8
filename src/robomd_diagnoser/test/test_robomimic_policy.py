"""robomimic:<file.pth> through robomimic's own policy_from_checkpoint, on a tiny checkpoint."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from robomd_diagnoser.policy import PolicyError, make_policy

pytest.importorskip("robomimic")

OBS = {"eef_pos": np.array([0.1, 0.0, 0.9]), "gripper": np.array([1.0]),
       "object": np.linspace(-0.1, 0.1, 10), "image": np.zeros((84, 84, 3), np.uint8)}


def make_checkpoint(path: pathlib.Path, low_dim: dict[str, int], ac_dim: int = 7) -> None:
    """Save an untrained robomimic BC checkpoint the way robomimic's trainer does."""
    import torch
    from robomimic.algo import algo_factory
    from robomimic.config import config_factory
    from robomimic.utils import obs_utils
    from robomimic.utils.train_utils import save_model

    config = config_factory("bc")
    with config.values_unlocked():
        config.observation.modalities.obs.low_dim = list(low_dim)
        config.algo.actor_layer_dims = (16, 16)
        config.train.cuda = False
    obs_utils.initialize_obs_utils_with_config(config)
    shapes = {k: [n] for k, n in low_dim.items()}
    shape_meta = {"all_shapes": shapes, "ac_dim": ac_dim, "all_obs_keys": list(low_dim),
                  "use_images": False}
    model = algo_factory("bc", config, obs_key_shapes=shapes, ac_dim=ac_dim,
                         device=torch.device("cpu"))
    save_model(model, config, {"env_name": "Lift", "type": 1, "env_kwargs": {}}, shape_meta,
               str(path))


def test_robomimic_checkpoint_acts_on_our_observation(tmp_path: pathlib.Path) -> None:
    ckpt = tmp_path / "model_epoch_1.pth"
    make_checkpoint(ckpt, {"robot0_eef_pos": 3, "object": 10})
    policy = make_policy(f"robomimic:{ckpt}")
    assert policy.uses_image is False
    policy.reset()
    action = policy.act(OBS)
    assert action.shape == (7,) and np.all(np.isfinite(action))
    moved = policy.act({**OBS, "object": -OBS["object"]})
    assert not np.allclose(action, moved)  # the object state reaches the network


def test_robomimic_inputs_without_a_key_are_named_and_a_key_map_fixes_it(
        tmp_path: pathlib.Path) -> None:
    ckpt = tmp_path / "grip.pth"
    make_checkpoint(ckpt, {"robot0_eef_pos": 3, "robot0_gripper_qpos": 1})
    with pytest.raises(PolicyError, match=r"expects inputs \['robot0_gripper_qpos'\].*\?keys="):
        make_policy(f"robomimic:{ckpt}")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"robot0_gripper_qpos": "gripper"}))
    policy = make_policy(f"robomimic:{ckpt}?keys={keys}")
    policy.reset()
    assert policy.act(OBS).shape == (7,)
    with pytest.raises(PolicyError, match="'gripper', which this world does not provide"):
        policy.act({"eef_pos": OBS["eef_pos"]})


def test_robomimic_wrong_checkpoints_are_named(tmp_path: pathlib.Path) -> None:
    import torch

    with pytest.raises(PolicyError, match="does not exist"):
        make_policy(f"robomimic:{tmp_path / 'none.pth'}")
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(PolicyError, match="not a robomimic checkpoint"):
        make_policy(f"robomimic:{other}")
    arm6 = tmp_path / "arm6.pth"
    make_checkpoint(arm6, {"robot0_eef_pos": 3}, ac_dim=6)
    with pytest.raises(PolicyError, match="outputs 6-d actions"):
        make_policy(f"robomimic:{arm6}")
    with pytest.raises(PolicyError, match="unknown option"):
        make_policy(f"robomimic:{arm6}?key=x.json")
