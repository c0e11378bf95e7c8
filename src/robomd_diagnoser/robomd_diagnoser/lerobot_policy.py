"""LeRobot checkpoints as policies under test: the ``lerobot:<dir>`` spec kind.

``<dir>`` is a LeRobot ``pretrained_model`` directory: ``config.json`` + ``model.safetensors``
and, when saved by LeRobot's trainer, ``policy_preprocessor.json`` / ``policy_postprocessor.json``
with their normalisation statistics. It is loaded with LeRobot's own code
(``PreTrainedConfig.from_pretrained``, the policy class's ``from_pretrained`` and
``make_pre_post_processors``), so the checkpoint's own pre- and post-processing run.

LeRobot 0.4.4, the newest release for Python 3.11, needs torch < 2.11 (and huggingface-hub <
0.36, transformers < 5), which cannot share RoboMD's environment (torch 2.14.1). So LeRobot runs
in its own environment (``make lerobot-env``: ``.venv-lerobot``) behind the websocket policy
server: in an environment without LeRobot, ``lerobot:<dir>`` starts ``python -m
robomd_diagnoser.policy_server --policy lerobot:<dir>`` in the LeRobot environment on a free
local port and talks to it as a ``remote:`` policy. In an environment with LeRobot (the server
side) the checkpoint is loaded in-process. The LeRobot interpreter is ``$ROBOMD_LEROBOT_PYTHON``,
else ``<workspace>/.venv-lerobot/bin/python``.

Inputs: each of the checkpoint's ``input_features`` is filled from our observation through a key
map (:data:`DEFAULT_KEYS`, overridden by ``?keys=<file.json>``); a value ``a+b`` concatenates our
keys ``a`` and ``b``. Visual features get the image as (C, H, W) float in [0, 1]. A feature with
no mapped key, or whose size differs from the mapped value's, is an error naming both.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.policy import (
    ACTION_DIM,
    Observation,
    PolicyError,
    as_action,
    shipped_weights,
    world_task,
)
from robomd_diagnoser.policy_keys import load_key_map, split_options, unmapped_inputs

#: LeRobot feature -> our observation key(s), unless a key map overrides it.
DEFAULT_KEYS = {"observation.state": "eef_pos+gripper", "observation.image": "image",
                "observation.images.agentview": "image",
                "observation.environment_state": "object"}
#: Seconds to wait for the LeRobot environment's server to load the checkpoint and listen.
SERVER_START_TIMEOUT = 300.0


class LeRobotPolicy:
    """A LeRobot checkpoint loaded in-process with LeRobot's own code.

    :param directory: the ``pretrained_model`` directory.
    :param key_map: LeRobot feature -> our key(s) (merged over :data:`DEFAULT_KEYS`).
    :param device: torch device.
    :raises PolicyError: for a missing directory or file, a config LeRobot cannot read, an
        action size other than 7, or an input feature without a mapped key.
    """

    def __init__(self, directory: str | Path, key_map: dict[str, str] | None = None,
                 device: str = "cpu") -> None:
        import torch
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors

        self.directory = Path(directory)
        self.name = f"LeRobot policy {self.directory}"
        _check_directory(self.directory)
        try:
            cfg = PreTrainedConfig.from_pretrained(str(self.directory))
        except Exception as exc:  # noqa: BLE001 - draccus raises many types for a bad config
            raise PolicyError(f"{self.directory}/config.json is not a LeRobot policy config "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        cfg.device = device
        action = cfg.output_features.get("action")
        if action is None or tuple(action.shape) != (ACTION_DIM,):
            shape = None if action is None else tuple(action.shape)
            raise PolicyError(f"{self.name} outputs actions of shape {shape}; RoboMD worlds take "
                              f"({ACTION_DIM},) (OSC_POSE dpos 3, drot 3, gripper 1)")
        self.features = {k: (f.type.name, tuple(f.shape)) for k, f in cfg.input_features.items()}
        self.key_map = {k: v for k, v in {**DEFAULT_KEYS, **(key_map or {})}.items()
                        if k in self.features}
        unmapped_inputs(sorted(self.features), self.key_map, self.name)
        self.policy = get_policy_class(cfg.type).from_pretrained(str(self.directory), config=cfg)
        self.policy.eval()
        has_processors = (self.directory / "policy_preprocessor.json").is_file()
        self.preprocess, self.postprocess = make_pre_post_processors(
            cfg, pretrained_path=str(self.directory) if has_processors else None)
        self.uses_image = any(t == "VISUAL" for t, _ in self.features.values())
        self._torch = torch
        self._device = torch.device(device)

    def reset(self) -> None:
        self.policy.reset()
        for pipeline in (self.preprocess, self.postprocess):
            pipeline.reset()

    def batch(self, obs: Observation) -> dict[str, Any]:
        """Our observation as the checkpoint's batched input features.

        :raises PolicyError: if a mapped key is missing or its size differs from the feature's.
        """
        torch = self._torch
        out: dict[str, Any] = {}
        for feature, ours in self.key_map.items():
            kind, shape = self.features[feature]
            missing = [k for k in ours.split("+") if k not in obs]
            if missing:
                raise PolicyError(f"{self.name} reads {feature!r} from observation key(s) "
                                  f"{missing}, which this world does not provide (it has "
                                  f"{', '.join(sorted(obs))})")
            if kind == "VISUAL":
                img = np.asarray(obs[ours])
                value = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255
            else:
                value = torch.from_numpy(np.concatenate(
                    [np.asarray(obs[k], np.float32).reshape(-1) for k in ours.split("+")]))
            if tuple(value.shape) != shape:
                raise PolicyError(f"{self.name}: feature {feature!r} has shape {shape} but "
                                  f"observation {ours!r} gives {tuple(value.shape)}; map "
                                  "another key with ?keys=<file>")
            out[feature] = value[None].to(self._device)
        return out

    def act(self, obs: Observation) -> np.ndarray:
        torch = self._torch
        with torch.no_grad():
            action = self.policy.select_action(self.preprocess(self.batch(obs)))
            action = self.postprocess(action)
        return as_action(action.reshape(-1), self.name)


def _check_directory(directory: Path) -> None:
    if not directory.is_dir():
        raise PolicyError(f"LeRobot checkpoint directory {directory} does not exist (give the "
                          "pretrained_model directory holding config.json and model.safetensors)")
    for name in ("config.json", "model.safetensors"):
        if not (directory / name).is_file():
            raise PolicyError(f"LeRobot checkpoint {directory} has no {name}; give the "
                              "pretrained_model directory LeRobot's trainer saved")


def lerobot_python() -> Path:
    """The LeRobot environment's interpreter (``$ROBOMD_LEROBOT_PYTHON`` or the workspace's
    ``.venv-lerobot``).

    :raises PolicyError: if there is none, with the command that creates it.
    """
    env = os.environ.get("ROBOMD_LEROBOT_PYTHON")
    if env:
        path = Path(env)
    else:
        ws = os.environ.get("ROBOMD_WS") or Path(__file__).resolve().parents[3]
        path = Path(ws) / ".venv-lerobot" / "bin" / "python"
    if not path.is_file():
        raise PolicyError(f"lerobot: LeRobot is not installed here and there is no LeRobot "
                          f"environment at {path}; create it with `make lerobot-env` (its own "
                          "torch, about 8 GB) or set ROBOMD_LEROBOT_PYTHON")
    return path


def serve_in_lerobot_env(arg: str) -> Any:
    """Start a policy server for ``lerobot:<arg>`` in the LeRobot environment; return a
    :class:`~robomd_diagnoser.remote_policy.RemotePolicy` connected to it (the server stops
    when this process exits).

    :raises PolicyError: if the environment is missing or the server fails to load the
        checkpoint (its error is passed on).
    """
    from robomd_diagnoser.remote_policy import RemotePolicy

    python = lerobot_python()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = str(Path(__file__).resolve().parents[1])  # robomd_diagnoser's source directory
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (src, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.Popen(
        [str(python), "-m", "robomd_diagnoser.policy_server", "--policy", f"lerobot:{arg}",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=env)
    atexit.register(_stop, proc)
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.startswith("serving "):
            break
        if line.startswith("serve-policy: error:"):
            proc.wait()
            raise PolicyError(line.removeprefix("serve-policy: error:").strip())
    else:
        raise PolicyError(f"lerobot:{arg}: the LeRobot environment's policy server exited "
                          f"({python}); its output: {' | '.join(lines[-5:]) or 'none'}")
    policy = RemotePolicy(f"ws://127.0.0.1:{port}", connect_timeout=SERVER_START_TIMEOUT)
    policy.server_process = proc
    return policy


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def make_lerobot_policy(arg: str, world: object | None = None, device: str = "cpu") -> Any:
    """Policy-spec factory of ``lerobot:<dir>[?keys=<map.json>]`` (see the module docstring);
    plain ``lerobot`` is the checkpoint shipped for the world's task. ``device`` applies when
    LeRobot is loaded in this process."""
    path, options = split_options(arg, ("keys",), f"lerobot:{arg}")
    if not path:
        path = str(shipped_weights("lerobot", world_task(world, "lerobot"),
                                   "scripts/train_lerobot_act.py in the LeRobot environment"))
        arg = path + arg
    key_map = load_key_map(options["keys"]) if "keys" in options else None
    try:
        import lerobot  # noqa: F401 - only whether it is importable matters here
    except ImportError:
        _check_directory(Path(path))  # fail fast, before starting another environment
        return serve_in_lerobot_env(arg)
    return LeRobotPolicy(path, key_map, device)
