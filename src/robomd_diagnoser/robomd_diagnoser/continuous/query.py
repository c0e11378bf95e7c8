"""Rank perturbation texts, seen or unseen, by the agent's density ratio at the nominal scene.

Each text is embedded with images of its scene when they are given (the perturbed scene,
rendered or photographed: observing it needs no rollout), else with the nominal scene images
kept with the known embeddings; the embedding is the normalised mean over the images. Its score
is ``log p_MD(e_text | s_nominal)``; Eq. 4's ratio between two texts is the difference of their
scores. ``log_ratio`` is the score minus that of the nominal
scene's own text, so a positive value reads "the agent expects this more than the unperturbed
scene to make the policy fail". ``reliability`` is the distance from the text's embedding to the
nearest known embedding (unit-norm embeddings: in [0, 2]); ``far`` flags distances above the
known set's reliability threshold
(:attr:`~robomd_diagnoser.continuous.embedding_env.KnownEmbeddings.reliability_threshold`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robomd_diagnoser.continuous.agent import AgentSettings, EmbeddingAgent
from robomd_diagnoser.continuous.embedding_env import ContinuousReward, KnownEmbeddings
from robomd_diagnoser.continuous.model import FailureEmbedder
from robomd_diagnoser.continuous.train import EMBEDDER, KNOWN, scene_embeddings
from robomd_diagnoser.sweep import NOMINAL_TEXT


@dataclass(frozen=True)
class QueryRow:
    """One ranked text.

    :param rank: 1 = most failure-prone.
    :param text: the perturbation text.
    :param log_density: ``log p_MD(e | s_nominal)``.
    :param log_ratio: ``log_density`` minus the nominal text's (Eq. 4 against the nominal scene).
    :param reliability: distance to the nearest known embedding.
    :param far: ``reliability`` is above the known set's threshold (treat the rank with care).
    :param nearest: the perturbation set of the nearest known embedding.
    :param p_fail_head: 1 - the success head's prediction (a second opinion, not the ranking).
    """

    rank: int
    text: str
    log_density: float
    log_ratio: float
    reliability: float
    far: bool
    nearest: str
    p_fail_head: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rank_texts(embedder: FailureEmbedder, agent: EmbeddingAgent, texts: list[str],
               scenes: Sequence[np.ndarray | None] | None = None) -> list[QueryRow]:
    """Rank ``texts`` by Eq. 4 at the nominal scene (most failure-prone first).

    :param embedder: the trained embedder.
    :param agent: the trained agent (its known embeddings give the nominal images and E).
    :param texts: perturbation descriptions.
    :param scenes: per text, (K, H, W, 3) uint8 images of the scene it describes, or None for
        the nominal scene; None: every text at the nominal scene.
    """
    if not texts:
        raise ValueError("rank_texts: give at least one perturbation text")
    known = agent.known
    scenes = list(scenes) if scenes is not None else [None] * len(texts)
    if len(scenes) != len(texts):
        raise ValueError(f"rank_texts: {len(texts)} texts but {len(scenes)} scenes")
    if not embedder.config.use_text and any(s is None for s in scenes):
        raise ValueError("this embedder has no text branch (image only): a text at the nominal "
                         "scene is the nominal scene; give each text's scene images (--scene "
                         "TEXT=PATH)")
    emb = scene_embeddings(embedder, list(texts) + [NOMINAL_TEXT],
                           [known.nominal_images if s is None else s for s in scenes]
                           + [known.nominal_images])
    logp = agent.log_density(emb)
    with torch.no_grad():
        p_fail = 1.0 - embedder.module.head(torch.from_numpy(emb)).sigmoid().numpy().reshape(-1)
    idx, dist = known.nearest(emb[:-1])
    order = sorted(range(len(texts)), key=lambda i: (-logp[i], i))
    return [QueryRow(rank=r + 1, text=texts[i], log_density=float(logp[i]),
                     log_ratio=float(logp[i] - logp[-1]), reliability=float(dist[i]),
                     far=bool(dist[i] > known.reliability_threshold),
                     nearest=known.names[int(idx[i])], p_fail_head=float(p_fail[i]))
            for r, i in enumerate(order)]


#: Image files :func:`load_scene` reads (besides ``.npy``).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_scene(path: str | Path) -> np.ndarray:
    """Images of one scene: a PNG/JPEG file, a ``.npy`` of one (H, W, 3) or several (K, H, W, 3)
    uint8 images, or a directory of such files (sorted by name).

    :param path: the file or directory.
    :raises ValueError: naming the file when it is missing, unreadable or not 8-bit RGB.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in (*IMAGE_SUFFIXES, ".npy"))
        if not files:
            raise ValueError(f"scene {path}: the directory holds no {', '.join(IMAGE_SUFFIXES)} "
                             "or .npy images")
        return np.concatenate([load_scene(f) for f in files])
    if not path.is_file():
        raise ValueError(f"scene {path}: no such file")
    try:
        if path.suffix.lower() == ".npy":
            image = np.load(path, allow_pickle=False)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            import imageio.v3 as iio

            image = iio.imread(path)
        else:
            raise ValueError(f"scene {path}: use a {', '.join(IMAGE_SUFFIXES)} or .npy file")
    except (OSError, ValueError) as exc:
        if str(exc).startswith(f"scene {path}"):
            raise
        raise ValueError(f"scene {path}: cannot be read ({exc})") from None
    images = image[None] if image.ndim == 3 else image
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"scene {path}: need 8-bit RGB images, (H, W, 3) or (K, H, W, 3) uint8, "
                         f"got {image.dtype} {image.shape}; save it as an RGB PNG (no alpha, "
                         "not greyscale)")
    return images


def load_agent(model_dir: str | Path, settings: AgentSettings,
               reward: ContinuousReward | None = None,
               progress: bool = True) -> tuple[FailureEmbedder, EmbeddingAgent]:
    """The embedder of ``model_dir`` and its agent for ``settings``, trained once and cached as
    ``agent/seed<seed>_t<timesteps>.pt``.

    :param model_dir: a ``robomd embed train`` output directory.
    :param settings: the agent's settings (the seed makes the agent, hence the ranking).
    :param reward: Eq. 2's constants.
    :param progress: report training on stderr.
    """
    model_dir = Path(model_dir)
    embedder, _ = FailureEmbedder.load(model_dir / EMBEDDER)
    known = KnownEmbeddings.load(model_dir / KNOWN)
    reward = reward or ContinuousReward()
    path = model_dir / "agent" / f"seed{settings.seed}_t{settings.timesteps}.pt"
    if path.is_file():
        try:
            agent = EmbeddingAgent.load(path, known)
        except ValueError:  # trained in older action coordinates: retrain below
            agent = None
        if agent is not None and agent.settings == settings and agent.reward == reward:
            return embedder, agent
    if progress:
        print(f"training the embedding-space agent ({settings.timesteps} steps, seed "
              f"{settings.seed}); cached as {path}", file=sys.stderr)
    agent = EmbeddingAgent.train(known, settings, reward)
    agent.save(path)
    return embedder, agent
