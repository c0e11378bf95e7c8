"""BC weights on disk: plain tensors and metadata, always loaded with ``weights_only=True``
(loading a weights file never runs pickled code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from robomd_diagnoser.learning.model import BCNet
from robomd_diagnoser.policy import PolicyError

FORMAT = "robomd-bc"
FORMAT_VERSION = 1


class BCWeightsError(PolicyError):
    """A BC weights file is missing, corrupt or inconsistent; the message names the file."""



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
