"""lerobot:<dir> with LeRobot's own loading code, in the LeRobot environment behind the server.

The checkpoint is a tiny ACT policy saved by LeRobot itself (config.json, model.safetensors and
its pre/post-processor files). Tests that need the LeRobot environment (`make lerobot-env`, or
ROBOMD_LEROBOT_PYTHON) are skipped without it; each starts LeRobot in another interpreter.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from robomd_diagnoser.lerobot_policy import lerobot_python
from robomd_diagnoser.policy import PolicyError, make_policy
from robomd_diagnoser.remote_policy import RemotePolicy

MAKE_ACT = """
import sys, torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors
cfg = ACTConfig(
    input_features={"observation.state": PolicyFeature(FeatureType.STATE, (4,)),
                    "observation.environment_state": PolicyFeature(FeatureType.ENV, (10,))},
    output_features={"action": PolicyFeature(FeatureType.ACTION, (7,))},
    chunk_size=4, n_action_steps=4, dim_model=32, n_heads=2, dim_feedforward=64,
    n_encoder_layers=1, n_decoder_layers=1, use_vae=False, pretrained_backbone_weights=None,
    device="cpu")
torch.manual_seed(0)
stats = {k: {"mean": torch.zeros(n), "std": torch.ones(n)}
         for k, n in (("observation.state", 4), ("observation.environment_state", 10),
                      ("action", 7))}
pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
for thing in (ACTPolicy(cfg), pre, post):
    thing.save_pretrained(sys.argv[1])
"""

OBS = {"eef_pos": np.array([0.1, 0.0, 0.9]), "gripper": np.array([1.0]),
       "object": np.linspace(-0.1, 0.1, 10), "image": np.zeros((84, 84, 3), np.uint8)}


def test_missing_or_incomplete_checkpoints_are_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        make_policy(f"lerobot:{tmp_path / 'nothing'}")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(PolicyError, match="has no model.safetensors"):
        make_policy(f"lerobot:{tmp_path}")
    with pytest.raises(PolicyError, match="unknown option"):
        make_policy(f"lerobot:{tmp_path}?map=x.json")


@pytest.fixture(scope="module")
def act_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    try:
        python = lerobot_python()
    except PolicyError as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("act") / "pretrained_model"
    subprocess.run([str(python), "-c", MAKE_ACT, str(out)], check=True, timeout=600,
                   capture_output=True)
    return out


@pytest.mark.slow
def test_lerobot_checkpoint_acts_through_the_lerobot_environment(act_checkpoint) -> None:
    policy = make_policy(f"lerobot:{act_checkpoint}")
    try:
        assert isinstance(policy, RemotePolicy) and policy.uses_image is False
        policy.reset()
        actions = [policy.act(OBS) for _ in range(5)]
        assert all(a.shape == (7,) and np.all(np.isfinite(a)) for a in actions)
        # ACT executes its 4-action chunk, then predicts again from the same observation
        assert np.allclose(actions[0], actions[4]) and not np.allclose(actions[0], actions[1])
    finally:
        policy.server_process.kill()


@pytest.mark.slow
def test_lerobot_feature_without_a_key_is_named(act_checkpoint,
                                                tmp_path: pathlib.Path) -> None:
    renamed = tmp_path / "renamed"
    shutil.copytree(act_checkpoint, renamed)
    config = json.loads((renamed / "config.json").read_text())
    config["input_features"]["observation.joints"] = config["input_features"].pop(
        "observation.environment_state")
    (renamed / "config.json").write_text(json.dumps(config))
    with pytest.raises(PolicyError, match=r"expects inputs \['observation.joints'\]"):
        make_policy(f"lerobot:{renamed}")
