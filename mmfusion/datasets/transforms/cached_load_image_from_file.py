"""mmcv's LoadImageFromFile with an in-memory cache of decoded images."""
from __future__ import annotations

import io
import logging
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log

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

    Unlike mmcv's transform it checks what it reads: a file that does not
    decode, or a PNG/JPEG cut short (no end marker: cv2 would decode the
    part that is there and say nothing), raises ``ValueError`` naming the
    image (the dataset adds the annotation file and line); a grayscale,
    RGBA, palette or 16-bit image is converted to 3-channel 8-bit (with the
    default ``color_type='color'``) and the first one is logged, once per
    transform, i.e. once per dataset pipeline.

    With ``prefill=True`` the dataset decodes all its images into the cache
    when it is built (:meth:`prefill`, on ``prefill_threads`` threads:
    decoding releases the GIL), so the first epoch does not wait for
    decoding either; worker processes forked afterwards inherit the cache.

    Args:
        cache_size: most decoded images kept (LRU).
        prefill: fill the cache when the dataset is built.
        prefill_threads: threads of the fill (default: the CPU count).
    """

    def __init__(self, *args, cache_size: int = 50000,
                 prefill: bool = False,
                 prefill_threads: Optional[int] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cache_size = cache_size
        self.prefill_on_init = bool(prefill)
        self.prefill_threads = prefill_threads
        self._cache: 'OrderedDict[str, np.ndarray]' = OrderedDict()
        self._logged_conversion = False

    def _load(self, results: dict) -> Optional[dict]:
        """mmcv's loading, with decode, truncation and mode checks."""
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                client = fileio.FileClient.infer_client(
                    self.file_client_args, filename)
                img_bytes = client.get(filename)
            else:
                img_bytes = fileio.get(filename,
                                       backend_args=self.backend_args)
            why = truncated(img_bytes)
            if why:
                raise ValueError(why)
            img = mmcv.imfrombytes(img_bytes, flag=self.color_type,
                                   backend=self.imdecode_backend)
            if img is None:
                raise ValueError('the file does not decode as an image')
        except Exception as exc:
            if self.ignore_empty:
                return None
            raise ValueError(f'cannot read image {filename}: {exc}') from exc
        if self.color_type == 'color' and not self._logged_conversion:
            kind = image_kind(img_bytes)
            if kind:
                self._logged_conversion = True
                print_log(f'{type(self).__name__}: {filename} is a {kind} '
                          'image; converted to 3-channel 8-bit like every '
                          'image (further conversions in this dataset are '
                          'not logged).', logger='current',
                          level=logging.INFO)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def prefill(self, paths: Iterable[str]) -> int:
        """Decode ``paths`` into the cache (up to ``cache_size``); returns
        how many were added. An image that does not load is left out: it
        fails later, when its sample is loaded, with the dataset's own
        message (or is skipped as a bad sample)."""
        todo = [p for p in dict.fromkeys(paths) if p not in self._cache]
        todo = todo[:max(0, self.cache_size - len(self._cache))]

        def load(path: str) -> Optional[np.ndarray]:
            try:
                out = self._load({'img_path': path})
            except Exception:
                return None
            return None if out is None else out['img']

        threads = self.prefill_threads or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=threads) as pool:
            images = list(pool.map(load, todo, chunksize=64))
        added = 0
        for path, img in zip(todo, images):
            if img is not None:
                self._cache[path] = img
                added += 1
        return added

    def clear_cache(self) -> None:
        """Forget every decoded image (e.g. once a later cache holds the
        packed samples)."""
        self._cache.clear()

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        img = self._cache.get(path)
        if img is None:
            results = self._load(results)
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


def truncated(data: bytes) -> str:
    """Why a PNG or JPEG file is incomplete ('' when it looks whole)."""
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        if b'IEND' not in data[-16:]:
            return 'the PNG file is truncated (no IEND chunk at its end)'
    elif data[:2] == b'\xff\xd8':
        if b'\xff\xd9' not in data[-1024:]:
            return ('the JPEG file is truncated (no end-of-image marker at '
                    'its end)')
    return ''


#: PNG colour type -> kind name ('' is 8-bit RGB, nothing to say).
_PNG_COLOUR_TYPES = {0: 'grayscale', 2: '', 3: 'palette',
                     4: 'grayscale+alpha', 6: 'RGBA'}


def image_kind(data: bytes) -> str:
    """'grayscale', 'RGBA', 'palette', '16-bit ...' or '' for 8-bit RGB,
    read from the header only."""
    kind = png_kind(data)
    return pil_kind(data) if kind is None else kind


def png_kind(data: bytes) -> Optional[str]:
    """:func:`image_kind` of a PNG from its IHDR chunk (bit depth at byte
    24, colour type at 25), None for other files: a tenth of the time of
    asking PIL, which matters when a dataset's images are decoded up
    front."""
    if not (data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 25
            and data[12:16] == b'IHDR'):
        return None
    depth, colour = data[24], data[25]
    kind = _PNG_COLOUR_TYPES.get(colour)
    if kind is None:
        return None
    if depth == 16:
        return f'16-bit {kind or "RGB"}'
    if colour == 0 and depth == 1:
        return 'black-and-white'
    return kind


def pil_kind(data: bytes) -> str:
    """:func:`image_kind` of any image PIL opens."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            bits = img.info.get('bits')
    except Exception:
        return ''
    depth16 = mode.startswith('I;16') or mode == 'I' or bits == 16
    if data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 25:
        depth16 = depth16 or data[24] == 16
    names = {'L': 'grayscale', '1': 'black-and-white', 'LA': 'grayscale+alpha',
             'P': 'palette', 'PA': 'palette+alpha', 'RGBA': 'RGBA',
             'CMYK': 'CMYK', 'I;16': 'grayscale', 'I': 'grayscale',
             'I;16B': 'grayscale', 'I;16L': 'grayscale', 'F': 'float'}
    kind = names.get(mode, '')
    if depth16:
        return f'16-bit {kind or "RGB"}'
    return kind
