"""TensorBoard as a runtime option, and tools/analysis/plot_curves.py."""
from __future__ import annotations

import json

import pytest

from mmfusion.analysis import curves as C
from mmfusion.cli import plot_curves


def test_tensorboard_event_file_reads_back(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    _, wd = tiny_run
    events = list(wd.glob('*/vis_data/events.out.tfevents.*'))
    assert len(events) == 1, events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()['scalars']
    assert {'loss', 'lr', 'accuracy'} <= set(tags), tags
    loss = acc.Scalars('loss')
    assert [e.step for e in loss] == [1, 2, 3, 4]  # logger interval 1
    assert all(e.value > 0 for e in loss)
    # Validation metrics at the iteration they were computed (the runtime's
    # log_metric_by_epoch: false), not at epoch 0.
    assert [e.step for e in acc.Scalars('accuracy')] == [2, 4]
    # The same values as the json log.
    records = C.load_records(str(wd))
    assert [r['loss'] for r in records if 'loss' in r] == pytest.approx(
        [e.value for e in loss], rel=1e-5)


def write_run(folder, lines, stamp='20260101_000000'):
    path = folder / stamp / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(x) + '\n' for x in lines))


def train(step, loss):
    return {'lr': 1e-3, 'loss': loss, 'time': 0.1, 'iter': step,
            'step': step}


def test_curves_from_several_runs_and_old_style_val_steps(tmp_path):
    # run a: val logged at step 0 (mmengine's log_metric_by_epoch default
    # in an iteration-based run), then resumed into a second timestamp.
    a = tmp_path / 'sweep' / 'multirun' / '0_lr=1'
    write_run(a, [train(10, 0.7), train(20, 0.6),
                  {'accuracy': 0.6, 'accuracy/colour': 0.7, 'step': 0}])
    write_run(a, [train(30, 0.5), train(40, 0.4),
                  {'accuracy': 0.8, 'accuracy/colour': 0.9, 'step': 40},
                  'not json'], stamp='20260101_010000')
    (a / '20260101_010000' / 'vis_data' / 'scalars.json').write_text(
        (a / '20260101_010000' / 'vis_data' / 'scalars.json').read_text()
        + '{"cut": \n')
    b = tmp_path / 'sweep' / 'multirun' / '1_lr=2'
    write_run(b, [train(10, 0.9), train(20, 0.8), {'accuracy': 0.5,
                                                   'step': 20}])
    runs = C.expand_runs([str(tmp_path / 'sweep')])
    assert [r.split('/')[-1] for r in runs] == ['0_lr=1', '1_lr=2']
    data = C.collect_curves([str(tmp_path / 'sweep')],
                            ['loss', 'accuracy*', 'missing'])
    assert list(data) == ['loss', 'accuracy', 'accuracy/colour']
    assert data['loss']['0_lr=1'] == [(10, 0.7), (20, 0.6), (30, 0.5),
                                      (40, 0.4)]
    assert data['accuracy']['0_lr=1'] == [(20, 0.6), (40, 0.8)]
    assert data['accuracy']['1_lr=2'] == [(20, 0.5)]
    assert '1_lr=2' not in data['accuracy/colour']
    with pytest.raises(KeyError, match='logged keys: accuracy'):
        C.collect_curves([str(b)], ['f1'])
    with pytest.raises(FileNotFoundError, match='no mmengine scalar logs'):
        C.expand_runs([str(tmp_path / 'nothing')])


def test_plot_curves_cli(tiny_run, tmp_path, capsys):
    _, wd = tiny_run
    other = tmp_path / 'other'
    write_run(other, [train(2, 0.9), train(4, 0.5),
                      {'accuracy': 0.75, 'step': 4}])
    out = tmp_path / 'curves.png'
    plot_curves.main([str(wd), str(other), '--keys', 'loss', 'accuracy',
                      '--out', str(out)])
    assert out.read_bytes()[:4] == b'\x89PNG'
    printed = capsys.readouterr().out
    assert 'loss, accuracy for 2 run(s)' in printed
    from PIL import Image
    assert Image.open(out).size[0] >= 1000  # two panels side by side
    with pytest.raises(SystemExit) as exc:
        plot_curves.main([str(wd), '--keys', 'nope', '--out', str(out)])
    assert exc.value.code == 2
    assert 'logged keys' in capsys.readouterr().err
