"""Training loops that resume exactly where a checkpoint was written.

mmengine 0.10.7's ``EpochBasedTrainLoop`` starts a resumed epoch from its
first batch, and its ``IterBasedTrainLoop`` re-loads every batch already
trained on to skip it. These subclasses (registered in mmfusion's LOOPS
under the same names, so ``type: IterBasedTrainLoop`` picks them) instead:

- record the data position (sampler epoch, batches taken in it) in every
  checkpoint and, on resume, skip the batches already seen at the level of
  batch indices, without loading them;
- give every batch its own random seed from (seed, rank, epoch, batch) and
  load it under that seed (:class:`SeededFetch`): in the main process the
  global random states are put back afterwards, so model-side randomness
  (dropout) does not depend on data loading; in worker processes the seed
  makes each batch's random transforms independent of the worker and of
  what that worker loaded before, so a restarted run draws the same;
- restore the random states saved with the checkpoint just before the
  first resumed iteration (:class:`~mmfusion.engine.runner.MMFusionRunner`);
- run validation with the random states preserved, so it draws nothing
  from the training stream.

The data order must be a function of (seed, epoch), as it is for mmengine's
``DefaultSampler``/``InfiniteSampler`` and mmfusion's ``GroupSampler``.
"""
from __future__ import annotations

import bisect
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop as _EpochBasedTrainLoop
from mmengine.runner import IterBasedTrainLoop as _IterBasedTrainLoop
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.utils import calc_dynamic_intervals
from torch.utils.data import DataLoader

from mmfusion.registry import LOOPS
from mmfusion.utils.rng import (batch_seed, preserved_raw_rng,
                                preserved_rng, seed_all, set_rng_state)


class SeededBatch(list):
    """A batch of dataset indices carrying the random seed to load it with."""

    def __init__(self, indices, seed: Sequence[int]) -> None:
        super().__init__(indices)
        self.seed = list(seed)

    def __reduce__(self):
        return (SeededBatch, (list(self), self.seed))


class SeededFetch:
    """Set as ``dataset.__getitems__``: torch's fetcher calls it with a
    batch of indices (in the main process or a worker); a
    :class:`SeededBatch` is loaded under its seed, the global random states
    being restored afterwards."""

    def __init__(self, dataset, inner: Optional[Callable] = None) -> None:
        self.dataset = dataset
        self.inner = inner

    def __call__(self, indices):
        seed = getattr(indices, 'seed', None)
        if seed is None:
            return self._fetch(indices)
        with preserved_raw_rng():
            seed_all(seed)
            return self._fetch(indices)

    def _fetch(self, indices):
        if self.inner is not None:
            return self.inner(list(indices))
        return [self.dataset[i] for i in indices]


class ResumableBatchSampler:
    """Wraps a dataloader's batch sampler: one-shot skip of the first
    batches of an epoch (indices only, nothing loaded) and a per-batch seed
    on every batch it yields."""

    def __init__(self, batch_sampler, seed_fn: Callable[[int, int],
                                                         List[int]]):
        self.batch_sampler = batch_sampler
        self.seed_fn = seed_fn
        self.epoch = 0
        self.skip = 0

    def set_position(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def __iter__(self):
        return self._batches()

    def _batches(self):
        # Read when the first batch is asked for, not when iter() is
        # called: torch's multi-process iterator calls iter() twice and
        # drops the first generator unused.
        epoch, skip = self.epoch, self.skip
        self.skip = 0  # one-shot: the next epoch starts at its first batch
        for b, batch in enumerate(self.batch_sampler):
            if b >= skip:
                yield SeededBatch(batch, self.seed_fn(epoch, b))

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __getattr__(self, name: str):
        # sampler, batch_size, drop_last... of the wrapped batch sampler.
        inner = self.__dict__.get('batch_sampler')
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)


def install_resumable_sampling(loop) -> Optional[ResumableBatchSampler]:
    """Wrap the loop's dataloader's batch sampler and dataset fetch; None
    (mmengine's behaviour is kept) for loaders this cannot handle."""
    dl = loop.dataloader
    if not isinstance(dl, DataLoader) or dl.batch_sampler is None:
        print_log('mmfusion loops: the train dataloader has no batch '
                  'sampler; resume falls back to replaying batches.',
                  logger='current', level=logging.WARNING)
        return None
    if isinstance(dl.batch_sampler, ResumableBatchSampler):
        return dl.batch_sampler
    runner = loop.runner
    rank = get_rank()

    def seed_fn(epoch: int, batch: int) -> List[int]:
        return batch_seed(runner.seed or 0, rank, epoch, batch)

    wrapper = ResumableBatchSampler(dl.batch_sampler, seed_fn)
    # DataLoader forbids setting batch_sampler after construction; the
    # wrapper yields the same batches, so bypassing the guard is safe.
    object.__setattr__(dl, 'batch_sampler', wrapper)
    dataset = dl.dataset
    inner = getattr(dataset, '__getitems__', None)
    if not isinstance(inner, SeededFetch):
        try:
            dataset.__getitems__ = SeededFetch(dataset, inner)
        except AttributeError:
            print_log('mmfusion loops: cannot seed batches of '
                      f'{type(dataset).__name__}; data randomness is then '
                      'not restored exactly on resume.', logger='current',
                      level=logging.WARNING)
    return wrapper


def set_sampler_epoch(dataloader, epoch: int) -> None:
    """``set_epoch`` on the sampler, as mmengine's DistSamplerSeedHook."""
    sampler = getattr(dataloader, 'sampler', None)
    if hasattr(sampler, 'set_epoch'):
        sampler.set_epoch(epoch)
        return
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    inner = getattr(batch_sampler, 'sampler', None)
    if hasattr(inner, 'set_epoch'):
        inner.set_epoch(epoch)


class _ResumeMixin:
    """What both loops share: the pending random state and the log line."""

    _pending_rng: Optional[Dict[str, Any]] = None

    def set_pending_rng_state(self, state: Optional[Dict[str, Any]]) -> None:
        """Random states to restore right before the next iteration."""
        self._pending_rng = state

    def _apply_pending_rng(self) -> None:
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng)
            self._pending_rng = None

    def _log_resume(self, epoch: int, batch: int, exact: bool) -> None:
        how = ('data position from the checkpoint' if exact else
               'data position computed from the iteration (checkpoint '
               'without mmfusion resume state)')
        self.runner.logger.info(
            f'Resuming training: start iteration {self._iter + 1} of '
            f'{self._max_iters} (epoch {epoch}, batch {batch} of the epoch; '
            f'{how}; no batch is re-loaded).')

    _train_rng: Optional[Dict[str, Any]] = None

    def _val(self) -> None:
        with preserved_rng() as state:
            self._train_rng = state
            try:
                self.runner.val_loop.run()
            finally:
                self._train_rng = None

    def training_rng_state(self) -> Optional[Dict[str, Any]]:
        """During validation, the training stream's random state (what a
        checkpoint written by a validation hook must hold); else None."""
        return self._train_rng


@LOOPS.register_module()
class IterBasedTrainLoop(_ResumeMixin, _IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` with exact mid-epoch resume (see
    the module docstring); same arguments."""

    def __init__(self, runner, dataloader: Union[DataLoader, Dict],
                 max_iters: int, val_begin: int = 1, val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None
                 ) -> None:
        # Not mmengine's __init__: it creates a dataloader iterator at once
        # (starting workers and drawing from the torch random state).
        BaseLoop.__init__(self, runner, dataloader)
        self._max_iters = int(max_iters)
        assert self._max_iters == max_iters, \
            f'`max_iters` should be a integer number, but get {max_iters}'
        self._max_epochs = 1
        self._epoch = 0
        self._iter = 0
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        if hasattr(self.dataloader.dataset, 'metainfo'):
            self.runner.visualizer.dataset_meta = \
                self.dataloader.dataset.metainfo
        self.sampling = install_resumable_sampling(self)
        self.dataloader_iterator = _ResumableIterator(self.dataloader,
                                                      self.sampling)
        self._position_restored = False
        self.dynamic_milestones, self.dynamic_intervals = \
            calc_dynamic_intervals(self.val_interval, dynamic_intervals)

    # ------------------------------------------------------------- resume
    def resume_state(self) -> Dict[str, int]:
        """Where the next batch comes from (stored in checkpoints)."""
        it = self.dataloader_iterator
        return {'loop': 'iter', 'iter': int(self._iter) + 1,
                'data_epoch': int(it.epoch), 'data_batch': int(it.batch)}

    def load_resume_state(self, state: Optional[Dict[str, int]]) -> None:
        """Position the data at a checkpoint's ``resume_state`` (or, for a
        checkpoint without one, at the position its iteration implies)."""
        it = self.dataloader_iterator
        exact = bool(state) and state.get('loop') == 'iter'
        if exact:
            it.epoch, it.batch = state['data_epoch'], state['data_batch']
        else:
            per_epoch = max(len(self.dataloader), 1)
            it.epoch, it.batch = divmod(self._iter, per_epoch)
        self._position_restored = True
        self._log_resume(it.epoch, it.batch, exact)

    def run(self) -> None:
        """Launch training."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            if not self._position_restored:
                self.load_resume_state(None)
            if self.sampling is None:  # cannot skip indices: replay
                print_log(f'Advance dataloader {self._iter} steps to skip '
                          'data that has already been trained',
                          logger='current', level=logging.WARNING)
                for _ in range(self._iter):
                    next(self.dataloader_iterator)
                self.dataloader_iterator.epoch = 0
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self._apply_pending_rng()
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self._val()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model


class _ResumableIterator:
    """Endless iteration over a dataloader, epoch after epoch, that can
    start at (epoch, batch) without loading the batches before it."""

    def __init__(self, dataloader: DataLoader,
                 sampling: Optional[ResumableBatchSampler]) -> None:
        self._dataloader = dataloader
        self._sampling = sampling
        self._iterator = None
        self.epoch = 0
        self.batch = 0  # batches taken from the current epoch

    def __iter__(self):
        return self

    def _start(self) -> None:
        set_sampler_epoch(self._dataloader, self.epoch)
        if self._sampling is not None:
            self._sampling.set_position(self.epoch, self.batch)
        # Creating an iterator draws a base seed from the torch state.
        with preserved_rng():
            self._iterator = iter(self._dataloader)

    def __next__(self):
        if self._iterator is None:
            self._start()
        try:
            data = next(self._iterator)
        except StopIteration:
            self.epoch += 1
            self.batch = 0
            if getattr(self._dataloader, 'num_workers', 0):
                time.sleep(2)  # as mmengine: let workers wind down
            self._start()
            data = next(self._iterator)
        self.batch += 1
        return data

    @property
    def _epoch(self) -> int:  # mmengine's attribute name
        return self.epoch


@LOOPS.register_module()
class EpochBasedTrainLoop(_ResumeMixin, _EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` that resumes mid-epoch at the
    next batch (see the module docstring); same arguments."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sampling = install_resumable_sampling(self)
        self._next_batch = 0      # of the current epoch, after this iter
        self._start_batch = 0     # where the next epoch run starts
        self._position_restored = False

    def resume_state(self) -> Dict[str, int]:
        return {'loop': 'epoch', 'iter': int(self._iter) + 1,
                'data_epoch': int(self._state_epoch),
                'data_batch': int(self._next_batch)}

    @property
    def _state_epoch(self) -> int:
        return getattr(self, '_epoch_of_state', self._epoch)

    def load_resume_state(self, state: Optional[Dict[str, int]]) -> None:
        exact = bool(state) and state.get('loop') == 'epoch'
        per_epoch = max(len(self.dataloader), 1)
        if exact:
            epoch, batch = state['data_epoch'], state['data_batch']
        else:
            epoch = self._epoch
            batch = self._iter - epoch * per_epoch
            if not 0 <= batch <= per_epoch:
                epoch, batch = divmod(self._iter, per_epoch)
        self._epoch = epoch
        self._start_batch = batch
        self._position_restored = True
        self._log_resume(epoch, batch, exact)

    def run(self):
        self.runner.call_hook('before_train')
        if self._iter > 0 and not self._position_restored:
            self.load_resume_state(None)
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._epoch >= self.val_begin
                    and (self._epoch % self.val_interval == 0
                         or self._epoch == self._max_epochs)):
                self._val()
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        start, self._start_batch = self._start_batch, 0
        if self.sampling is not None:
            self.sampling.set_position(self._epoch, start)
        elif start:
            raise RuntimeError('cannot resume mid-epoch without a batch '
                               'sampler to skip')
        self._epoch_of_state = self._epoch
        with preserved_rng():
            iterator = iter(self.dataloader)
        for idx, data_batch in enumerate(iterator, start=start):
            self._apply_pending_rng()
            self.run_iter(idx, data_batch)
        # An epoch-end checkpoint resumes at the next epoch's first batch.
        self._epoch_of_state = self._epoch + 1
        self._next_batch = 0
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        self._epoch_of_state = self._epoch

    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        self._next_batch = idx + 1
        super().run_iter(idx, data_batch)

    def _decide_current_val_interval(self) -> None:
        step = bisect.bisect(self.dynamic_milestones, (self.epoch + 1))
        self.val_interval = self.dynamic_intervals[step - 1]
