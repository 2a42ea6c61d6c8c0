"""Reproducible randomness for training: seeds, RNG states for resume, and the data order.

Every random draw of a run is a function of (run seed, epoch, position) or (run seed, step,
rank), so a killed run resumed from its last checkpoint ends with the same weights:

    seed_everything(cfg.seed)                         # same initial weights on every rank
    sampler = EpochSampler(len(ds), seed=cfg.seed, rank=dist.rank, world_size=dist.world_size)
    sampler.set_position(*divmod(step * cfg.batch, sampler.epoch_size))  # same data order
    loader = DataLoader(SeededSamples(ds), batch_size=cfg.batch, sampler=sampler)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from weedseg.errors import WeedsegError


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states in a form `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def sample_seed(seed: int, *keys: int) -> int:
    """A reproducible 63-bit seed derived from a run seed and integer keys (epoch, step, ...)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint64)[0] >> 1)


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled indices per epoch, sharded by rank, resumable at any position, never ending.

    Yields `(index, sample_seed)`: wrap the dataset in `SeededSamples` so each sample's random
    augmentation depends only on (run seed, epoch, position), whatever the worker count and
    however often the run was resumed. Every rank sees a disjoint `epoch_size` share per epoch.
    """

    def __init__(self, length: int, *, seed: int, rank: int = 0, world_size: int = 1):
        if length < 1:
            raise WeedsegError("no samples to train on")
        self.length, self.seed, self.rank, self.world_size = length, seed, rank, world_size
        self.epoch_size = -(-length // world_size)  # per rank; the last ranks wrap around
        self.epoch, self.position = 0, 0

    def set_position(self, epoch: int, position: int) -> None:
        """Start at sample `position` (per rank) of `epoch`."""
        self.epoch, self.position = epoch, position

    def epoch_order(self, epoch: int) -> list[int]:
        """This rank's indices for one epoch."""
        g = torch.Generator().manual_seed(sample_seed(self.seed, epoch))
        order = torch.randperm(self.length, generator=g).tolist()
        order += order[: self.epoch_size * self.world_size - self.length]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        while True:
            order = self.epoch_order(self.epoch)
            for position in range(self.position, len(order)):
                yield order[position], sample_seed(self.seed, self.epoch, position, self.rank)
            self.epoch, self.position = self.epoch + 1, 0

    def __len__(self) -> int:
        return self.epoch_size


class SeededSamples(torch.utils.data.Dataset):
    """Dataset view seeding python/numpy/torch before each `dataset[index]` (see EpochSampler)."""

    def __init__(self, dataset: torch.utils.data.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        seed_everything(seed)
        return self.dataset[index]
