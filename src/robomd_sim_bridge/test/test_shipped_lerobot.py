"""The shipped Lift ACT checkpoint (policy spec ``lerobot``): found through the weights plug-in,
complete, and fed by the default key map; acting needs the LeRobot environment."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robomd_diagnoser.lerobot_policy import DEFAULT_KEYS, lerobot_python
from robomd_diagnoser.policy import PolicyError, make_policy, shipped_weights


def test_the_shipped_checkpoint_is_complete_and_its_inputs_have_keys():
    path = shipped_weights("lerobot", "lift", "scripts/train_lerobot_act.py")
    for name in ("config.json", "model.safetensors", "policy_preprocessor.json",
                 "policy_postprocessor.json"):
        assert (path / name).is_file(), name
    config = json.loads((path / "config.json").read_text())
    assert config["type"] == "act"
    assert config["output_features"]["action"]["shape"] == [7]
    assert set(config["input_features"]) <= set(DEFAULT_KEYS)
    with pytest.raises(PolicyError, match="no shipped lerobot policy for task 'stack'"):
        shipped_weights("lerobot", "stack", "scripts/train_lerobot_act.py")


def test_plain_lerobot_needs_a_world_to_name_its_task():
    with pytest.raises(PolicyError, match="without a simulated world"):
        make_policy("lerobot")


@pytest.mark.slow
def test_the_shipped_checkpoint_acts_through_the_lerobot_environment():
    try:
        lerobot_python()
    except PolicyError as exc:
        pytest.skip(str(exc))
    world = type("World", (), {"catalog": type("Catalog", (), {"task": "lift"})()})()
    policy = make_policy("lerobot", world)
    obs = {"eef_pos": np.array([-0.1, 0.0, 1.0]), "gripper": np.array([1.0]),
           "object": np.linspace(-0.1, 0.1, 10), "image": np.zeros((84, 84, 3), np.uint8)}
    policy.reset()
    action = policy.act(obs)
    assert action.shape == (7,) and np.all(np.isfinite(action)) and policy.uses_image is False
