"""The ablation table on fabricated sweep summaries."""
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from mmfusion.analysis.ablation import (ablation_table, load_summaries,
                                        summarize_groups)
from mmfusion.analysis.model_stats import steady_time_per_iter

ROOT = Path(__file__).resolve().parents[2]

ACC = {'film': [0.97, 0.95, 0.96], 'concat': [0.80, 0.86, 0.83]}


def job(i, overrides, acc=None, status='ok', params=1000, flops=2.5e6,
        time=0.05):
    metrics = {} if acc is None else {
        'accuracy': acc, 'accuracy/colour': acc + 0.01,
        'accuracy/count': acc - 0.01, 'f1_macro': acc}
    return {'job': i, 'overrides': ' '.join(overrides),
            'override_list': list(overrides), 'work_dir': f'/wd/{i}',
            'status': status, 'metrics': metrics,
            'stats': {} if acc is None else {
                'params': params, 'flops': flops, 'time_per_iter': time}}


def fabricated():
    rows = []
    for fusion, accs in ACC.items():
        for seed, acc in enumerate(accs):
            rows.append(job(len(rows), [f'model/fusion={fusion}',
                                        'train_cfg.max_iters=100',
                                        f'randomness.seed={seed}'], acc,
                            params=2000 if fusion == 'film' else 1000,
                            time=0.04 + 0.01 * seed))
    rows.append(job(len(rows), ['model/fusion=concat',
                                'train_cfg.max_iters=100',
                                'randomness.seed=3'],
                    status='failed (exit 1, see sweep_job.log)'))
    return rows


def test_groups_mean_std_and_order():
    groups = summarize_groups(fabricated())
    assert [g['option'] for g in groups] == ['model/fusion=film',
                                             'model/fusion=concat']
    film, concat = groups
    assert film['n'] == 3 and concat['n'] == 3
    assert film['mean'] == pytest.approx(0.96)
    assert film['std'] == pytest.approx(0.01)  # sample std (n - 1)
    assert concat['std'] == pytest.approx(statistics.stdev(ACC['concat']))
    assert concat['std'] == pytest.approx(0.03)
    assert film['per_type'] == pytest.approx({'colour': 0.97,
                                              'count': 0.95})
    assert film['params'] == 2000 and concat['params'] == 1000
    assert film['time_per_iter'] == pytest.approx(0.05)
    assert len(concat['failed']) == 1 and not film['failed']


def test_markdown_table():
    table = ablation_table(fabricated())
    lines = table.splitlines()
    assert lines[0] == ('| option | seeds | accuracy (mean ± std) | colour '
                        '| count | params | FLOPs/sample | time/iter |')
    assert lines[2] == ('| `model/fusion=film` | 3 | 0.960 ± 0.010 | 0.970 '
                        '| 0.950 | 2 k | 2.5 M | 50.0 ms |')
    assert lines[3].startswith('| `model/fusion=concat` | 3 | 0.830 ± 0.030')
    assert 'randomness.seed=3' in table and 'failed (exit 1' in table


def test_one_seed_and_unimodal_rows_from_another_summary(tmp_path):
    blocks, baselines = tmp_path / 'a', tmp_path / 'b'
    blocks.mkdir()
    baselines.mkdir()
    (blocks / 'summary.json').write_text(json.dumps(fabricated()))
    (baselines / 'summary.json').write_text(json.dumps([
        job(0, ['model.modalities=[image]', 'train_cfg.max_iters=100',
                'randomness.seed=0'], 0.5),
        job(1, ['model.modalities=[text]', 'train_cfg.max_iters=100',
                'randomness.seed=0'], 0.52)]))
    rows = load_summaries([str(blocks), str(baselines / 'summary.json')])
    groups = summarize_groups(rows)
    assert [g['option'] for g in groups] == [
        'model/fusion=film', 'model/fusion=concat',
        'model.modalities=[text]', 'model.modalities=[image]']
    assert groups[-1]['n'] == 1 and groups[-1]['std'] is None
    assert '| `model.modalities=[image]` | 1 | 0.500 |' in ablation_table(rows)


def test_group_by_pools_other_keys():
    rows = [job(i, [f'model/fusion={f}', f'model.modalities={m}'], acc)
            for i, (f, m, acc) in enumerate([
                ('film', '[image,text]', 0.9), ('film', '[image]', 0.5),
                ('concat', '[image,text]', 0.8)])]
    by_all = summarize_groups(rows)
    assert [g['option'] for g in by_all] == [
        'model/fusion=film model.modalities=[image,text]',
        'model/fusion=concat model.modalities=[image,text]',
        'model/fusion=film model.modalities=[image]']
    by_fusion = summarize_groups(rows, group_by=['model/fusion'])
    assert [(g['option'], g['n']) for g in by_fusion] == [
        ('model/fusion=concat', 1), ('model/fusion=film', 2)]
    assert by_fusion[1]['mean'] == pytest.approx(0.7)


def test_old_summary_without_override_list():
    rows = fabricated()
    for r in rows:
        del r['override_list'], r['stats']
    table = ablation_table(rows)
    assert '| `model/fusion=film` | 3 | 0.960 ± 0.010 | 0.970 | 0.950 | - ' \
        '| - | - |' in table


def test_cli_writes_out_file(tmp_path):
    summary = tmp_path / 'summary.json'
    summary.write_text(json.dumps(fabricated()))
    out = tmp_path / 'table.md'
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'analysis' /
                             'ablation_table.py'), str(summary),
         '--group-by', 'model/fusion', '--out', str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == proc.stdout
    assert '`model/fusion=film` | 3 | 0.960 ± 0.010' in proc.stdout


def test_steady_time_per_iter():
    assert steady_time_per_iter([]) is None
    # First 10% dropped (warm-up), then the median (robust to the slow
    # iterations that carry a validation or a checkpoint).
    times = [5.0] * 2 + [0.1] * 15 + [3.0] * 3
    assert steady_time_per_iter(times) == pytest.approx(0.1)
    assert steady_time_per_iter([0.2, 0.4, 0.3]) == pytest.approx(0.3)


def test_run_ablation_covers_every_classification_block():
    """tools/analysis/run_ablation.sh sweeps every model/fusion option
    (a new block's config must be added to it), except the dense-only
    film_dense; trunk blocks and FiLM options do not overlap."""
    import re
    script = (ROOT / 'tools' / 'analysis' / 'run_ablation.sh').read_text()

    def default(var):
        m = re.search(r'^%s=\$\{%s:-([\w,]+)\}$' % (var, var), script, re.M)
        assert m, f'{var} default not found in run_ablation.sh'
        return m.group(1).split(',')

    blocks, film = default('BLOCKS'), default('FILM_OPTIONS')
    assert not set(blocks) & set(film)
    options = {p.stem for p in
               (ROOT / 'configs' / 'model' / 'fusion').glob('*.yaml')}
    assert set(blocks) | set(film) == options - {'film_dense'}
    assert {'image_only', 'text_only'} <= set(film)
