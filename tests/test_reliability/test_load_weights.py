"""Loading weights names missing and unexpected keys and shape mismatches,
and fails when the config asks for strict loading."""
from __future__ import annotations

import logging

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from torch import nn

from mmfusion.engine.runner import MMFusionRunner
from mmfusion.utils.checkpoint import WeightsMismatchError, load_weights


class Net(BaseModel):
    def __init__(self, out: int = 2):
        super().__init__()
        self.body = nn.Linear(4, 3)
        self.head = nn.Linear(3, out)

    def forward(self, *args, **kwargs):
        return {}


def _mismatched_state():
    state = Net(out=5).state_dict()  # head has the wrong shape
    state.pop('body.bias')           # missing
    state['extra.weight'] = torch.ones(1)  # unexpected
    return state


def test_report_names_every_difference(caplog):
    model = Net()
    before = model.head.weight.clone()
    with caplog.at_level(logging.WARNING):
        missing, unexpected, shapes = load_weights(
            model, _mismatched_state(), logger=logging.getLogger('lw'))
    assert missing == ['body.bias'] and unexpected == ['extra.weight']
    assert shapes == ['head.weight: checkpoint (5, 3) vs model (2, 3)',
                      'head.bias: checkpoint (5,) vs model (2,)']
    text = caplog.text
    for name in ('body.bias', 'extra.weight', 'head.weight', '(5, 3)'):
        assert name in text
    assert torch.equal(model.head.weight, before)  # mismatched: not loaded


def test_module_prefix_is_stripped():
    source = Net()
    state = {f'module.{k}': v for k, v in source.state_dict().items()}
    model = Net()
    assert load_weights(model, state) == ([], [], [])
    assert torch.equal(model.body.weight, source.body.weight)


def test_strict_fails_before_loading_anything():
    model = Net()
    before = model.body.weight.clone()
    with pytest.raises(WeightsMismatchError) as info:
        load_weights(model, _mismatched_state(), strict=True)
    assert 'body.bias' in str(info.value) and 'load_strict' in str(info.value)
    assert torch.equal(model.body.weight, before)


@pytest.mark.parametrize('strict', [False, True])
def test_runner_follows_load_strict(tmp_path, strict):
    path = tmp_path / 'w.pth'
    torch.save({'state_dict': _mismatched_state(), 'meta': {}}, path)
    runner = MMFusionRunner(model=Net(), work_dir=str(tmp_path / 'wd'),
                            experiment_name=f'load-strict-{strict}',
                            default_scope='mmfusion', log_level='WARNING',
                            cfg=Config(dict(load_strict=strict)))
    if strict:
        with pytest.raises(WeightsMismatchError, match='head.weight'):
            runner.load_checkpoint(str(path))
    else:
        runner.load_checkpoint(str(path))
