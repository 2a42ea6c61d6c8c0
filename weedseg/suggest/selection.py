"""Combine signals into one score and pick k images that are both informative and diverse."""

from __future__ import annotations

import numpy as np


def rank_normalise(values: np.ndarray) -> np.ndarray:
    """Values -> ranks scaled to 0..1 (ties share their mean rank), so signals of any scale mix."""
    if len(values) < 2:
        return np.ones(len(values), dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # rank of each distinct value's first occurrence
    ranks = (first + (counts - 1) / 2)[inverse]
    return ranks.astype(np.float64) / (len(values) - 1)


def combine(signals: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of the rank-normalised signals (missing signals are left out)."""
    used = {name: w for name, w in weights.items() if name in signals and w > 0}
    if not used:
        raise ValueError("no signal with a positive weight")
    total = sum(used.values())
    return sum(w * rank_normalise(signals[name]) for name, w in used.items()) / total


def select_diverse(scores: np.ndarray, embeddings: np.ndarray | None, k: int) -> list[int]:
    """Greedy pick: start from the best score, then maximise score x distance to those picked.

    Distance is to the nearest already-picked image (k-center), scaled to 0..1 each round, so a
    near-duplicate of a picked image scores ~0 however uncertain it is. Without embeddings this
    is the plain top-k by score.
    """
    k = min(k, len(scores))
    if embeddings is None:
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]
    chosen = [int(np.argmax(scores))]
    nearest = np.linalg.norm(embeddings - embeddings[chosen[0]], axis=1)  # [N]
    while len(chosen) < k:
        spread = nearest / max(float(nearest.max()), 1e-12)
        value = (0.05 + scores) * spread
        value[chosen] = -1.0
        pick = int(np.argmax(value))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(embeddings - embeddings[pick], axis=1))
    return chosen
