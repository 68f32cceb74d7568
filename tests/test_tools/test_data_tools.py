"""tools/browse_dataset.py and tools/analysis/get_flops.py (in-process)."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from mmfusion.cli import browse_dataset, get_flops


def test_browse_dataset_writes_pictures_with_text(tiny_data_args, tmp_path,
                                                  capsys):
    out = tmp_path / 'browse'
    browse_dataset.main(['cls_shapes', *tiny_data_args, '--split', 'val',
                         '--num', '3', '--out-dir', str(out)])
    pictures = sorted(out.glob('*.png'))
    assert [p.name[:6] for p in pictures] == ['00000_', '00001_', '00002_']
    w, h = Image.open(pictures[0]).size
    assert w == 256 and h > 256  # enlarged 64 px image + the text panel
    assert '3 pictures of the val split (8 samples)' in \
        capsys.readouterr().out
    # --shuffle picks other samples, reproducibly; --num 0 is all.
    browse_dataset.main(['cls_shapes', *tiny_data_args, '--split', 'val',
                         '--num', '0', '--shuffle', '--out-dir',
                         str(tmp_path / 'all')])
    assert len(list((tmp_path / 'all').glob('*.png'))) == 8


def test_get_flops_counts_per_sample(tiny_run, tiny_data_args, tmp_path,
                                    capsys):
    _, wd = tiny_run
    out = tmp_path / 'flops.json'
    get_flops.main(['cls_shapes', 'model/fusion=concat', *tiny_data_args,
                    '--batch-size', '4', '--num-batches', '2', '--json-out',
                    str(out)])
    result = json.loads(out.read_text())
    assert result['samples'] == 8
    assert result['flops'] > 0 and result['params'] > 0
    parts = result['per_module']
    assert parts['MultimodalClassifier'] == pytest.approx(result['flops'])
    assert {'MultimodalClassifier.image_encoder', 'MultimodalClassifier.fusion',
            'MultimodalClassifier.head'} <= set(parts)
    assert 'FLOPs per sample' in capsys.readouterr().out
    # The trained checkpoint's model (cross-attention) with its tokenizer;
    # the count matches mmfusion.analysis.flops on the same batch.
    get_flops.main([str(wd), '--checkpoint', str(wd / 'iter_4.pth'),
                    '--batch-size', '8', '--json-out', str(out)])
    ckpt_result = json.loads(out.read_text())
    assert ckpt_result['flops'] > 0
    assert 'MultimodalClassifier.fusion.layers.0' in ckpt_result['per_module']


def test_get_flops_bad_override_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        get_flops.main(['cls_shapes', 'model.fusion.num_blokcs=2'])
    assert exc.value.code == 2
    assert 'num_blocks' in capsys.readouterr().err
