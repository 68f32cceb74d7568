"""Shuffle whole groups of consecutive samples, so each group shares a batch."""
from __future__ import annotations

import math
from typing import Iterator, Optional, Sized

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmfusion.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class GroupSampler(Sampler):
    """Like mmengine's ``DefaultSampler``, but shuffles groups of
    ``group_size`` consecutive indices and keeps each group together.

    The shapes benchmark writes each balanced quad (two images x two
    questions with opposite answers) as four consecutive lines. Seeing a
    whole quad in one batch cancels the parts of the gradient that one
    modality alone explains and leaves the interaction, which is what the
    task is about: models start learning far earlier (the VQA v2 idea of
    complementary pairs, applied to batching). With ``group_size=1`` this is
    a plain shuffling sampler.

    Distributed: rank ``r`` of ``w`` takes groups ``r, r + w, ...`` of the
    shuffled order (padded by repetition to a multiple of ``w`` when
    ``round_up``), so ranks read disjoint samples and the union of one step's
    rank batches is the global batch a single process would read when the
    per-rank batch is a multiple of ``group_size``.

    Args:
        dataset: the dataset (only its length is used).
        group_size: consecutive samples that form a group.
        shuffle: shuffle the group order each epoch.
        seed: shuffling seed; synchronised across ranks when None.
        round_up: pad so every rank gets the same number of groups.
    """

    def __init__(self, dataset: Sized, group_size: int = 4,
                 shuffle: bool = True, seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        if group_size < 1:
            raise ValueError(f'group_size must be >= 1, got {group_size}')
        rank, world_size = get_dist_info()
        self.rank, self.world_size = rank, world_size
        self.dataset = dataset
        self.group_size = group_size
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.round_up = round_up
        self.epoch = 0
        self.num_groups = math.ceil(len(dataset) / group_size)
        if round_up:
            self.groups_per_rank = math.ceil(self.num_groups / world_size)
        else:
            self.groups_per_rank = math.ceil(
                (self.num_groups - rank) / world_size)
        self.total_groups = self.groups_per_rank * world_size

    def _group_order(self):
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_groups, generator=g).tolist()
        else:
            order = list(range(self.num_groups))
        if self.round_up and len(order) < self.total_groups:
            reps = math.ceil(self.total_groups / len(order))
            order = (order * reps)[:self.total_groups]
        return order[self.rank:self.total_groups:self.world_size]

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        for group in self._group_order():
            start = group * self.group_size
            yield from range(start, min(start + self.group_size, n))

    def __len__(self) -> int:
        n = len(self.dataset)
        return sum(min(self.group_size, n - g * self.group_size)
                   for g in self._group_order())

    def set_epoch(self, epoch: int) -> None:
        """Called by the loops so every epoch has its own order."""
        self.epoch = epoch
