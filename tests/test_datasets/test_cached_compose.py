"""CachedCompose: a deterministic pipeline runs once per sample."""
import numpy as np
import pytest
import torch
from mmcv.transforms import BaseTransform
from PIL import Image

from mmfusion.datasets import MultimodalClsDataset
from mmfusion.registry import TRANSFORMS


class _Counting(BaseTransform):
    calls = 0

    def transform(self, results):
        type(self).calls += 1
        results['seen'] = type(self).calls
        return results


def _dataset(tmp_path, pipeline, n=3, corrupt=()):
    for i in range(n):
        Image.fromarray(np.full((4, 5, 3), 40 * i, np.uint8)).save(
            tmp_path / f'{i}.png')
    for i in corrupt:
        (tmp_path / f'{i}.png').write_bytes(b'not a png')
    lines = [f'{{"image": "{i}.png", "text": "is it {i}?", "label": "yes"}}'
             for i in range(n)]
    (tmp_path / 'train.jsonl').write_text('\n'.join(lines) + '\n')
    (tmp_path / 'classes.txt').write_text('no\nyes\n')
    return MultimodalClsDataset(ann_file=str(tmp_path / 'train.jsonl'),
                                classes_file=str(tmp_path / 'classes.txt'),
                                pipeline=pipeline)


def test_each_sample_runs_once_and_replays_equal_fresh_results(tmp_path):
    _Counting.calls = 0
    cached = TRANSFORMS.build(dict(type='CachedCompose', transforms=[
        dict(type='CachedLoadImageFromFile', prefill=True), _Counting(),
        dict(type='PackMultimodalInputs')]))
    ds = _dataset(tmp_path, [cached])
    first = [ds[i] for i in range(len(ds))]
    again = [ds[i] for i in range(len(ds))]
    assert _Counting.calls == 3 and len(cached) == 3
    for a, b in zip(first, again):
        assert torch.equal(a['inputs']['img'], b['inputs']['img'])
        assert a['inputs']['text'] == b['inputs']['text']
        assert a['data_samples'].gt_label == b['data_samples'].gt_label
        # Fresh containers: a later step replacing a field (a prediction,
        # a meta key) leaves the cached sample alone.
        assert a['inputs'] is not b['inputs']
        assert a['data_samples'] is not b['data_samples']
    first[0]['data_samples'].set_field(7, 'pred_label')
    first[0]['inputs']['text'] = 'changed'
    replay = ds[0]
    assert 'pred_label' not in replay['data_samples']
    assert replay['inputs']['text'] == 'is it 0?'
    # Different samples stay different.
    assert first[1]['inputs']['img'].float().mean() == 40


def test_prefill_reaches_the_wrapped_image_cache(tmp_path):
    cached = TRANSFORMS.build(dict(type='CachedCompose', transforms=[
        dict(type='CachedLoadImageFromFile', prefill=True),
        dict(type='PackMultimodalInputs')]))
    _dataset(tmp_path, [cached])
    assert len(cached.transforms[0]._cache) == 3  # decoded at build time
    assert len(cached) == 0  # packed results only once loaded


def test_max_size_bounds_the_cache(tmp_path):
    _Counting.calls = 0
    cached = TRANSFORMS.build(dict(type='CachedCompose', max_size=1,
                                   transforms=[_Counting()]))
    for _ in range(2):
        for idx in range(3):
            cached(dict(sample_idx=idx))
    assert len(cached) == 1 and _Counting.calls == 1 + 2 * 2


def test_random_transforms_and_missing_keys_are_refused():
    with pytest.raises(ValueError, match='RandomFlip draws at random.*'
                       'move it after the CachedCompose'):
        TRANSFORMS.build(dict(type='CachedCompose', transforms=[
            dict(type='RandomFlip', prob=0.5)]))
    # Seeded per sample, hence deterministic: allowed.
    TRANSFORMS.build(dict(type='CachedCompose', transforms=[
        dict(type='TextWordDrop', prob=0.5, seed=0)]))
    cached = TRANSFORMS.build(dict(type='CachedCompose', transforms=[]))
    with pytest.raises(KeyError, match='sample_idx'):
        cached(dict(text='no index'))


def test_prefill_packs_every_sample_at_build_and_frees_the_images(tmp_path):
    _Counting.calls = 0
    cached = TRANSFORMS.build(dict(type='CachedCompose', prefill=True,
                                   transforms=[
        dict(type='CachedLoadImageFromFile', prefill=True), _Counting(),
        dict(type='PackMultimodalInputs')]))
    ds = _dataset(tmp_path, [cached])
    assert len(cached) == 3 and _Counting.calls == 3
    # The packed samples hold the pixels: the decoded copies are freed.
    assert len(cached.transforms[0]._cache) == 0
    for i in range(3):
        (tmp_path / f'{i}.png').unlink()  # served from memory now
    assert ds[2]['inputs']['img'].float().mean() == 80
    assert _Counting.calls == 3


def test_prefill_reports_a_bad_image_with_its_line(tmp_path):
    cached = dict(type='CachedCompose', prefill=True, transforms=[
        dict(type='CachedLoadImageFromFile'),
        dict(type='PackMultimodalInputs')])
    from mmfusion.datasets.bad_samples import DataError
    with pytest.raises(DataError, match=r'train.jsonl:2.*1\.png'):
        _dataset(tmp_path, [cached], corrupt=[1])
