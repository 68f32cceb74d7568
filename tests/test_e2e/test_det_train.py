"""tools/train.py and tools/test.py on the detection experiment, in real
processes: a short training on a few images learns to find what the
phrases describe in those images, and --show-dir draws the boxes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_train_cli import run_tool

# Two quads: four images, eight (image, phrase) samples; the test split is
# the training split ("those images").
FEW = [
    'shapes_generator.train_quads=2', 'shapes_generator.val_quads=1',
    'shapes_generator.test_quads=1', 'shapes_generator.control_quads=1',
    'test_dataloader.dataset.split=train', 'train_dataloader.batch_size=8',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0', '~train_dataloader.persistent_workers',
    '~val_dataloader.persistent_workers', 'default_hooks.logger.interval=20',
    'train_cfg.max_iters=60', 'train_cfg.val_interval=1000',
    'param_scheduler.0.end=10', 'param_scheduler.1.begin=10',
    # One thread: quicker than two when other processes share the cores.
    'env_cfg.torch_num_threads=1',
]


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp('det_train')
    run_tool('train.py', 'det_shapes', f'data_root={cwd}/data', *FEW,
             '--work-dir', str(cwd / 'wd'), cwd=cwd)
    return cwd


def test_short_training_finds_the_phrases_targets(trained):
    metrics = json.loads((trained / 'wd' / 'test_metrics.json').read_text())
    assert set(metrics) == {'coco/bbox_mAP', 'coco/bbox_mAP_50',
                            'coco/bbox_mAP_75'}
    assert metrics['coco/bbox_mAP_50'] >= 0.5, metrics
    assert (trained / 'wd' / 'iter_60.pth').is_file()


def test_test_tool_json_and_pictures(trained):
    out = trained / 'metrics.json'
    show = trained / 'show'
    run_tool('test.py', str(trained / 'wd' / 'config.yaml'),
             str(trained / 'wd' / 'iter_60.pth'), '--json-out', str(out),
             '--show-dir', str(show), cwd=trained)
    metrics = json.loads(out.read_text())
    assert set(metrics) == {'coco/bbox_mAP', 'coco/bbox_mAP_50',
                            'coco/bbox_mAP_75'}
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in metrics.values())
    pictures = sorted(show.glob('*.png'))
    assert len(pictures) == 8
    import mmcv
    img = mmcv.imread(str(pictures[0]))
    assert img.shape[0] > 256 and img.shape[1] >= 2 * 256  # truth | pred
