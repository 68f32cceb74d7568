import numpy as np
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
