"""Continuous RoboMD (Algorithm 2): a vision-language failure embedding, PPO in embedding space,
and ranking of seen or unseen perturbation texts by the policy's density ratio (Eq. 4).

- :mod:`.dataset`: (scene image, perturbation text, success) samples from a campaign or sweep.
- :mod:`.model`: the image + text embedder with its success head; loading it safely.
- :mod:`.train`: BCE + margin contrastive training (Eq. 1), checkpointed and resumable.
- :mod:`.evaluate`: cosine confusion matrix vs identity, kNN accuracy, ablations.
- :mod:`.embedding_env`: the embedding-space environment (snapping, reward Eq. 2).
- :mod:`.agent`: PPO on it, saved weights-only.
- :mod:`.query`: Eq. 4 ranking with reliability.

Nothing here imports rclpy or robosuite at module level.
"""
