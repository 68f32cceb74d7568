"""A defined outcome for each kind of bad grounding (boxes) and referring
segmentation (masks) data: the rows of the bad-data table in
docs/reliability.md for ``GroundingDataset`` and ``RefSegDataset``, and
their skip-bad-samples option."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List

import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from PIL import Image

from mmfusion.datasets.bad_samples import DataError
from mmfusion.registry import DATASETS, TRANSFORMS

W, H = 40, 30  # size of the fixture images (and masks)

DET_PIPELINE = [dict(type='CachedLoadImageFromFile'),
                dict(_scope_='mmdet', type='LoadAnnotations', with_bbox=True),
                dict(type='PackDetTextInputs')]
SEG_PIPELINE = [dict(type='CachedLoadImageFromFile'),
                dict(type='LoadOptionalAnnotations'),
                dict(type='PackMultimodalSegInputs')]


def det_line(image='images/ok.png', phrase='the red box', bbox=None,
             negatives=None) -> dict:
    """One ODVG line with one region (one phrase: one sample)."""
    grounding = {'caption': f'{phrase}.', 'regions': [
        {'bbox': bbox or [1, 2, 11, 12], 'phrase': phrase}]}
    if negatives is not None:
        grounding['negatives'] = negatives
    return {'filename': image, 'height': H, 'width': W,
            'grounding': grounding}


def seg_line(image='images/ok.png', phrase='the dog',
             mask='masks/ok.png') -> dict:
    return {'image': image, 'text': phrase, 'mask': mask}


LINES = {'det': det_line, 'seg': seg_line}


def _write(folder: Path, lines: List) -> Path:
    path = folder / 'ann.jsonl'
    path.write_text(''.join((x if isinstance(x, str) else json.dumps(x))
                            + '\n' for x in lines), encoding='utf-8')
    return path


def _build(task: str, ann: Path, **kwargs):
    init_default_scope('mmfusion')
    if task == 'det':
        cfg = dict(type='GroundingDataset', pipeline=DET_PIPELINE)
    else:
        cfg = dict(type='RefSegDataset', pipeline=SEG_PIPELINE)
    return DATASETS.build(dict(cfg, ann_file=str(ann), **kwargs))


@pytest.fixture()
def folder(tmp_path) -> Path:
    images, masks = tmp_path / 'images', tmp_path / 'masks'
    images.mkdir()
    masks.mkdir()
    Image.new('RGB', (W, H), (255, 0, 0)).save(images / 'ok.png')
    (images / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\nnot an image')
    whole = (images / 'ok.png').read_bytes()
    (images / 'cut.png').write_bytes(whole[:len(whole) // 2])

    mask = np.zeros((H, W), np.uint8)
    mask[2:12, 1:11] = 1
    mask[0, 0] = 255
    Image.fromarray(mask).save(masks / 'ok.png')
    Image.fromarray(np.zeros((H, W // 2), np.uint8)).save(masks / 'small.png')
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(masks / 'tall.png')
    for value in (2, 7, 128, 254):
        bad = mask.copy()
        bad[5, 5] = value
        Image.fromarray(bad).save(masks / f'value{value}.png')
    (masks / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\nnot a mask')
    whole = (masks / 'ok.png').read_bytes()
    (masks / 'cut.png').write_bytes(whole[:len(whole) - 20])
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(masks / 'rgb.png')
    return tmp_path


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        MMLogger.get_current_instance().addHandler(self)
        return self

    def __exit__(self, *exc):
        MMLogger.get_current_instance().removeHandler(self)


# ------------------------------------------------------ boxes (grounding)
@pytest.mark.parametrize('bbox,why', [
    ([30, 2, 45, 12], 'is not inside the 40 x 30 image'),   # right edge
    ([-1, 2, 5, 12], 'is not inside'),                      # left edge
    ([1, 25, 5, 31], 'is not inside'),                      # bottom edge
    ([5, 5, 5, 12], 'has no area'),                         # zero width
    ([5, 5, 12, 5], 'has no area'),                         # zero height
    ([10, 10, 5, 5], 'has no area'),                        # x, y, w, h
])
def test_box_outside_image_or_zero_area_names_file_and_line(folder, bbox,
                                                            why):
    ann = _write(folder, [det_line(), det_line(bbox=bbox)])
    with pytest.raises(DataError) as info:
        _build('det', ann)
    msg = str(info.value)
    assert msg.startswith(f'{ann}:2: regions[0]: box ') and why in msg
    # One bad box among several of a region is found too.
    ann = _write(folder, [det_line(bbox=[[1, 1, 5, 5], bbox])])
    with pytest.raises(DataError, match=f'{ann}:1: regions'):
        _build('det', ann)


def test_boxes_inside_the_image_load(folder):
    ann = _write(folder, [det_line(bbox=[0, 0, W, H]),
                          det_line(bbox=[0.5, 0.5, 1, 1])])
    ds = _build('det', ann)
    assert ds[0]['data_samples'].gt_instances.bboxes.tensor.tolist() == \
        [[0.0, 0.0, 40.0, 30.0]]
    assert [ds.get_data_info(i)['ann_line'] for i in range(2)] == [1, 2]


# ----------------------------------------------- masks (referring seg.)
@pytest.mark.parametrize('name,size', [('small', '20x30'), ('tall', '40x31')])
def test_mask_of_wrong_size_names_file_and_line(folder, name, size):
    ann = _write(folder, [seg_line(), seg_line(mask=f'masks/{name}.png')])
    with pytest.raises(DataError) as info:
        _build('seg', ann)
    assert str(info.value).startswith(
        f'{ann}:2: mask {folder / "masks" / name}.png is {size} but its '
        'image is 40x30')
    # Sizes come from the headers: checked even without check_values.
    with pytest.raises(DataError, match=f'{ann}:2: mask .* is {size}'):
        _build('seg', ann, check_values=False)


@pytest.mark.parametrize('value', [2, 7, 128, 254])
def test_mask_values_outside_0_1_255_name_file_and_line(folder, value):
    ann = _write(folder, [seg_line(), seg_line(mask=f'masks/value{value}.png')])
    with pytest.raises(DataError, match=rf'{ann}:2: mask .*value{value}\.png '
                       rf'holds values \[{value}\]; allowed are '
                       r'\{0, 1, 255\}'):
        _build('seg', ann)


def test_mask_with_0_1_255_loads(folder):
    ann = _write(folder, [seg_line()])
    seg = _build('seg', ann)[0]['data_samples'].gt_sem_seg.data
    assert seg.shape == (1, H, W) and set(seg.unique().tolist()) == \
        {0, 1, 255}


def test_mask_with_channels_names_file_and_line(folder):
    ann = _write(folder, [seg_line(mask='masks/rgb.png')])
    with pytest.raises(DataError, match=f'{ann}:1: mask .* has mode RGB'):
        _build('seg', ann)


@pytest.mark.parametrize('name', ['corrupt', 'cut'])
def test_corrupt_mask_names_file_line_and_path(folder, name):
    mask = folder / 'masks' / f'{name}.png'
    ann = _write(folder, [seg_line(), seg_line(mask=f'masks/{name}.png')])
    # Masks are decoded when the dataset is built (check_values) ...
    with pytest.raises(DataError) as info:
        _build('seg', ann)
    assert str(info.value).startswith(f'{ann}:2: mask {mask} cannot be read')
    if name == 'corrupt':  # (a cut file's header still reads)
        with pytest.raises(DataError, match=f'{ann}:2: mask .* cannot be'):
            _build('seg', ann, check_values=False)
        return
    # ... or, without check_values, when the sample is loaded: the
    # transform names the mask, the dataset adds file and line.
    ds = _build('seg', ann, check_values=False)
    ds[0]
    with pytest.raises(DataError) as info:
        ds[1]
    msg = str(info.value)
    assert msg.startswith(f'{ann}:2 ') and f'mask {mask}' in msg
    assert f'cannot read mask {mask}' in msg


@pytest.mark.parametrize('name', ['corrupt', 'cut', 'rgb'])
def test_mask_transform_names_the_corrupt_file(folder, name):
    path = str(folder / 'masks' / f'{name}.png')
    load = TRANSFORMS.build(dict(type='LoadOptionalAnnotations'))
    with pytest.raises(ValueError, match=f'mask {path}'):
        load(dict(seg_map_path=path, reduce_zero_label=False, seg_fields=[]))
    ok = load(dict(seg_map_path=str(folder / 'masks' / 'ok.png'),
                   reduce_zero_label=False, seg_fields=[]))
    assert ok['gt_seg_map'].shape == (H, W)
    assert ok['gt_seg_map'].dtype == np.uint8


def test_mmseg_mask_loader_errors_get_file_line_and_mask(folder):
    """Configs that load masks with mmseg's own ``LoadAnnotations``: its
    error on a bad mask still names the annotation file, line and mask."""
    mask = folder / 'masks' / 'corrupt.png'
    # A mask replaced after the dataset was built.
    ann = _write(folder, [seg_line(), seg_line(mask='masks/late.png')])
    (folder / 'masks' / 'late.png').write_bytes(
        (folder / 'masks' / 'ok.png').read_bytes())
    init_default_scope('mmfusion')
    ds = DATASETS.build(dict(
        type='RefSegDataset', ann_file=str(ann),
        pipeline=[dict(type='CachedLoadImageFromFile'),
                  dict(type='LoadAnnotations', _scope_='mmseg'),
                  dict(type='PackMultimodalSegInputs')]))
    (folder / 'masks' / 'late.png').write_bytes(mask.read_bytes())
    ds[0]
    with pytest.raises(DataError) as info:
        ds[1]
    assert str(info.value).startswith(
        f'{ann}:2 (image {folder / "images" / "ok.png"}, mask '
        f'{folder / "masks" / "late.png"})')


# ------------------------------------------- rows shared by both datasets
@pytest.mark.parametrize('task', ['det', 'seg'])
def test_missing_image_names_file_line_and_path(folder, task):
    line = LINES[task]
    ann = _write(folder, [line(), line(image='images/gone.png')])
    with pytest.raises(DataError) as info:
        _build(task, ann)
    msg = str(info.value)
    assert msg.startswith(f'{ann}:2: image file ')
    assert str(folder / 'images' / 'gone.png') in msg


@pytest.mark.parametrize('task', ['det', 'seg'])
@pytest.mark.parametrize('name', ['corrupt.png', 'cut.png'])
def test_corrupt_image_names_file_line_and_path(folder, task, name):
    line = LINES[task]
    path = folder / 'images' / name
    ann = _write(folder, [line(), line(), line(image=f'images/{name}')])
    if task == 'seg' and name == 'corrupt.png':
        # RefSegDataset reads every image's header when built (for the
        # mask sizes): a file that is no image at all is found then.
        with pytest.raises(DataError, match=f'{ann}:3: image {path} cannot '
                           'be read'):
            _build(task, ann)
    else:
        ds = _build(task, ann)  # existence is checked when built ...
        ds[0]
        with pytest.raises(DataError) as info:
            ds[2]  # ... decoding when loaded
        msg = str(info.value)
        assert msg.startswith(f'{ann}:3 (image {path}')
        assert 'failed to load' in msg
    # check_images='decode' finds it while the dataset is built.
    with pytest.raises(DataError, match=f'{ann}:3: image {path} cannot be'):
        _build(task, ann, check_images='decode')


@pytest.mark.parametrize('name', ['corrupt.png', 'cut.png'])
def test_corrupt_image_with_mmcv_loader_names_file_line_and_path(folder,
                                                                 name):
    """The grounding config's pipeline (mmcv's ``LoadImageFromFile``)."""
    path = folder / 'images' / name
    ann = _write(folder, [det_line(), det_line(image=f'images/{name}')])
    init_default_scope('mmfusion')
    ds = DATASETS.build(dict(
        type='GroundingDataset', ann_file=str(ann),
        pipeline=[dict(type='LoadImageFromFile')] + DET_PIPELINE[1:]))
    ds[0]
    with pytest.raises(DataError) as info:
        ds[1]
    assert str(info.value).startswith(f'{ann}:2 (image {path}): the sample '
                                      'failed to load')


@pytest.mark.parametrize('task', ['det', 'seg'])
@pytest.mark.parametrize('bad', ['{"image": "images/ok.png", "text": ',
                                 'not json at all', '["a", "list"]'])
def test_malformed_jsonl_names_file_and_line(folder, task, bad):
    ann = _write(folder, [LINES[task](), LINES[task](), bad])
    with pytest.raises(DataError, match=f'{ann}:3: (invalid JSON|expected '
                       'a JSON object)'):
        _build(task, ann)


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_not_utf8_names_file_and_line(folder, task):
    ann = folder / 'ann.jsonl'
    ann.write_bytes(json.dumps(LINES[task]()).encode() + b'\n' +
                    json.dumps(LINES[task](phrase='@@')).encode().replace(
                        b'@@', b'\xff\xfe') + b'\n')
    with pytest.raises(DataError, match=f'{ann}:2: not UTF-8'):
        _build(task, ann)


@pytest.mark.parametrize('task', ['det', 'seg'])
@pytest.mark.parametrize('phrase', ['', '   \t '])
def test_empty_phrase_names_file_and_line(folder, task, phrase):
    ann = _write(folder, [LINES[task](), LINES[task](phrase=phrase)])
    with pytest.raises(DataError, match=f'{ann}:2: .*non-empty'):
        _build(task, ann)
    if task == 'det':  # a negative phrase too
        ann = _write(folder, [det_line(negatives=['a cat', phrase])])
        with pytest.raises(DataError, match=rf'{ann}:1: negatives\[1\]: '
                           'the phrase must be a non-empty string'):
            _build(task, ann)


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_no_samples_fails_when_built(folder, task):
    ann = _write(folder, ['', '  '])
    with pytest.raises(DataError, match=f'{ann}: no samples'):
        _build(task, ann)
    with pytest.raises(DataError, match='no samples'):
        _build(task, ann, skip_bad_samples=True, max_bad_fraction=1.0)


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_all_image_paths_missing_fails_when_built(folder, task):
    ann = _write(folder, [LINES[task](image=f'pics/{i}.png')
                          for i in range(5)])
    with pytest.raises(DataError, match=f'{ann}: none of the 5 image paths '
                       'exist'):
        _build(task, ann)
    with pytest.raises(DataError, match='none of the 5 image paths exist'):
        _build(task, ann, skip_bad_samples=True, max_bad_fraction=1.0)
    ann = _write(folder, [LINES[task](phrase='')] * 3)
    with pytest.raises(DataError, match='all 3 samples are bad'):
        _build(task, ann, skip_bad_samples=True, max_bad_fraction=1.0)


# ------------------------------------------------------- skip bad samples
def _mixed(folder, task, n_good=200):
    line = LINES[task]
    wrong = (det_line(bbox=[30, 2, 45, 12]) if task == 'det' else
             seg_line(mask='masks/value7.png'))
    bad = [line(image='images/gone.png'), wrong, '{oops', line(phrase='')]
    return _write(folder, [line()] * n_good + bad), len(bad)


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_skip_bad_samples_logs_each_once_and_counts(folder, task):
    ann, n_bad = _mixed(folder, task)
    with _Records() as caplog:
        ds = _build(task, ann, skip_bad_samples=True, max_bad_fraction=0.05)
    assert len(ds) == 200
    assert ds.get_data_info(199)['ann_line'] == 200
    skipped = [r.getMessage() for r in caplog.records
               if 'skipping a bad sample' in r.getMessage()]
    assert len(skipped) == n_bad
    assert [m.split(f'{ann}:')[1].split(':')[0] for m in skipped] == \
        ['201', '202', '203', '204']
    assert ds.bad_samples == [m.split('skipping a bad sample: ')[1]
                              for m in skipped]
    assert ds.bad_sample_summary().startswith(
        f'{ann}: 4 bad samples skipped of 204')


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_skip_refused_above_max_fraction(folder, task):
    ann, _ = _mixed(folder, task)  # 4 of 204 = 1.96% > the default 1%
    with pytest.raises(DataError, match=r'4 of 204 samples are bad '
                       r'\(1\.96%\), more than max_bad_fraction=0\.01'):
        _build(task, ann, skip_bad_samples=True)


def test_skip_counts_a_grounding_line_once(folder):
    """A bad ODVG line is one bad sample however many phrases it has; an
    unknown category (found after the classes are known) is skipped too."""
    two = det_line(negatives=['a cat', 'a dog'])
    two['grounding']['regions'][0]['category'] = 'zebra'
    (folder / 'classes.txt').write_text('the red box\n')
    ann = _write(folder, [det_line()] * 3 + [two])
    with pytest.raises(DataError, match=f"{ann}:4: category 'zebra'"):
        _build('det', ann, class_mode='category',
               classes_file=str(folder / 'classes.txt'))
    ds = _build('det', ann, class_mode='category',
                classes_file=str(folder / 'classes.txt'),
                skip_bad_samples=True, max_bad_fraction=0.25)
    assert len(ds) == 3 and len(ds.bad_samples) == 1
    assert [ds.get_data_info(i)['img_id'] for i in range(3)] == [0, 1, 2]


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_skip_replaces_undecodable_sample_in_training(folder, task):
    line = LINES[task]
    ann = _write(folder, [line()] * 99 + [line(image='images/cut.png')])
    ds = _build(task, ann, skip_bad_samples=True)
    out = ds[99]  # replaced by another (good) sample
    assert out['inputs']['img'].shape == (3, H, W)
    assert list(ds.bad_loads) == [99]
    assert f'{ann}:100 ' in ds.bad_loads[99]
    assert 'when loaded' in ds.bad_sample_summary()
    test_ds = _build(task, ann, skip_bad_samples=True, test_mode=True)
    with pytest.raises(DataError, match="check_images='decode'"):
        test_ds[99]  # never silently replaced in evaluation
