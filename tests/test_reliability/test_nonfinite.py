"""A NaN/Inf loss stops the run (naming the iteration and the loss terms)
or skips the step; a checkpoint with non-finite weights is never written."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from torch import nn

from mmfusion.engine.hooks import NonFiniteLossError, NonFiniteLossHook
from mmfusion.engine.runner import MMFusionRunner, NonFiniteWeightsError


class Tiny(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs=None, data_samples=None, mode='loss'):
        return {}


def _setup(action):
    model = Tiny()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0))
    runner = SimpleNamespace(model=model, optim_wrapper=wrapper, iter=41,
                             logger=logging.getLogger('nonfinite-test'))
    hook = NonFiniteLossHook(action=action, max_skips=1)
    hook.before_train(runner)
    return model, wrapper, runner, hook


def _losses(model, bad: bool):
    out = model.fc(torch.ones(1, 2)).sum()
    return {'loss_cls': out * (float('nan') if bad else 1.0),
            'loss_aux': out * 0.5}


def test_raise_names_iteration_and_terms():
    model, wrapper, _, _ = _setup('raise')
    before = model.fc.weight.detach().clone()
    with pytest.raises(NonFiniteLossError) as info:
        loss, _ = model.parse_losses(_losses(model, bad=True))
    msg = str(info.value)
    assert 'iteration 42' in msg
    assert 'loss_cls=nan <- not finite' in msg and 'loss_aux=' in msg
    assert torch.equal(before, model.fc.weight)  # no step was taken


def test_skip_drops_the_step_then_gives_up():
    model, wrapper, runner, hook = _setup('skip')
    before = model.fc.weight.detach().clone()
    loss, log_vars = model.parse_losses(_losses(model, bad=True))
    assert torch.isfinite(loss)
    wrapper.update_params(loss)
    assert torch.equal(before, model.fc.weight)  # skipped
    assert hook.skipped == 1
    loss, _ = model.parse_losses(_losses(model, bad=False))
    wrapper.update_params(loss)  # a good step is taken
    assert not torch.equal(before, model.fc.weight)
    with pytest.raises(NonFiniteLossError, match='after 1 skipped steps'):
        model.parse_losses(_losses(model, bad=True))  # max_skips=1


def test_hook_action_is_checked():
    with pytest.raises(ValueError, match="'raise' or 'skip'"):
        NonFiniteLossHook(action='ignore')


def test_no_checkpoint_with_nonfinite_weights(tmp_path):
    model = Tiny()
    runner = MMFusionRunner(model=model, work_dir=str(tmp_path),
                            experiment_name='nonfinite-weights',
                            default_scope='mmfusion', log_level='WARNING')
    with torch.no_grad():
        model.fc.weight[0, 1] = float('inf')
    with pytest.raises(NonFiniteWeightsError, match=r'fc\.weight') as info:
        runner.save_checkpoint(str(tmp_path), 'iter_5.pth',
                               save_optimizer=False,
                               save_param_scheduler=False)
    assert 'earlier checkpoints are kept' in str(info.value)
    assert not list(tmp_path.glob('*.pth'))
    assert not list(tmp_path.glob('.*.tmp'))
