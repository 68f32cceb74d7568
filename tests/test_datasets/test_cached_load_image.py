from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmfusion.registry import TRANSFORMS


def test_cache_returns_equal_independent_copies(tmp_path):
    path = tmp_path / 'a.png'
    arr = np.random.default_rng(0).integers(0, 255, (6, 5, 3), np.uint8)
    Image.fromarray(arr).save(path)
    load = TRANSFORMS.build(dict(type='CachedLoadImageFromFile',
                                 cache_size=4))
    first = load(dict(img_path=str(path)))
    first['img'][:] = 0  # a later transform writing in place
    second = load(dict(img_path=str(path)))
    assert second['img'].shape == (6, 5, 3)
    assert second['img_shape'] == (6, 5) == second['ori_shape']
    np.testing.assert_array_equal(second['img'], arr[..., ::-1])  # BGR
    path.unlink()  # served from memory now
    assert load(dict(img_path=str(path)))['img'].sum() == arr.sum()


def test_cache_is_bounded(tmp_path):
    load = TRANSFORMS.build(dict(type='CachedLoadImageFromFile',
                                 cache_size=2))
    for i in range(4):
        p = tmp_path / f'{i}.png'
        Image.fromarray(np.full((2, 2, 3), i, np.uint8)).save(p)
        load(dict(img_path=str(p)))
    assert len(load._cache) == 2


def test_prefill_decodes_every_image_once_and_skips_bad_files(tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / f'{i}.png'
        Image.fromarray(np.full((3, 4, 3), i * 10, np.uint8)).save(p)
        paths.append(str(p))
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    load = TRANSFORMS.build(dict(type='CachedLoadImageFromFile',
                                 cache_size=4, prefill_threads=2))
    # Duplicates count once; the bound holds; the bad file is left out.
    added = load.prefill([str(bad)] + paths + paths)
    assert added == 3 and len(load._cache) == 3
    assert str(bad) not in load._cache
    for p in paths[:3]:
        Path(p).unlink()  # now served from memory
        assert load(dict(img_path=p))['img'].shape == (3, 4, 3)
    # The bad file still fails when its sample is loaded, naming it.
    with pytest.raises(ValueError, match='bad.png'):
        load(dict(img_path=str(bad)))


def test_dataset_prefills_its_pipeline_cache(data_root):
    from mmfusion.apis.runner_config import compose_and_check
    from mmfusion.config import to_mmengine_config
    from mmfusion.registry import DATASETS
    from conftest import ROOT, TINY_SHAPES
    experiment = ROOT / 'configs' / 'experiment' / 'cls_shapes.yaml'
    cfg, _ = compose_and_check(str(experiment),
                               TINY_SHAPES + [f'data_root={data_root}'])
    mm_cfg = to_mmengine_config(cfg)
    # Validation decodes every image when its dataset is built...
    ds_cfg = mm_cfg.val_dataloader.dataset
    assert ds_cfg.pipeline[0]['prefill'] is True
    dataset = DATASETS.build(ds_cfg)
    load = dataset.pipeline.transforms[0]
    images = {dataset.get_data_info(i)['img_path']
              for i in range(len(dataset))}
    assert set(load._cache) == images
    # ...training packs every sample then (CachedCompose) and frees them.
    train = DATASETS.build(mm_cfg.train_dataloader.dataset)
    cached = train.pipeline.transforms[0]
    assert type(cached).__name__ == 'CachedCompose'
    assert len(cached) == len(train) > 0
    assert len(cached.transforms[0]._cache) == 0


@pytest.mark.parametrize('mode', ['RGB', 'L', '1', 'P', 'RGBA', 'LA',
                                  'I;16'])
def test_png_header_kind_agrees_with_pil(tmp_path, mode):
    from mmfusion.datasets.transforms.cached_load_image_from_file import (
        image_kind, pil_kind, png_kind)
    path = tmp_path / 'x.png'
    Image.new(mode, (4, 3)).save(path)
    data = path.read_bytes()
    expected = {'RGB': '', 'L': 'grayscale', '1': 'black-and-white',
                'P': 'palette', 'RGBA': 'RGBA', 'LA': 'grayscale+alpha',
                'I;16': '16-bit grayscale'}[mode]
    assert png_kind(data) == pil_kind(data) == image_kind(data) == expected
    assert png_kind(b'\xff\xd8 a jpeg') is None
