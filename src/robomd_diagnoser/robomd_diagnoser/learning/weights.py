"""BC weights on disk: plain tensors and metadata, always loaded with ``weights_only=True``
(loading a weights file never runs pickled code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

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


def write_weights(path: Path, fmt: str, version: int, model: nn.Module,
                  meta: dict[str, Any]) -> None:
    """Write ``model``'s tensors and ``meta`` (plain types only, loadable with
    ``weights_only=True``) atomically: a crash never leaves a half-written file.

    :param fmt: the file format's name, checked by :func:`read_weights`.
    :param version: its version.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": fmt, "version": version, "meta": meta, "state_dict": state}, tmp)
    tmp.replace(path)


def read_weights(path: Path, fmt: str, version: int, label: str, error: type[Exception],
                 device: str = "cpu", load_hint: str = "", format_hint: str = "") -> dict:
    """Read a file :func:`write_weights` wrote, safely (no pickled code runs); its dict.

    :param label: what the file is, for messages (``BC weights``).
    :param error: the exception raised, with a message naming ``path``.
    :param load_hint: appended when torch cannot read the file.
    :param format_hint: appended when the file is of another format.
    :raises error: if the file is missing, unreadable, of another format or version.
    """
    if not path.is_file():
        raise error(f"{label} file {path} does not exist")
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{label} {path} cannot be loaded safely ({first}){load_hint}") from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise error(f"{label} {path}: not a {fmt} file (no 'format': '{fmt}'){format_hint}")
    if blob.get("version") != version:
        raise error(f"{label} {path}: format version {blob.get('version')!r}, this code reads "
                    f"version {version}")
    return blob


def load_tensors(model: nn.Module, blob: dict, path: Path, label: str,
                 error: type[Exception]) -> nn.Module:
    """``model`` with the tensors of ``blob`` (from :func:`read_weights`), in eval mode.

    :raises error: if the tensors do not fit the architecture the metadata describes.
    """
    try:
        model.load_state_dict(blob.get("state_dict") or {})
    except RuntimeError as exc:
        raise error(f"{label} {path}: tensors do not match the metadata's architecture "
                    f"({str(exc).splitlines()[0]})") from None
    return model.eval()


def save_bc(path: str | Path, model: BCNet, meta: dict[str, Any]) -> None:
    """Save weights and metadata (plain types only, loadable with ``weights_only=True``).

    :param meta: image_size, channels, hidden, eef_mean, eef_std, training (dict).
    """
    path = Path(path)
    _check_meta(meta, path)
    write_weights(path, FORMAT, FORMAT_VERSION, model, meta)


def load_bc(path: str | Path, device: str = "cpu") -> tuple[BCNet, dict[str, Any]]:
    """Load BC weights safely and validate them.

    :raises BCWeightsError: naming ``path`` if it is missing, not a BC weights file, or its
        tensors do not match its metadata.
    """
    path = Path(path)
    blob = read_weights(path, FORMAT, FORMAT_VERSION, "BC weights", BCWeightsError, device,
                        load_hint="; only plain tensor files written by `robomd train-bc` are "
                                  "accepted")
    meta = _check_meta(blob.get("meta"), path)
    model = load_tensors(BCNet(meta["channels"], meta["hidden"]), blob, path, "BC weights",
                         BCWeightsError)
    return model.to(device).eval(), meta
