"""mmfusion's train loops resume mid-epoch bit-exactly (in-process runs of
a toy model whose data loading and forward both draw random numbers), and
per-batch seeds make data randomness independent of workers and restarts.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mmfusion.engine.loops import ResumableBatchSampler, SeededFetch
from mmfusion.engine.runner import MMFusionRunner
from mmfusion.utils.rng import batch_seed, preserved_rng


class NoisyDataset(Dataset):
    """Each item draws from Python's, numpy's and torch's global RNGs."""

    metainfo = {'classes': ('a', )}

    def __init__(self, n: int = 24) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx):
        noise = random.random() + np.random.rand() + torch.rand(()).item()
        x = torch.tensor([float(idx), noise], dtype=torch.float32)
        return {'inputs': x, 'target': torch.tensor([idx % 3], dtype=torch.
                                                   float32)}


class DropoutRegressor(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, target=None, mode='loss'):
        out = self.fc(self.drop(inputs))
        if mode == 'loss':
            return {'loss_mse': ((out - target) ** 2).mean()}
        return out


class Interrupt(Exception):
    pass


class InterruptAt(Hook):
    """Stand-in for a kill: stop right after iteration ``at`` (after its
    checkpoint is written)."""

    priority = 'LOWEST'

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            raise Interrupt()


def _runner(work_dir, name, train_cfg, *, resume=False, hooks=(),
            num_workers=0, checkpoint=dict(by_epoch=False, interval=4)):
    torch.manual_seed(0)  # the model is built before the runner seeds
    return MMFusionRunner(
        model=DropoutRegressor(), work_dir=str(work_dir),
        experiment_name=name, default_scope='mmfusion',
        train_dataloader=dict(
            dataset=NoisyDataset(), batch_size=4, num_workers=num_workers,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.2,
                              by_epoch=False, begin=0, end=7)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           **checkpoint),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=list(hooks), randomness=dict(seed=3),
        resume=resume, env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING')


def _final(work_dir, step, kind='iter'):
    ckpt = torch.load(work_dir / f'{kind}_{step}.pth', weights_only=True)
    return ckpt['state_dict'], ckpt['optimizer'], ckpt['resume_state']


def _same(a, b):
    if torch.is_tensor(a):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize('train_cfg, stop, last', [
    # 6 batches an epoch; a checkpoint every 4 iterations lands mid-epoch.
    (dict(type='EpochBasedTrainLoop', max_epochs=3), 10, 18),
    (dict(type='IterBasedTrainLoop', max_iters=18, val_interval=100), 10,
     18),
])
def test_interrupted_run_resumes_bit_exactly(tmp_path, train_cfg, stop,
                                             last):
    full = tmp_path / 'full'
    _runner(full, f'full-{stop}-{train_cfg["type"]}', train_cfg).train()
    part = tmp_path / 'part'
    with pytest.raises(Interrupt):
        _runner(part, f'part-{train_cfg["type"]}', train_cfg,
                hooks=[InterruptAt(stop)]).train()
    assert (part / 'iter_8.pth').is_file()
    assert not (part / f'iter_{last}.pth').exists()
    resumed = _runner(part, f'resumed-{train_cfg["type"]}', train_cfg,
                      resume=True)
    resumed.train()
    assert resumed.train_loop.iter == last
    a, b = _final(full, last), _final(part, last)
    for x, y, what in zip(a, b, ('weights', 'optimizer', 'resume state')):
        assert _same(x, y), what


def test_resume_from_a_checkpoint_written_at_epoch_end(tmp_path):
    cfg = dict(type='EpochBasedTrainLoop', max_epochs=3)
    ckpt = dict(by_epoch=True, interval=1)
    full = tmp_path / 'full'
    _runner(full, 'e-full', cfg, checkpoint=ckpt).train()
    part = tmp_path / 'part'
    # 6 batches an epoch: stop at iteration 9 (mid epoch 2), resume from
    # epoch_1.pth, written when epoch 1 ended.
    with pytest.raises(Interrupt):
        _runner(part, 'e-part', cfg, checkpoint=ckpt,
                hooks=[InterruptAt(9)]).train()
    assert not (part / 'epoch_2.pth').exists()
    resumed = _runner(part, 'e-resumed', cfg, checkpoint=ckpt, resume=True)
    resumed.train()
    for x, y in zip(_final(full, 3, 'epoch'), _final(part, 3, 'epoch')):
        assert _same(x, y)


def _batches(num_workers, skip=0, epoch=1):
    ds = NoisyDataset(20)
    loader = DataLoader(ds, batch_size=4, shuffle=False,
                        num_workers=num_workers)
    wrapper = ResumableBatchSampler(loader.batch_sampler,
                                    lambda e, b: batch_seed(5, 0, e, b))
    object.__setattr__(loader, 'batch_sampler', wrapper)
    ds.__getitems__ = SeededFetch(ds)
    wrapper.set_position(epoch, skip)
    with preserved_rng():  # as the loops do: iter() draws a base seed
        iterator = iter(loader)
    return [b['inputs'] for b in iterator]


def test_batch_randomness_independent_of_workers_and_restarts():
    torch.manual_seed(0)
    main = _batches(0)
    # Loading drew nothing from the main process's random state.
    state = torch.get_rng_state()
    _batches(0)
    assert torch.equal(state, torch.get_rng_state())
    workers = _batches(2)
    assert all(torch.equal(x, y) for x, y in zip(main, workers))
    resumed = _batches(2, skip=3)
    assert len(resumed) == len(main) - 3
    assert all(torch.equal(x, y) for x, y in zip(main[3:], resumed))
    other_epoch = _batches(0, epoch=2)
    assert not torch.equal(main[0], other_epoch[0])
