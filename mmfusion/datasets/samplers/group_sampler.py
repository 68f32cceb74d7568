"""Shuffle whole groups of consecutive samples, so each group shares a batch."""
from __future__ import annotations

import logging
import math
import re
from typing import Dict, Iterator, List, Optional, Sized, Tuple

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
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

    With ``homogeneous_key`` (e.g. ``question_type``), every batch holds
    groups that share that key's value (task-homogeneous batches): in a
    multi-task benchmark one task's gradient is then not averaged away by the
    others' in each step, and the slowest task (relative position, here)
    starts learning far earlier. Groups are then dealt in blocks of
    ``batch_size`` samples; groups that do not fill a one-key block go into
    mixed blocks at the end of the epoch, and blocks go round-robin to the
    ranks.

    Args:
        dataset: the dataset (its length; ``get_data_info`` for the key).
        group_size: consecutive samples that form a group.
        shuffle: shuffle the group order each epoch.
        seed: shuffling seed; synchronised across ranks when None.
        round_up: pad so every rank gets the same number of groups.
        homogeneous_key: data-info key whose value is shared by a batch.
        batch_size: samples per batch per rank (needed with
            ``homogeneous_key``; a multiple of ``group_size``).
        key_weights: with ``homogeneous_key``, how often each value's groups
            are visited per epoch (default 1.0 each; 2.0 doubles a slow
            task's batches, 0.5 visits a random half).
        text_keys: with ``homogeneous_key``, finer keys by wording: a group
            whose first sample's ``text`` matches (``re.search``) the regex
            ``text_keys[name]`` gets the key ``name`` instead of its
            ``homogeneous_key`` value (the first matching name, in the
            mapping's order), so one question type can be split into
            sub-types with batches and ``key_weights`` of their own.
    """

    def __init__(self, dataset: Sized, group_size: int = 4,
                 shuffle: bool = True, seed: Optional[int] = None,
                 round_up: bool = True,
                 homogeneous_key: Optional[str] = None,
                 batch_size: Optional[int] = None,
                 key_weights: Optional[Dict[str, float]] = None,
                 text_keys: Optional[Dict[str, str]] = None) -> None:
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
        self.homogeneous_key = homogeneous_key
        if text_keys and homogeneous_key is None:
            raise ValueError('GroupSampler text_keys refine homogeneous_key '
                             'and need it set')
        patterns = []
        for name, pattern in (text_keys or {}).items():
            try:
                patterns.append((str(name), re.compile(pattern)))
            except re.error as err:
                raise ValueError(f'GroupSampler text_keys[{name!r}] is not a '
                                 f'valid regex ({err}): {pattern!r}') from None
        if homogeneous_key is not None:
            if not batch_size or batch_size % group_size:
                raise ValueError(
                    f'GroupSampler(homogeneous_key={homogeneous_key!r}) needs '
                    f'batch_size (got {batch_size}) that is a multiple of '
                    f'group_size ({group_size})')
            self.groups_per_block = batch_size // group_size
            keys: dict = {}
            for g in range(self.num_groups):
                info = dataset.get_data_info(g * group_size)
                key = info.get(homogeneous_key)
                text = info.get('text')
                if patterns and isinstance(text, str):
                    key = next((name for name, regex in patterns
                                if regex.search(text)), key)
                keys.setdefault(key, []).append(g)
            self._keys = sorted(keys, key=str)
            self._groups_by_key = [keys[k] for k in self._keys]
            self.key_weights = dict(key_weights or {})
            unknown = set(self.key_weights) - {str(k) for k in keys}
            if unknown:
                # One config serves several subsets (the control splits have
                # other types), so this is worth a warning, not a failure.
                print_log(f'GroupSampler: key_weights names {sorted(unknown)}'
                          f', which no sample has (values: {self._keys}); '
                          'they are ignored.', logger='current',
                          level=logging.WARNING)

    def _homogeneous_order(self):
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        blocks, leftovers = [], []
        k = self.groups_per_block
        for key, groups in zip(self._keys, self._groups_by_key):
            weight = float(self.key_weights.get(str(key), 1.0))
            order = []
            while len(order) < round(weight * len(groups)):
                order += ([groups[i] for i in torch.randperm(
                    len(groups), generator=g).tolist()] if self.shuffle
                          else list(groups))
            order = order[:round(weight * len(groups))]
            full = len(order) - len(order) % k
            blocks += [order[i:i + k] for i in range(0, full, k)]
            leftovers += order[full:]
        # What does not fill a one-key block is not dropped: it forms mixed
        # blocks (the last one may be short; it comes last on its rank).
        mixed = [leftovers[i:i + k] for i in range(0, len(leftovers), k)]
        if self.shuffle:
            blocks = [blocks[i] for i in torch.randperm(
                len(blocks), generator=g).tolist()]
        full_mixed = [b for b in mixed if len(b) == k]
        blocks += full_mixed + [b for b in mixed if len(b) < k]
        per_rank = math.ceil(len(blocks) / self.world_size)
        if blocks and len(blocks) < per_rank * self.world_size:
            blocks = (blocks * 2)[:per_rank * self.world_size]
        return [grp for block in blocks[self.rank::self.world_size]
                for grp in block]

    def _group_order(self):
        if self.homogeneous_key is not None:
            return self._homogeneous_order()
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

    def _epoch_order(self) -> Tuple[List[int], int]:
        """This epoch's group order and its number of samples, computed
        once per epoch: ``len()`` is asked every iteration (mmengine's
        LoggerHook asks the dataloader whether the epoch ended), and the
        order of a large dataset takes ~10 ms to draw."""
        cached = getattr(self, '_order_cache', None)
        if cached is None or cached[0] != self.epoch:
            order = self._group_order()
            n = len(self.dataset)
            length = sum(min(self.group_size, n - g * self.group_size)
                         for g in order)
            cached = self._order_cache = (self.epoch, order, length)
        return cached[1], cached[2]

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        for group in self._epoch_order()[0]:
            start = group * self.group_size
            yield from range(start, min(start + self.group_size, n))

    def __len__(self) -> int:
        return self._epoch_order()[1]

    def set_epoch(self, epoch: int) -> None:
        """Called by the loops so every epoch has its own order."""
        self.epoch = epoch
