"""Rank perturbation texts, seen or unseen, by the agent's density ratio at the nominal scene.

Each text is embedded with the nominal scene images kept with the known embeddings (the
normalised mean over them). Its score is ``log p_MD(e_text | s_nominal)``; Eq. 4's ratio between
two texts is the difference of their scores. ``log_ratio`` is the score minus that of the nominal
scene's own text, so a positive value reads "the agent expects this more than the unperturbed
scene to make the policy fail". ``reliability`` is the distance from the text's embedding to the
nearest known embedding (unit-norm embeddings: in [0, 2]); ``far`` flags distances above the
known set's :attr:`~robomd_diagnoser.continuous.env.KnownEmbeddings.reliability_threshold`.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from robomd_diagnoser.continuous.agent import AgentSettings, EmbeddingAgent
from robomd_diagnoser.continuous.env import ContinuousReward, KnownEmbeddings
from robomd_diagnoser.continuous.model import FailureEmbedder
from robomd_diagnoser.continuous.train import EMBEDDER, KNOWN, text_embeddings
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


def rank_texts(embedder: FailureEmbedder, agent: EmbeddingAgent,
               texts: list[str]) -> list[QueryRow]:
    """Rank ``texts`` by Eq. 4 at the nominal scene (most failure-prone first).

    :param embedder: the trained embedder.
    :param agent: the trained agent (its known embeddings give the nominal images and E).
    :param texts: perturbation descriptions.
    """
    if not texts:
        raise ValueError("rank_texts: give at least one perturbation text")
    known = agent.known
    emb = text_embeddings(embedder, list(texts) + [NOMINAL_TEXT], known.nominal_images)
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
