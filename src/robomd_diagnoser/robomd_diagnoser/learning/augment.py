"""Image augmentation for BC training: random shift and photometric colour changes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

#: Photometric factors :func:`color_augment` knows, each with an amount in [0, 1]:
#: brightness/contrast/saturation scale by U(1-a, 1+a); tint scales each RGB channel independently
#: by U(1-a, 1+a) (a coloured light); hue rotates the hue by U(-a, a) half-turns.
COLOR_AUG_FACTORS = ("brightness", "contrast", "saturation", "tint", "hue")


def random_shift(images: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Pad by replicating edges and crop back at a random offset per image (DrQ).

    :param images: (B, C, H, W) float.
    :param pad: maximum shift in pixels.
    """
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    ox = torch.randint(0, 2 * pad + 1, (b,), device=images.device)
    oy = torch.randint(0, 2 * pad + 1, (b,), device=images.device)
    rows = (oy[:, None] + torch.arange(h, device=images.device)[None, :])  # (B, H)
    cols = (ox[:, None] + torch.arange(w, device=images.device)[None, :])  # (B, W)
    idx_b = torch.arange(b, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


def parse_color_aug(items: Sequence[str]) -> dict[str, float]:
    """Parse ``factor=amount`` strings (e.g. ``tint=0.3``) into a factor dict.

    :raises ValueError: naming an unknown factor or an amount outside [0, 1].
    """
    out: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in COLOR_AUG_FACTORS:
            raise ValueError(f"colour augmentation {item!r}: use factor=amount with factor one "
                             f"of {', '.join(COLOR_AUG_FACTORS)} (e.g. tint=0.3)")
        try:
            amount = float(raw)
        except ValueError:
            raise ValueError(f"colour augmentation {item!r}: amount {raw!r} is not a number") \
                from None
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"colour augmentation {item!r}: amount must be in [0, 1]")
        out[name] = amount
    return out


def _uniform(b: int, amount: float, device: torch.device) -> torch.Tensor:
    return (1.0 + amount * (2.0 * torch.rand(b, 1, 1, 1, device=device) - 1.0))


def color_augment(images: torch.Tensor, factors: dict[str, float]) -> torch.Tensor:
    """Random photometric changes per image.

    :param images: (B, 3, H, W) float in [0, 1].
    :param factors: amounts by factor name, see :data:`COLOR_AUG_FACTORS`.
    """
    b, dev = images.shape[0], images.device
    x = images
    if factors.get("hue"):
        # rotate chroma in YIQ space
        angle = math.pi * factors["hue"] * (2.0 * torch.rand(b, device=dev) - 1.0)
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322],
                               [0.211, -0.523, 0.312]], device=dev)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.zeros(b, 3, 3, device=dev)
        rot[:, 0, 0] = 1.0
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
        mat = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # (B, 3, 3)
        x = torch.einsum("bij,bjhw->bihw", mat, x)
    if factors.get("tint"):
        a = factors["tint"]
        x = x * (1.0 + a * (2.0 * torch.rand(b, 3, 1, 1, device=dev) - 1.0))
    if factors.get("saturation"):
        gray = (x * torch.tensor([0.299, 0.587, 0.114], device=dev)[:, None, None]).sum(
            1, keepdim=True)
        x = gray + (x - gray) * _uniform(b, factors["saturation"], dev)
    if factors.get("contrast"):
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = mean + (x - mean) * _uniform(b, factors["contrast"], dev)
    if factors.get("brightness"):
        x = x * _uniform(b, factors["brightness"], dev)
    return x.clamp(0.0, 1.0)
