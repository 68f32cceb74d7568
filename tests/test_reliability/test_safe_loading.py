"""Every checkpoint entry point refuses a file whose unpickling would run
code, names the offending globals, and runs none of it."""
from __future__ import annotations

import collections
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from mmfusion.utils import checkpoint as ck


class Payload:
    """Unpickling this runs ``exec``: it creates the file ``target``."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')", ))


def _evil(path: Path, target: Path, raw: bool = False) -> Path:
    obj = {'state_dict': collections.OrderedDict(w=torch.zeros(2)),
           'meta': {'iter': 1}, 'payload': Payload(target)}
    if raw:
        with open(path, 'wb') as f:
            pickle.dump(obj, f)
    else:
        torch.save(obj, path)
    return path


@pytest.fixture()
def evil(tmp_path):
    target = tmp_path / 'pwned'
    return _evil(tmp_path / 'evil.pth', target), target


def test_the_payload_is_real(tmp_path):
    # What the safe loader prevents: an ordinary load runs the payload.
    target = tmp_path / 'ran'
    path = _evil(tmp_path / 'real.pth', target)
    torch.load(path, weights_only=False)
    assert target.read_text() == 'pwned'


@pytest.mark.parametrize('raw', [False, True])
def test_api_refuses_and_names_globals(tmp_path, raw):
    target = tmp_path / 'pwned'
    path = _evil(tmp_path / 'evil.pth', target, raw=raw)
    assert 'builtins.exec' in ck.find_unsafe_globals(str(path))
    with pytest.raises(ck.UnsafeCheckpointError) as info:
        ck.safe_load_checkpoint(str(path))
    assert 'builtins.exec' in str(info.value)
    assert '--unsafe-load' in str(info.value)
    with pytest.raises(ck.UnsafeCheckpointError):
        ck.check_checkpoint_file(str(path))
    assert not target.exists()


def test_mmengine_loaders_refuse(evil):
    from mmengine.runner import load_checkpoint
    from mmengine.runner.checkpoint import CheckpointLoader
    path, target = evil
    ck.install_mmengine_loader()
    with pytest.raises(ck.UnsafeCheckpointError):
        load_checkpoint(nn.Linear(2, 1), str(path))
    with pytest.raises(ck.UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(path))
    assert not target.exists()


def test_runner_load_checkpoint_refuses(evil, tmp_path):
    from mmengine.model import BaseModel

    from mmfusion.engine.runner import MMFusionRunner

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = nn.Linear(2, 1)

        def forward(self, *a, **k):
            return {}

    path, target = evil
    runner = MMFusionRunner(model=Tiny(), work_dir=str(tmp_path / 'wd'),
                            experiment_name='safe-load-runner',
                            default_scope='mmfusion', log_level='WARNING')
    with pytest.raises(ck.UnsafeCheckpointError):
        runner.load_checkpoint(str(path))
    with pytest.raises(ck.UnsafeCheckpointError):
        runner.resume(str(path))
    assert not target.exists()


@pytest.mark.parametrize('tool, argv', [
    ('train', ['cls_shapes', '--resume', '{ckpt}']),
    ('train', ['cls_shapes', '--load-from', '{ckpt}']),
    ('train', ['cls_shapes', 'load_from={ckpt}']),
    ('test', ['cls_shapes', '{ckpt}']),
])
def test_cli_entry_points_refuse(evil, tmp_path, capsys, monkeypatch, tool,
                                 argv):
    import importlib
    path, target = evil
    monkeypatch.chdir(tmp_path)
    main = importlib.import_module(f'mmfusion.cli.{tool}').main
    argv = [a.format(ckpt=path) for a in argv] + [
        '--work-dir', str(tmp_path / 'wd'), f'data_root={tmp_path}/data']
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'refused to load checkpoint' in err and 'builtins.exec' in err
    assert not target.exists()
    # Refused before anything was built: no data generated, no work dir.
    assert not (tmp_path / 'data').exists()


def test_unsafe_load_opts_out(evil):
    from mmfusion.cli.test import parse_args as test_args
    from mmfusion.cli.train import parse_args as train_args
    assert train_args(['cls_shapes', '--unsafe-load']).unsafe_load
    assert not train_args(['cls_shapes']).unsafe_load
    assert test_args(['cls_shapes', 'x.pth', '--unsafe-load']).unsafe_load
    path, target = evil
    ck.set_unsafe_load(True)
    try:
        ck.check_checkpoint_file(str(path))  # no longer refused
    finally:
        ck.set_unsafe_load(False)
    assert not target.exists()
    ck.safe_load_checkpoint(str(path), unsafe=True)  # a trusted file
    assert target.exists()


def test_mmfusion_checkpoints_need_nothing_else(tmp_path):
    """What mmfusion writes (weights of several dtypes, AdamW state,
    scheduler state, random states, plain meta) is within the list."""
    from mmfusion.utils.rng import get_rng_state
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = tmp_path / 'ok.pth'
    ck.atomic_save({
        'meta': {'iter': 3, 'tokenizer': {'vocab': ['<pad>', '<unk>']},
                 'dataset_meta': {'classes': ('no', 'yes')}},
        'state_dict': collections.OrderedDict(
            (k, v) for k, v in model.state_dict().items()),
        'extra': {'bf16': torch.ones(2, dtype=torch.bfloat16),
                  'half': torch.ones(2, dtype=torch.float16),
                  'bool': torch.ones(2, dtype=torch.bool)},
        'optimizer': opt.state_dict(),
        'resume_state': {'loop': {'iter': 3}, 'rng': [get_rng_state()]},
    }, str(path))
    assert ck.find_unsafe_globals(str(path)) == []
    allowed = {f'{g.__module__}.{g.__name__}' for g in ck.SAFE_GLOBALS}
    assert set(ck.pickle_globals(ck._pickle_bytes(str(path)))) <= allowed
    assert 'builtins.getattr' not in allowed
    loaded = ck.safe_load_checkpoint(str(path))
    assert loaded['meta']['dataset_meta']['classes'] == ('no', 'yes')
    assert loaded['extra']['bf16'].dtype == torch.bfloat16


# ---------------------------------------------- config text in checkpoints
CODE = "a = __import__('os').system('touch {target}')"


def _meta_code_checkpoint(path: Path, target: Path, key: str) -> Path:
    torch.save({'state_dict': collections.OrderedDict(w=torch.zeros(1)),
                'meta': {'epoch': 0, 'iter': 2,
                         key: CODE.format(target=target)},
                'message_hub': {'log_scalars': {}, 'runtime_info': {},
                                'resumed_keys': {}}}, path)
    return path


def test_the_config_payload_is_real(tmp_path):
    from mmengine.config import Config
    target = tmp_path / 'ran'
    Config.fromstring(CODE.format(target=target), file_format='.py')
    assert target.exists()  # what mmengine would do with meta['config']


def test_config_text_is_read_as_data(tmp_path):
    target = tmp_path / 'pwned'
    ok = ck.config_from_text("a = dict(b=(1, -2.5), c=[None, 'x'])\n"
                             "d = {'e': True}")
    assert ok == {'a': {'b': (1, -2.5), 'c': [None, 'x']}, 'd': {'e': True}}
    for text in (CODE.format(target=target), 'import os',
                 "a = open('x')", 'a = b', 'a = dict(**x)'):
        with pytest.raises(ck.UnsafeCheckpointError, match='Nothing in it '
                           'was run'):
            ck.config_from_text(text)
    assert not target.exists()


def test_resume_ignores_meta_config_code(tmp_path):
    """mmengine's Runner.resume runs meta['config'] as a Python config;
    mmfusion's drops it."""
    import random

    from mmengine.model import BaseModel

    from mmfusion.engine.runner import MMFusionRunner

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, *a, **k):
            return {}

    target = tmp_path / 'pwned'
    path = _meta_code_checkpoint(tmp_path / 'c.pth', target, 'config')
    data = [{'inputs': torch.zeros(1)} for _ in range(4)]
    runner = MMFusionRunner(
        model=Tiny(), work_dir=str(tmp_path / 'wd'),
        experiment_name=f'meta-config-{random.random()}',
        default_scope='mmfusion', log_level='WARNING',
        train_dataloader=dict(dataset=data, batch_size=2,
                              sampler=dict(type='DefaultSampler')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=4),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)))
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.resume(str(path))
    assert runner.iter == 2
    assert not target.exists()


def test_inferencer_reads_checkpoint_config_as_data(tmp_path):
    inferencer = pytest.importorskip('mmfusion.apis.inferencer')
    target = tmp_path / 'pwned'
    path = _meta_code_checkpoint(tmp_path / 'c.pth', target, 'cfg')
    with pytest.raises(ck.UnsafeCheckpointError):
        inferencer.MultimodalInferencer(model=None, weights=str(path))
    assert not target.exists()
    # and the weights themselves go through the safe loader
    evil_path = _evil(tmp_path / 'evil.pth', target)
    with pytest.raises(ck.UnsafeCheckpointError):
        inferencer.read_checkpoint(str(evil_path))
    assert not target.exists()
