"""Snapping to the nearest known embedding, Eq. 2, and the embedding-space environment."""

from __future__ import annotations

import numpy as np
import pytest

from robomd_diagnoser.continuous.embedding_env import (
    ContinuousReward,
    EmbeddingEnv,
    KnownEmbeddings,
    nearest,
)


def known() -> KnownEmbeddings:
    emb = np.eye(4, dtype=np.float32)[[0, 0, 1, 2, 3]]
    emb[1] = [0.8, 0.6, 0.0, 0.0]
    k = KnownEmbeddings(emb, np.array([False, False, True, True, False]),
                        ["a", "a", "b", "nominal", "c"], np.full(5, 0.5, np.float32),
                        np.zeros((1, 4, 4, 3), np.uint8), horizon=100)
    k.nominal = np.array([0.0, 0.0, 1.0, 0.0], np.float32)
    return k


def test_nearest_returns_index_and_euclidean_distance():
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 3.0]])
    idx, dist = nearest(pts, np.array([[9.0, 1.0], [0.0, 2.0], [-1.0, 0.0]]))
    assert idx.tolist() == [1, 2, 0]
    assert dist == pytest.approx([np.sqrt(2.0), 1.0, 1.0])


@pytest.mark.parametrize("failed,penalty,repeats,expected", [
    (True, 0.0, 0, 1.0),
    (True, 1.0, 0, 0.5),
    (True, 0.0, 3, 1.0 - 0.03),
    (False, 0.0, 5, -1.0 / 100),
    (False, 1.0, 0, -1.0 / 200),
])
def test_reward_is_eq2(failed, penalty, repeats, expected):
    assert ContinuousReward()(failed, penalty, repeats, horizon=100) == pytest.approx(expected)


def test_paper_constants_reproduce_its_code():
    r = ContinuousReward(failure=10000, repeat=100)
    assert r(True, 1.0, 2, 150) == pytest.approx(10000 / 2 - 200)


def test_env_snaps_actions_and_uses_the_snapped_outcome():
    k = known()
    env = EmbeddingEnv(k, episode_length=3)
    obs, _ = env.reset(seed=0)
    assert np.allclose(obs, k.to_action(k.nominal))
    # exactly on known embedding 4 ("c", failed): full failure reward, state back to nominal
    obs, reward, term, trunc, info = env.step(k.to_action(k.embeddings[4]))
    assert info["index"] == 4 and info["failed"] and info["distance"] == pytest.approx(0, abs=1e-5)
    assert reward == pytest.approx(1.0) and np.allclose(obs, k.to_action(k.nominal))
    # again "c": one consecutive repeat
    _, reward, _, _, info = env.step(k.to_action(k.embeddings[4]) + 0.01)
    assert info["repeats"] == 1
    assert reward == pytest.approx(1.0 / (1.0 + 0.01) - 0.01, rel=1e-3)
    # near "b" (success): small negative reward, the state becomes b's embedding; episode ends
    obs, reward, term, trunc, info = env.step(k.to_action(k.embeddings[2]))
    assert not info["failed"] and reward == pytest.approx(-1.0 / 100, rel=1e-4)
    assert np.allclose(obs, k.to_action(k.embeddings[2])) and trunc and not term


def test_action_coordinates_keep_unit_embeddings_at_one_norm():
    # Eq. 4 then compares two embeddings only by their alignment with the policy's mean
    k = known()
    norms = np.linalg.norm(k.to_action(k.embeddings), axis=1)
    assert np.allclose(norms, norms[0], rtol=1e-5)
    assert np.sqrt((k.to_action(k.embeddings) ** 2).mean()) == pytest.approx(1.0, rel=1e-5)


def test_known_embeddings_round_trip(tmp_path):
    k = known()
    k.reliability_threshold = 0.3
    loaded = KnownEmbeddings.load(k.save(tmp_path / "k.npz"))
    assert loaded.names == k.names and np.array_equal(loaded.embeddings, k.embeddings)
    assert loaded.reliability_threshold == 0.3 and loaded.horizon == 100
    assert np.array_equal(loaded.nominal, k.nominal)
