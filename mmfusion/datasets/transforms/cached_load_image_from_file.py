"""mmcv's LoadImageFromFile with an in-memory cache of decoded images."""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import numpy as np
from mmcv.transforms import LoadImageFromFile

from mmfusion.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CachedLoadImageFromFile(LoadImageFromFile):
    """Load an image as mmcv's ``LoadImageFromFile`` does, keeping up to
    ``cache_size`` decoded images per process (LRU).

    Small benchmark images are decoded again every epoch otherwise, which
    on a 2-core machine costs as much as the model's own step; with
    persistent workers, epochs after the first read from memory. Each
    dataloader worker holds its own cache: budget ``cache_size`` x image
    bytes x workers of memory. Every other argument is mmcv's.
    """

    def __init__(self, *args, cache_size: int = 50000, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cache_size = cache_size
        self._cache: 'OrderedDict[str, np.ndarray]' = OrderedDict()

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        img = self._cache.get(path)
        if img is None:
            results = super().transform(results)
            if results is None:
                return None
            if self.cache_size > 0:
                self._cache[path] = results['img']
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            results['img'] = results['img'].copy()
            return results
        self._cache.move_to_end(path)
        img = img.copy()
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
