"""robomimic checkpoints as policies under test: the ``robomimic:<file.pth>`` spec kind.

Loading goes through robomimic's own ``FileUtils.policy_from_checkpoint`` (robomimic 0.3.0, which
installs beside robosuite 1.5.2 and torch 2.14.1 without changing them). The checkpoint is read
with ``torch.load(weights_only=True)`` first, so a file holding pickled code is refused;
robomimic's checkpoints hold only tensors, strings, lists and dicts.

Inputs: the checkpoint's observation keys (its config's modalities) are filled from ours through
a key map, :data:`DEFAULT_KEYS` overridden by ``?keys=<file.json>``. Images are processed by
robomimic's own ``ObsUtils.process_obs`` (HWC uint8 -> CHW float). Differences a map cannot fix
are the user's to know: robosuite's ``robot0_eef_pos`` is in the world frame while our
``eef_pos`` is in the robot base frame, and ``robot0_gripper_qpos`` (finger joints) has no
equivalent here, so a checkpoint that needs it is refused with the key named.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robomd_diagnoser.policy import ACTION_DIM, Observation, PolicyError, as_action
from robomd_diagnoser.policy_keys import load_key_map, split_options, unmapped_inputs

#: robomimic observation key -> our observation key, unless a key map overrides it.
DEFAULT_KEYS = {"robot0_eef_pos": "eef_pos", "object": "object", "agentview_image": "image"}


class RobomimicPolicy:
    """A robomimic ``RolloutPolicy`` behind our RolloutPolicy interface.

    :param path: the ``.pth`` checkpoint.
    :param key_map: robomimic key -> our key (merged over :data:`DEFAULT_KEYS`).
    :param device: torch device.
    :raises PolicyError: if robomimic is missing, the file is missing or unsafe or not a
        robomimic checkpoint, its action size is not 7, or an input has no mapped key.
    """

    def __init__(self, path: str, key_map: dict[str, str] | None = None,
                 device: str = "cpu") -> None:
        from pathlib import Path

        import torch

        try:
            import robomimic.utils.file_utils as file_utils
            import robomimic.utils.obs_utils as obs_utils
        except ImportError as exc:
            raise PolicyError(f"robomimic:{path} needs robomimic ({exc}); install it with "
                              "pip install robomimic==0.3.0") from None
        self.path = Path(path)
        self.name = f"robomimic policy {self.path}"
        if not self.path.is_file():
            raise PolicyError(f"robomimic checkpoint {self.path} does not exist")
        try:
            ckpt = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PolicyError(f"robomimic checkpoint {self.path} cannot be loaded safely "
                              f"({first})") from None
        if not isinstance(ckpt, dict) or not {"model", "config", "algo_name",
                                              "shape_metadata"} <= set(ckpt):
            keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
            raise PolicyError(f"{self.path} is not a robomimic checkpoint (needs model, config, "
                              f"algo_name, shape_metadata; has {keys})")
        shape_meta = ckpt["shape_metadata"]
        if shape_meta.get("ac_dim") != ACTION_DIM:
            raise PolicyError(f"{self.name} outputs {shape_meta.get('ac_dim')}-d actions; "
                              f"RoboMD worlds take {ACTION_DIM} (OSC_POSE dpos 3, drot 3, "
                              "gripper 1)")
        self.inputs: dict[str, list[int]] = {k: list(v) for k, v in
                                             shape_meta["all_shapes"].items()}
        self.key_map = {k: v for k, v in {**DEFAULT_KEYS, **(key_map or {})}.items()
                        if k in self.inputs}
        unmapped_inputs(sorted(self.inputs), self.key_map, self.name)
        self.policy, _ = file_utils.policy_from_checkpoint(device=torch.device(device),
                                                           ckpt_dict=ckpt)
        self._obs_utils = obs_utils
        self.rgb = [k for k in self.inputs if obs_utils.key_is_obs_modality(k, "rgb")]
        self.uses_image = bool(self.rgb)

    def reset(self) -> None:
        self.policy.start_episode()

    def observation(self, obs: Observation) -> dict[str, Any]:
        """Our observation as the checkpoint's input dict.

        :raises PolicyError: if a mapped key is missing or has the wrong size.
        """
        out = {}
        for key, ours in self.key_map.items():
            if ours not in obs:
                raise PolicyError(f"{self.name} reads {key!r} from observation key {ours!r}, "
                                  f"which this world does not provide (it has "
                                  f"{', '.join(sorted(obs))})")
            value = np.asarray(obs[ours])
            if key in self.rgb:
                value = self._obs_utils.process_obs(value, obs_modality="rgb")
            if list(value.shape) != self.inputs[key]:
                raise PolicyError(f"{self.name}: input {key!r} must have shape {self.inputs[key]}"
                                  f", observation {ours!r} gives {list(value.shape)}")
            out[key] = value
        return out

    def act(self, obs: Observation) -> np.ndarray:
        return as_action(self.policy(self.observation(obs)), self.name)


def make_robomimic_policy(arg: str, world: object | None = None, device: str = "cpu"
                          ) -> RobomimicPolicy:
    """Policy-spec factory of ``robomimic:<file.pth>[?keys=<map.json>]``."""
    del world
    path, options = split_options(arg, ("keys",), f"robomimic:{arg}")
    return RobomimicPolicy(path, load_key_map(options["keys"]) if "keys" in options else None,
                           device)
