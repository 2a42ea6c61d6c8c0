"""Seeds and the data order: resumable, sharded by rank, each sample's randomness repeatable."""

from __future__ import annotations

import torch

from weedseg.seeding import EpochSampler, SeededSamples, rng_state, seed_everything, set_rng_state


def test_sampler_resumes_mid_epoch_and_shards_ranks():
    full = EpochSampler(10, seed=3)
    stream = iter(full)
    first = [next(stream) for _ in range(25)]
    later = EpochSampler(10, seed=3)
    later.set_position(*divmod(13, later.epoch_size))
    stream = iter(later)
    assert [next(stream) for _ in range(12)] == first[13:]
    ranks = [EpochSampler(10, seed=3, rank=r, world_size=2).epoch_order(0) for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == list(range(10))


def test_seeded_samples_repeat_their_randomness():
    class Noise(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return torch.rand(1).item() + index

    ds = SeededSamples(Noise())
    assert ds[(1, 42)] == ds[(1, 42)] != ds[(1, 43)]


def test_rng_state_round_trip_repeats_the_next_draws():
    seed_everything(7)
    saved = rng_state()
    first = torch.rand(3)
    set_rng_state(saved)
    assert torch.equal(torch.rand(3), first)
