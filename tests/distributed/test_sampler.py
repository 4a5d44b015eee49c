"""DistributedSampler against PyTorch's (unshuffled orders, padding and dropping), its
coverage of the dataset, its reshuffling, its agreement across the job's ranks, and the
DataLoader reading from it."""

from collections import Counter

import numpy as np
import pytest
import torch.utils.data
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import distributed as dist
from needle.distributed import DistributedSampler

W, R = dist.world_size(), dist.rank()


def shares(n, world, **kwargs):
    return [list(DistributedSampler(range(n), world, r, **kwargs)) for r in range(world)]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), world=st.integers(1, 6), drop_last=st.booleans())
def test_unshuffled_shares_match_pytorch(n, world, drop_last):
    if drop_last and n < world:
        return  # a share of nothing; PyTorch's sampler breaks on it
    torch_shares = [list(torch.utils.data.DistributedSampler(
        range(n), world, r, shuffle=False, drop_last=drop_last)) for r in range(world)]
    assert shares(n, world, shuffle=False, drop_last=drop_last) == torch_shares


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), world=st.integers(1, 6), seed=st.integers(0, 5))
def test_an_epoch_covers_the_dataset_once_plus_padding(n, world, seed):
    parts = shares(n, world, seed=seed)
    assert len({len(p) for p in parts}) == 1  # equal counts on every rank
    counts = Counter(i for p in parts for i in p)
    total = -(-n // world) * world
    assert set(counts) == set(range(n)) and sum(counts.values()) == total
    assert sum(c - 1 for c in counts.values()) == total - n  # the padding, counted
    assert all(len(p) == len(DistributedSampler(range(n), world, r))
               for r, p in enumerate(parts))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), world=st.integers(1, 6))
def test_drop_last_and_unpadded_shares(n, world):
    dropped = [i for p in shares(n, world, drop_last=True) for i in p]
    assert len(dropped) == n // world * world == len(set(dropped))
    unpadded = shares(n, world, pad=False)
    assert sorted(i for p in unpadded for i in p) == list(range(n))
    assert max(map(len, unpadded)) - min(map(len, unpadded)) <= 1


def test_set_epoch_reshuffles_and_the_global_rng_is_untouched():
    sampler = DistributedSampler(range(100), 2, 0, seed=7)
    np.random.seed(0)
    first = list(sampler)
    assert first == list(sampler)  # same epoch, same order
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second and sorted(first) != first
    assert np.random.rand() == pytest.approx(np.random.RandomState(0).rand())
    other_seed = DistributedSampler(range(100), 2, 0, seed=8)
    assert list(other_seed) != first


def test_every_rank_of_the_job_draws_the_same_order():
    sampler = DistributedSampler(range(37), seed=3)
    assert (sampler.num_replicas, sampler.rank) == (W, R)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        orders = dist.all_gather_object(sampler.order().tolist())
        assert all(order == orders[0] for order in orders)
        assert list(sampler) == orders[0][R::W]
        everyone = dist.all_gather_object(list(sampler))
        assert sorted(set(i for part in everyone for i in part)) == list(range(37))


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="rank must be in"):
        DistributedSampler(range(4), 2, 2)
    with pytest.raises(ValueError, match="exclude each other"):
        DistributedSampler(range(4), 2, 0, drop_last=True, pad=False)
    with pytest.raises(ValueError, match="sampler and shuffle"):
        ndl.data.DataLoader(ndl.data.NDArrayDataset(np.zeros((4, 1))), 2, shuffle=True,
                            sampler=range(4))


def test_dataloader_batches_follow_the_sampler():
    x = np.arange(23, dtype=np.float32).reshape(23, 1)
    sampler = DistributedSampler(range(23), 3, 1, seed=5)
    loader = ndl.data.DataLoader(ndl.data.NDArrayDataset(x, np.arange(23)), 3, sampler=sampler)
    batches = [batch[1].numpy().tolist() for batch in loader]
    assert [i for b in batches for i in b] == list(sampler) and len(loader) == len(batches) == 3
    assert [len(b) for b in batches] == [3, 3, 2]
