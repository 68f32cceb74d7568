"""tools/train.py and tools/test.py take the flags `mim train`/`mim test`
pass (and torch.distributed.launch's --local-rank)."""
from __future__ import annotations

import pytest

from mmfusion.cli import test as test_cli
from mmfusion.cli import train as train_cli
from mmfusion.cli.common import apply_mim_compat_args


@pytest.mark.parametrize('argv', [
    # mim train mmfusion CONFIG --gpus 1 (launcher none)
    ['cfg.yaml', '--gpus', '1', '--launcher', 'none'],
    # mim train with no GPU
    ['cfg.yaml', '--device', 'cpu', '--launcher', 'none'],
    # mim --launcher pytorch: torch.distributed.launch adds --local-rank=R
    ['cfg.yaml', '--local-rank=1', '--launcher', 'pytorch'],
    ['cfg.yaml', '--local_rank', '1', '--launcher', 'pytorch',
     'model/fusion=concat'],
])
def test_train_and_test_accept_mim_flags(argv):
    args = train_cli.parse_args(argv)
    assert args.config == 'cfg.yaml'
    targs = test_cli.parse_args(argv[:1] + ['ckpt.pth'] + argv[1:])
    assert targs.checkpoint == 'ckpt.pth'
    if 'model/fusion=concat' in argv:
        assert args.overrides == targs.overrides == ['model/fusion=concat']
    if any('local' in a for a in argv):
        assert args.local_rank == targs.local_rank == 1


def test_apply_mim_flags(monkeypatch, capsys):
    # setenv first so that monkeypatch restores the variable's absence:
    # a LOCAL_RANK leaked into later tests' subprocesses makes them wait
    # for a process group that never forms.
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.delenv('LOCAL_RANK')
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0')
    apply_mim_compat_args(train_cli.parse_args(
        ['c.yaml', '--device', 'cpu', '--local-rank=3']))
    import os
    assert os.environ['CUDA_VISIBLE_DEVICES'] == ''
    assert os.environ['LOCAL_RANK'] == '3'
    apply_mim_compat_args(train_cli.parse_args(['c.yaml', '--gpus', '4']))
    assert 'dist_train.sh CONFIG 4' in capsys.readouterr().err
