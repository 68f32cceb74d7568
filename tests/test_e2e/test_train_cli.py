"""tools/train.py and tools/test.py end to end, in real processes."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

# A small, fast model and data for process-level tests.
SMALL = [
    'shapes_generator.train_quads=24', 'shapes_generator.val_quads=8',
    'shapes_generator.test_quads=8', 'shapes_generator.control_quads=120',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0', '~train_dataloader.persistent_workers',
    '~val_dataloader.persistent_workers', 'default_hooks.logger.interval=10',
]


def run_tool(tool: str, *args: str, cwd: Path, env=None, check=True,
             timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run([PY, str(ROOT / 'tools' / tool), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f'{tool} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Train 120 iterations on the image-control split (answerable from the
    image alone): accuracy must go from chance (0.5) to >= 0.8."""
    cwd = tmp_path_factory.mktemp('train')
    run_tool('train.py', 'cls_shapes', 'data_subset=image_control',
             f'data_root={cwd}/data', *SMALL, 'train_cfg.max_iters=120',
             'train_cfg.val_interval=60', 'default_hooks.checkpoint.interval=60',
             'param_scheduler.0.end=20', 'param_scheduler.1.begin=20',
             '--work-dir', str(cwd / 'wd'), cwd=cwd)
    return cwd


def test_short_training_learns(trained):
    metrics = json.loads((trained / 'wd' / 'test_metrics.json').read_text())
    assert metrics['accuracy'] >= 0.8, metrics
    assert (trained / 'wd' / 'config.yaml').is_file()
    assert (trained / 'wd' / 'iter_120.pth').is_file()
    assert list((trained / 'wd').glob('best_accuracy_iter_*.pth'))


def test_checkpoint_is_plain_data(trained):
    ckpt = torch.load(trained / 'wd' / 'iter_120.pth', weights_only=True)
    tok = ckpt['meta']['tokenizer']
    assert isinstance(tok['vocab'], list) and 'red' in tok['vocab']
    assert ckpt['meta']['mmfusion']['env']['torch'] == torch.__version__
    json.dumps(ckpt['meta'])  # plain data throughout


def test_test_tool_writes_flat_json(trained):
    out = trained / 'metrics.json'
    run_tool('test.py', str(trained / 'wd' / 'config.yaml'),
             str(trained / 'wd' / 'iter_120.pth'), '--json-out', str(out),
             cwd=trained)
    metrics = json.loads(out.read_text())
    for key in ('accuracy', 'f1_macro', 'auroc'):
        assert key in metrics
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in metrics.values())
    assert metrics['accuracy'] >= 0.8


def test_resume_continues_from_last_checkpoint(trained):
    proc = run_tool('train.py', str(trained / 'wd' / 'config.yaml'),
                    'train_cfg.max_iters=140', 'param_scheduler.1.end=140',
                    '--resume', cwd=trained)
    log = proc.stdout + proc.stderr
    assert re.search(r'resumed .*iter_120\.pth|Load checkpoint from .*'
                     r'iter_120\.pth|resumed epoch: \d+, iter: 120', log,
                     re.IGNORECASE), log[-3000:]
    assert 'Iter(train) [130/140]' in log
    assert (trained / 'wd' / 'iter_140.pth').is_file()


def test_cfg_job_prints_and_exits(tmp_path):
    proc = run_tool('train.py', 'cls_shapes', 'model/fusion=concat',
                    '--cfg', 'job', '--resolve', cwd=tmp_path)
    assert 'type: ConcatFusion' in proc.stdout
    assert '${' not in proc.stdout
    assert not (tmp_path / 'work_dirs').exists()


def test_bad_key_fails_before_building(tmp_path):
    proc = run_tool('train.py', 'cls_shapes', 'model.fusion.num_blokcs=2',
                    cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert 'model.fusion.num_blocks' in proc.stderr
    assert not (tmp_path / 'work_dirs').exists()


def test_amp_on_cpu_uses_bfloat16_autocast(tmp_path):
    proc = run_tool('train.py', 'cls_shapes', f'data_root={tmp_path}/data',
                    *SMALL, 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                    'param_scheduler=[]', 'test_after_train=false', '--amp',
                    '--work-dir', str(tmp_path / 'wd'), cwd=tmp_path)
    assert 'bfloat16 autocast' in proc.stdout + proc.stderr
    assert (tmp_path / 'wd' / 'iter_4.pth').is_file()


def test_sweep_runs_jobs_in_own_processes(tmp_path):
    proc = run_tool('train.py', 'cls_shapes', '-m',
                    'model/fusion=concat,film', f'data_root={tmp_path}/data',
                    *SMALL, 'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
                    'param_scheduler=[]', '--work-dir', str(tmp_path / 'exp'),
                    cwd=tmp_path, timeout=400)
    multirun = tmp_path / 'exp' / 'multirun'
    jobs = sorted(p for p in multirun.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == ['0_model.fusion=concat',
                                      '1_model.fusion=film']
    for job in jobs:
        assert (job / 'test_metrics.json').is_file()
        assert list(job.glob('*/*.log'))  # each job has its own log
    summary = json.loads((multirun / 'summary.json').read_text())
    assert [r['overrides'].split()[0] for r in summary] == [
        'model/fusion=concat', 'model/fusion=film']
    assert all('accuracy' in r['metrics'] for r in summary)
    # Model stats per job (model_stats.json), in the summary and the CSV.
    for job, row in zip(jobs, summary):
        stats = json.loads((job / 'model_stats.json').read_text())
        assert stats['flops_batch_size'] > 0
        assert row['stats'] == {k: stats[k] for k in
                                ('params', 'flops', 'time_per_iter')}
        assert row['stats']['params'] > 0 and row['stats']['flops'] > 0
        assert 0 < row['stats']['time_per_iter'] < 60
        assert stats['flops_per_module']['MultimodalClassifier.fusion'] > 0
    csv = (multirun / 'summary.csv').read_text().splitlines()
    assert len(csv) == 3 and 'accuracy' in csv[0]
    assert csv[0].split(',')[-4:] == ['params', 'flops', 'time_per_iter',
                                      'work_dir']
    assert 'model/fusion=film' in proc.stdout
    # The ablation table reads the summary: one row per option.
    from mmfusion.analysis.ablation import ablation_table
    table = ablation_table(summary)
    assert '`model/fusion=concat` | 1 |' in table
    assert '`model/fusion=film` | 1 |' in table


def test_sweep_refused_with_launcher(tmp_path):
    proc = run_tool('train.py', 'cls_shapes', '-m', 'model/fusion=concat,film',
                    '--launcher', 'pytorch', cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert 'launcher' in proc.stderr


def test_show_dir_writes_prediction_pictures(trained):
    out = trained / 'show'
    run_tool('test.py', str(trained / 'wd' / 'config.yaml'),
             str(trained / 'wd' / 'iter_120.pth'), '--show-dir', str(out),
             cwd=trained)
    pictures = sorted(out.glob('*.png'))
    assert 0 < len(pictures) <= 50
    from PIL import Image
    assert Image.open(pictures[0]).size[0] >= 256
