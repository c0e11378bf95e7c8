"""Policy adapters: TorchScript, module:callable, BC weights; safe loading and clear errors."""

from __future__ import annotations

import pathlib
import textwrap

import numpy as np
import pytest
import torch

from robomd_diagnoser.cli.main import main
from robomd_diagnoser.learning.augment import color_augment, parse_color_aug, random_shift
from robomd_diagnoser.learning.bc_policy import BCPolicy
from robomd_diagnoser.learning.data import load_demos, save_demo
from robomd_diagnoser.learning.model import BCNet
from robomd_diagnoser.learning.weights import BCWeightsError, save_bc
from robomd_diagnoser.policy import (
    CallablePolicy,
    PolicyError,
    RolloutPolicy,
    TorchScriptPolicy,
    make_policy,
)


def _obs(size: int = 84, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            "eef_pos": np.array([-0.1, 0.05, 1.0]), "gripper": np.array([0.8])}


class _Counter(torch.nn.Module):
    """Action = (eef_pos, 0, 0, steps since reset, mean image / 255)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0
        self.uses_image = False

    @torch.jit.export
    def reset(self) -> None:
        self.steps = 0

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        self.steps += 1
        img = obs["image"].float().mean() / 255.0
        return torch.cat([obs["eef_pos"], torch.zeros(2),
                          torch.tensor([float(self.steps)]), img.reshape(1)])


def _meta(size: int = 84) -> dict:
    return {"image_size": size, "channels": [8, 8, 8, 8], "hidden": 16,
            "eef_mean": [0.0, 0.0, 1.0], "eef_std": [0.1, 0.1, 0.1], "training": {}}


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")
def test_torchscript_roundtrip(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "policy.pt"
    torch.jit.script(_Counter()).save(str(path))
    policy = make_policy(f"torchscript:{path}")
    assert isinstance(policy, TorchScriptPolicy) and isinstance(policy, RolloutPolicy)
    assert policy.uses_image is False
    obs = _obs()
    policy.reset()
    policy.act(obs)
    action = policy.act(obs)
    assert action.shape == (7,)
    np.testing.assert_allclose(action[:3], obs["eef_pos"], rtol=1e-6)
    assert action[5] == 2.0
    assert action[6] == pytest.approx(obs["image"].mean() / 255.0, rel=1e-5)
    policy.reset()
    assert policy.act(obs)[5] == 1.0


@pytest.mark.parametrize("kind", ["torchscript", "bc"])
def test_missing_file_names_path(tmp_path: pathlib.Path, kind: str) -> None:
    path = tmp_path / "nope.pt"
    with pytest.raises(PolicyError, match="does not exist") as info:
        make_policy(f"{kind}:{path}")
    assert str(path) in str(info.value)


@pytest.mark.parametrize("kind", ["torchscript", "bc"])
@pytest.mark.parametrize("content", [b"", b"not a model at all\x00\x01\x02" * 20])
def test_corrupt_file_names_path(tmp_path: pathlib.Path, kind: str, content: bytes) -> None:
    path = tmp_path / "corrupt.pt"
    path.write_bytes(content)
    with pytest.raises(PolicyError) as info:
        make_policy(f"{kind}:{path}")
    assert str(path) in str(info.value)


class _Evil:
    """Unpickling this would create a file: a stand-in for arbitrary code."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_bc_refuses_pickled_code(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "robomd-bc", "version": 1, "meta": _Evil(marker)}, path)
    with pytest.raises(BCWeightsError, match="cannot be loaded safely") as info:
        make_policy(f"bc:{path}")
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_bc_save_load_roundtrip(tmp_path: pathlib.Path) -> None:
    torch.manual_seed(0)
    model = BCNet([8, 8, 8, 8], 16).eval()
    path = tmp_path / "w" / "bc.pt"
    save_bc(path, model, _meta())
    policy = make_policy(f"bc:{path}")
    assert isinstance(policy, BCPolicy) and policy.uses_image
    obs = _obs()
    ref = BCPolicy(model, _meta()).act(obs)
    action = policy.act(obs)
    assert action.shape == (7,) and np.all(np.isfinite(action))
    assert np.all(np.abs(action) <= 1.0)
    np.testing.assert_allclose(action, ref, atol=1e-6)
    with pytest.raises(PolicyError, match="84x84x3"):
        policy.act(_obs(size=64))


@pytest.mark.parametrize("change, match", [
    ({"format": "other"}, "not a robomd-bc file"),
    ({"version": 99}, "format version 99"),
    ({"meta": {**_meta(), "eef_std": [0.1, 0.0, 0.1]}}, "eef_std"),
    ({"meta": {k: v for k, v in _meta().items() if k != "hidden"}}, "'hidden'"),
    ({"meta": {**_meta(), "channels": [16, 16, 16, 16]}}, "do not match"),
])
def test_bc_metadata_validated(tmp_path: pathlib.Path, change: dict, match: str) -> None:
    model = BCNet([8, 8, 8, 8], 16)
    blob = {"format": "robomd-bc", "version": 1, "meta": _meta(),
            "state_dict": model.state_dict(), **change}
    path = tmp_path / "bc.pt"
    torch.save(blob, path)
    with pytest.raises(BCWeightsError, match=match) as info:
        make_policy(f"bc:{path}")
    assert str(path) in str(info.value)


@pytest.fixture()
def user_module(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_policies.py").write_text(textwrap.dedent("""
        import numpy as np

        class Hold:
            def __init__(self):
                self.resets = 0
            def reset(self):
                self.resets += 1
            def act(self, obs):
                return np.zeros(7)

        def make_hold():
            return Hold()

        def make_fn():
            return lambda obs: [obs["gripper"][0]] * 7

        def make_short():
            return lambda obs: [0.0, 1.0]

        def make_number():
            return 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_policies"


def test_module_policy_object_and_callable(user_module: str) -> None:
    policy = make_policy(f"module:{user_module}:make_hold")
    assert type(policy).__name__ == "Hold"
    policy.reset()
    assert policy.resets == 1
    wrapped = make_policy(f"module:{user_module}:make_fn")
    assert isinstance(wrapped, CallablePolicy)
    np.testing.assert_allclose(wrapped.act(_obs()), [0.8] * 7)


@pytest.mark.parametrize("target, match", [
    ("make_number", "returned int"),
    ("missing", "has no attribute 'missing'"),
])
def test_module_policy_bad_factory(user_module: str, target: str, match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        make_policy(f"module:{user_module}:{target}")


def test_module_policy_wrong_action_size(user_module: str) -> None:
    policy = make_policy(f"module:{user_module}:make_short")
    with pytest.raises(PolicyError, match="2 elements"):
        policy.act(_obs())


@pytest.mark.parametrize("spec", ["module:no_such_pkg_xyz.mod:make", "module:justamodule"])
def test_module_policy_bad_target(spec: str) -> None:
    with pytest.raises(PolicyError, match="module policy"):
        make_policy(spec)


@pytest.mark.parametrize("spec, match", [
    ("", "torchscript:<path>"), ("bc:", "torchscript:<path>"),
    ("onnx:model.onnx", "unknown policy kind 'onnx'; installed: bc, "),
    ("bc", "without a simulated world give bc:<weights>"),
    ("expert", "runs only in a simulated"),
])
def test_bad_spec(spec: str, match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        make_policy(spec)


def test_callable_nonfinite_action() -> None:
    policy = CallablePolicy(lambda obs: [np.nan] * 7, "nan policy")
    with pytest.raises(PolicyError, match="nan policy returned a non-finite"):
        policy.act(_obs())


@pytest.mark.parametrize("items, expected", [
    ([], {}), (["tint=0.3", "hue=0.1"], {"tint": 0.3, "hue": 0.1})])
def test_parse_color_aug(items: list[str], expected: dict) -> None:
    assert parse_color_aug(items) == expected


@pytest.mark.parametrize("item, match", [
    ("blur=0.1", "factor one of"), ("tint", "factor one of"), ("tint=x", "not a number"),
    ("hue=1.5", r"in \[0, 1\]")])
def test_parse_color_aug_errors(item: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_color_aug([item])


def test_augmentations_keep_shape_and_range() -> None:
    torch.manual_seed(0)
    x = torch.rand(5, 3, 20, 20)
    assert torch.equal(random_shift(x, pad=0), x)
    shifted = random_shift(x, pad=3)
    assert shifted.shape == x.shape
    factors = {"brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "tint": 0.5, "hue": 0.5}
    y = color_augment(x, factors)
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert not torch.allclose(y, x)
    gray = x.mean(1, keepdim=True).expand_as(x).contiguous()
    np.testing.assert_allclose(color_augment(gray, {"hue": 1.0}), gray, atol=1e-5)


def _write_demos(root: pathlib.Path, episodes: int, steps: int, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    for e in range(episodes):
        save_demo(root / f"demo_{e}.npz", {
            "image": rng.integers(0, 256, (steps, size, size, 3), dtype=np.uint8),
            "eef_pos": rng.normal(size=(steps, 3)).astype(np.float32),
            "gripper": rng.uniform(size=(steps, 1)).astype(np.float32),
            "action": rng.uniform(-1, 1, size=(steps, 7)).astype(np.float32)},
            seed=e, perturbations=np.array(["cube_red"]))


def test_load_demos(tmp_path: pathlib.Path) -> None:
    _write_demos(tmp_path, episodes=3, steps=4)
    data = load_demos(tmp_path)
    assert data.image.shape == (12, 32, 32, 3) and data.proprio.shape == (12, 4)
    assert data.action.shape == (12, 7) and data.episode.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    with pytest.raises(FileNotFoundError, match="collect-demos"):
        load_demos(tmp_path / "empty")


def test_train_bc_command(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
    _write_demos(tmp_path / "demos", episodes=4, steps=6)
    out = tmp_path / "bc.pt"
    assert main(["train-bc", "--demos", str(tmp_path / "demos"), "--out", str(out),
                 "--epochs", "2", "--batch-size", "8", "--val-fraction", "0.25",
                 "--channels", "8", "8", "8", "8", "--color-aug", "tint=0.2"]) == 0
    assert "epoch   2/2" in capsys.readouterr().out
    policy = make_policy(f"bc:{out}")
    training = policy.meta["training"]
    assert training["episodes"] == 4 and training["val_episodes"] == 1
    assert training["color_aug"] == {"tint": 0.2} and training["val_mse"] is not None
    assert np.all(np.isfinite(policy.act(_obs(size=32))))


def test_train_bc_command_rejects_bad_aug(tmp_path: pathlib.Path,
                                          capsys: pytest.CaptureFixture) -> None:
    assert main(["train-bc", "--demos", str(tmp_path), "--out", str(tmp_path / "x.pt"),
                 "--color-aug", "blur=1"]) == 2
    assert "blur=1" in capsys.readouterr().err


def test_load_demos_names_a_malformed_file(tmp_path: pathlib.Path) -> None:
    _write_demos(tmp_path, episodes=1, steps=3)
    bad = tmp_path / "demo_bad.npz"
    np.savez_compressed(bad, image=np.zeros((3, 32, 32, 3), np.uint8),
                        eef_pos=np.zeros((3, 2)), gripper=np.zeros((3, 1)),
                        action=np.zeros((3, 7)))
    with pytest.raises(ValueError, match=r"demo_bad.npz: eef_pos must be \(3, 3\)"):
        load_demos(tmp_path)
