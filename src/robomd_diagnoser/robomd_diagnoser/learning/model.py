"""The vision BC network: a CNN with a spatial-softmax keypoint head, proprioception, MLP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from robomd_diagnoser.policy import ACTION_DIM

#: Proprioception the network takes: eef_pos (3) and gripper (1).
PROPRIO_DIM = 4


class SpatialSoftmax(nn.Module):
    """Expected (x, y) image coordinates of each feature channel, in [-1, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        attn = F.softmax(x.reshape(b, c, h * w), dim=-1).reshape(b, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device)
        return torch.cat([(attn.sum(2) * xs).sum(-1), (attn.sum(3) * ys).sum(-1)], dim=1)


class BCNet(nn.Module):
    """CNN + spatial softmax encoder, concatenated with proprioception, MLP to a (7,) action.

    :param channels: output channels of the conv layers: the first is 5x5 with stride 2, the
        second 3x3 with stride 2, the rest 3x3 with stride 1 (84 px in -> 15x15 keypoint maps).
    :param hidden: width of the two MLP hidden layers.
    """

    def __init__(self, channels: Sequence[int] = (32, 32, 32, 32), hidden: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, 5 if i == 0 else 3, stride=2 if i < 2 else 1)]
            if i < len(channels) - 1:
                layers.append(nn.ReLU(inplace=True))
            c_in = c
        self.encoder = nn.Sequential(*layers, SpatialSoftmax())
        self.head = nn.Sequential(
            nn.Linear(2 * c_in + PROPRIO_DIM, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, ACTION_DIM))

    def forward(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """:param image: (B, 3, H, W) float in [0, 1]. :param proprio: (B, 4) normalised."""
        return self.head(torch.cat([self.encoder(image - 0.5), proprio], dim=1))
