"""MultimodalInferencer and tools/infer.py on a tiny trained checkpoint."""
from __future__ import annotations

import json

import mmcv
import numpy as np
import pytest

from mmfusion.apis import MultimodalInferencer, sample_to_prediction
from mmfusion.cli import infer as infer_cli


@pytest.fixture(scope='module')
def inferencer(tiny_run):
    _, wd = tiny_run
    return MultimodalInferencer(str(wd), str(wd / 'iter_4.pth'),
                                device='cpu')


def check_cls(pred, text):
    assert pred['task'] == 'classification'
    assert pred['classes'] == ['no', 'yes']
    assert len(pred['scores']) == 2
    assert sum(pred['scores']) == pytest.approx(1.0, abs=1e-4)
    assert pred['pred_class'] == ['no', 'yes'][pred['pred_label']]
    assert pred['pred_score'] == pytest.approx(max(pred['scores']))
    assert pred['text'] == text


def test_one_pair_restores_tokenizer_and_classes(inferencer, tiny_images):
    # The tokenizer came from the checkpoint: known words keep their ids,
    # words never seen in training become <unk> and still work.
    tok = inferencer.model.data_preprocessor.tokenizer
    assert tok.is_fitted and 'red' in tok.vocab
    text = 'is the zorblax red?'
    out = inferencer((str(tiny_images[0]), text))
    assert out['visualization'] is None
    (pred,) = out['predictions']
    check_cls(pred, text)
    assert pred['img_path'] == str(tiny_images[0])
    assert pred['tokens'] == ['is', 'the', 'zorblax', 'red', '?']
    assert pred['unknown_tokens'] == ['zorblax']
    # Cross-attention: the text's attention over the image positions.
    grid = np.asarray(pred['attention_map'])
    assert grid.ndim == 2 and grid.shape[0] * grid.shape[1] > 1
    assert np.isfinite(grid).all()


def test_many_inputs_arrays_batches_and_absent_modalities(inferencer,
                                                          tiny_images):
    paths = [str(p) for p in tiny_images]
    bgr = mmcv.imread(paths[1])
    out = inferencer([(paths[0], 'is the circle red?'), (bgr, 'is it blue?'),
                      {'img': paths[2], 'text': None},
                      (None, 'is there a square?')], batch_size=3,
                     return_vis=True)
    preds = out['predictions']
    assert [p['text'] for p in preds] == ['is the circle red?', 'is it blue?',
                                         None, 'is there a square?']
    for p in preds:
        assert p['task'] == 'classification'
    assert preds[1]['img_path'] is None
    assert len(out['visualization']) == 4
    assert all(v.ndim == 3 and v.shape[1] >= 256 for v in out['visualization'])
    # The same pair alone or in a batch: the same scores (batching pads
    # images and texts, which the model masks).
    alone = inferencer((bgr, 'is it blue?'))['predictions'][0]
    assert alone['scores'] == pytest.approx(preds[1]['scores'], abs=1e-4)
    # One text for several images, and data samples on request.
    samples = inferencer(paths[:2], texts='is the cube green?',
                         return_datasamples=True)['predictions']
    assert len(samples) == 2 and samples[0].pred_score.shape == (2,)
    assert samples[0].attention.dim() == 3  # (heads, L_text, H * W)
    assert sample_to_prediction(samples[0], ['no', 'yes'])['pred_class'] in (
        'no', 'yes')


def test_out_dir_writes_pictures_and_predictions(inferencer, tiny_images,
                                                 tmp_path):
    out = inferencer((str(tiny_images[0]), 'is the circle red?'),
                     out_dir=str(tmp_path), no_save_pred=False)
    stem = tiny_images[0].stem
    pic = tmp_path / 'vis' / f'{stem}.png'
    saved = json.loads((tmp_path / 'preds' / f'{stem}.json').read_text())
    assert saved['pred_class'] == out['predictions'][0]['pred_class']
    from PIL import Image
    w, h = Image.open(pic).size
    assert w == 256 * 2 + 4  # image | attention heat-map
    assert h > 256  # + the text panel
    inferencer((str(tiny_images[0]), 'red?'), out_dir=str(tmp_path / 'n'),
               draw_attention=False)
    assert Image.open(tmp_path / 'n' / 'vis' / f'{stem}.png').size[0] == 256


def test_bad_inputs(inferencer, tiny_images):
    with pytest.raises(ValueError, match='2 images but 3 texts'):
        inferencer([str(p) for p in tiny_images[:2]], texts=['a', 'b', 'c'])
    with pytest.raises(FileNotFoundError, match='nope.png'):
        inferencer(('nope.png', 'is it red?'))
    with pytest.raises(TypeError, match='texts='):
        inferencer(str(tiny_images[0]))


def test_config_from_checkpoint_and_no_return_attention(tiny_run,
                                                        tiny_images):
    _, wd = tiny_run
    # model=None: the config the checkpoint carries.
    inf = MultimodalInferencer(None, str(wd / 'iter_4.pth'), device='cpu',
                               classes=['N', 'Y'])
    pred = inf((str(tiny_images[0]), 'is it red?'),
               return_attention=False)['predictions'][0]
    assert pred['pred_class'] in ('N', 'Y')
    assert 'attention_map' not in pred


def test_infer_cli_prints_and_draws(tiny_run, tiny_images, tmp_path, capsys):
    _, wd = tiny_run
    infer_cli.main([str(wd), str(wd / 'iter_4.pth'),
                    '--image', str(tiny_images[0]),
                    '--image', str(tiny_images[1]),
                    '--text', 'is the square left of the circle?',
                    '--out-dir', str(tmp_path), '--token', '2'])
    printed = capsys.readouterr().out
    first = json.loads(printed[:printed.index('\n}\n') + 2])
    assert first['pred_class'] in ('no', 'yes')
    assert first['text'] == 'is the square left of the circle?'
    assert 'pictures:' in printed
    assert sorted(p.name for p in (tmp_path / 'vis').iterdir()) == sorted(
        f'{p.stem}.png' for p in tiny_images[:2])
    with pytest.raises(SystemExit, match='3 --image but 2 --text'):
        infer_cli.main([str(wd), str(wd / 'iter_4.pth'), '--image',
                        str(tiny_images[0]), '--image', str(tiny_images[1]),
                        '--image', str(tiny_images[2]), '--text', 'a',
                        '--text', 'b'])
