"""Referring segmentation: (image, phrase, mask) samples from a jsonl file."""
from __future__ import annotations

import json
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, \
    Union

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init
from PIL import Image

from mmfusion.registry import DATASETS

from .bad_samples import BadSampleMixin, DataError, MissingImageError
from .multimodal_cls_dataset import _join, check_image_decodes, read_classes
from .transforms.cached_load_image_from_file import truncated

#: Classes of the default binary target.
BINARY_CLASSES: Tuple[str, ...] = ('background', 'referred')
#: Mask value of pixels that count neither way (loss and metrics skip them).
IGNORE_INDEX = 255
#: PIL modes of single-channel masks.
MASK_MODES = ('L', 'P', '1', 'I', 'I;16')
#: Overlay colours (RGB) of the binary classes.
BINARY_PALETTE = [[0, 0, 0], [255, 64, 64]]


@DATASETS.register_module()
class RefSegDataset(BadSampleMixin, BaseDataset):
    """Samples of (image, phrase, mask) listed one per line in a jsonl file.

    The documented format for users' own data::

        my_data/
            train.jsonl
            images/0001.jpg ...
            masks/0001_dog.png ...

    with one JSON object a line::

        {"image": "images/0001.jpg", "text": "the dog on the left",
         "mask": "masks/0001_dog.png"}

    - ``image``: path relative to the jsonl file's folder (or absolute);
    - ``text``: the referring phrase, a non-empty string;
    - ``mask``: a single-channel PNG of the image's size (relative like
      ``image``): 0 background, 1 referred (the pixels the phrase refers
      to), 255 ignore (counted neither way, e.g. crowd regions or unsure
      borders). With per-class masks (``classes`` of more than two names)
      the values are class indices ``0 .. K-1`` or 255;
    - optional ``label``: a class name from ``label_classes`` (the
      classification target of a multi-task model); optional
      ``phrase_type`` (a group name, kept in the data sample's meta).

    Several lines may share an image (one line per phrase). Every line is
    checked when the dataset is built, before training starts (UTF-8 text,
    valid JSON, the files exist, the image's header reads, the mask decodes,
    is single-channel and as large as the image, its values are allowed,
    the phrase is not empty), and errors
    (:class:`~mmfusion.datasets.bad_samples.DataError`, a ``ValueError``)
    name the file and line number. A file with no samples, or none of whose
    image paths exist, is an error too. Whether each image *decodes* is
    checked when the sample is loaded (``check_images='exists'``, the
    default), again naming file, line, image and mask;
    ``check_images='decode'`` decodes every image while the dataset is
    built instead. With ``allow_missing_mask`` a line may have ``"mask":
    null`` (no segmentation target: a multi-task model then adds no
    segmentation loss for it).

    ``skip_bad_samples=True`` leaves bad lines out instead (each logged
    once, counted in the end-of-run report), failing only when more than
    ``max_bad_fraction`` of the lines are bad (see
    :class:`~mmfusion.datasets.bad_samples.BadSampleMixin`).

    ``data_list`` entries hold ``img_path``, ``seg_map_path`` (None without
    mask), ``text``, ``phrase_type``, ``gt_label`` (int or None, with
    ``label_classes``), ``ann_line``, ``reduce_zero_label`` (False) and
    ``seg_fields`` (for mmseg's ``LoadAnnotations``).

    Args:
        ann_file: the jsonl file; relative paths are joined to ``data_root``.
        classes: segmentation class names in index order; default
            ``('background', 'referred')`` (binary). A path to a classes
            file (one name a line) also works.
        palette: RGB overlay colour per class for the visualiser.
        label_classes: class names of the optional ``label`` key, or a path
            to a classes file; None ignores ``label``.
        allow_missing_mask: accept ``"mask": null``.
        check_values: decode every mask to check its values (and that it
            decodes) when the dataset is built; the sizes are always
            checked, from the PNG headers. Without it a mask that does not
            decode is an error when its sample is loaded.
        skip_bad_samples: leave bad lines out (logged once each) instead of
            failing on the first.
        max_bad_fraction: with ``skip_bad_samples``, the largest fraction of
            bad lines accepted (default 0.01); more fails the build.
        check_images: ``'exists'`` (image files must exist and their
            headers read when the dataset is built; decoding is checked at
            load time) or ``'decode'`` (every image is decoded when the
            dataset is built).
        data_root: folder that a relative ``ann_file`` is in.
        pipeline: transforms applied to each sample.
        metainfo: extra meta information.
        test_mode, indices, serialize_data, lazy_init, max_refetch, **kwargs:
            as :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self,
                 ann_file: str,
                 classes: Union[Sequence[str], str, None] = None,
                 palette: Optional[Sequence[Sequence[int]]] = None,
                 label_classes: Union[Sequence[str], str, None] = None,
                 allow_missing_mask: bool = False,
                 check_values: bool = True,
                 skip_bad_samples: bool = False,
                 max_bad_fraction: float = 0.01,
                 check_images: str = 'exists',
                 data_root: str = '',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 metainfo: Optional[dict] = None,
                 test_mode: bool = False,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000,
                 **kwargs: Any) -> None:
        if not ann_file:
            raise ValueError('RefSegDataset needs ann_file (a jsonl file with '
                             'one {"image", "text", "mask"} object a line)')
        metainfo = dict(metainfo or {})
        classes = self._classes(classes, data_root) or tuple(
            metainfo.get('classes', BINARY_CLASSES))
        if len(classes) < 2:
            raise ValueError(f'RefSegDataset needs at least two classes '
                             f'(background and referred), got {classes}')
        if palette is None:
            palette = metainfo.get('palette')
        if palette is None:
            palette = BINARY_PALETTE if len(classes) == 2 else \
                _default_palette(len(classes))
        if len(palette) != len(classes):
            raise ValueError(f'palette has {len(palette)} colours for '
                             f'{len(classes)} classes')
        metainfo['classes'] = classes
        metainfo['palette'] = [list(map(int, c)) for c in palette]
        label_names = self._classes(label_classes, data_root)
        if label_names is not None:
            metainfo['label_classes'] = label_names
        self.allow_missing_mask = allow_missing_mask
        self.check_values = check_values
        self._init_bad_samples(skip_bad_samples, max_bad_fraction,
                               check_images)
        super().__init__(ann_file=ann_file, metainfo=metainfo,
                         data_root=data_root, pipeline=list(pipeline),
                         test_mode=test_mode, indices=indices,
                         serialize_data=serialize_data, lazy_init=lazy_init,
                         max_refetch=max_refetch, **kwargs)

    @staticmethod
    def _classes(value: Union[Sequence[str], str, None],
                 data_root: str) -> Optional[Tuple[str, ...]]:
        if value is None:
            return None
        if isinstance(value, str):
            return read_classes(_join(data_root, value))
        return tuple(str(c) for c in value)

    @property
    def classes(self) -> Tuple[str, ...]:
        """Segmentation class names in index order."""
        return tuple(self._metainfo['classes'])

    def load_data_list(self) -> List[dict]:
        """Read and check every line of ``ann_file``.

        Raises:
            FileNotFoundError: the annotation file is missing.
            DataError: (a ValueError) a line is invalid, unless skipped; the
                message names the file, the line and how to fix it. Also a
                file without samples, or none of whose images exist.
        """
        path = self.ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'annotation file {path} not found; expected a jsonl file '
                'with one {"image": ..., "text": ..., "mask": ...} object a '
                'line')
        base = osp.dirname(osp.abspath(path))
        label_index = {c: i for i, c in enumerate(
            self._metainfo.get('label_classes') or ())}
        sizes: Dict[str, Tuple[int, int]] = {}  # image sizes, read once
        self.bad_samples = []
        parsed, total, missing = self._parse_annotations(
            path, lambda line, lineno: self._parse_line(
                line, f'{path}:{lineno}', base, label_index, sizes))
        data_list = [dict(info, ann_line=lineno) for lineno, info in parsed]
        self._finish_build(total, missing, path,
                           'one {"image": ..., "text": ..., "mask": ...} '
                           'object a line')
        return data_list

    def _parse_line(self, line: str, where: str, base: str,
                    label_index: Dict[str, int],
                    sizes: Dict[str, Tuple[int, int]]) -> dict:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f'{where}: invalid JSON ({err.msg} at column {err.colno}). '
                'Each line must be one JSON object such as {"image": '
                '"images/0001.jpg", "text": "the dog", "mask": '
                '"masks/0001_dog.png"}.') from None
        if not isinstance(record, dict):
            raise DataError(f'{where}: expected a JSON object, got '
                            f'{type(record).__name__}.')
        for key in ('image', 'text', 'mask'):
            if key not in record:
                raise DataError(f'{where}: missing key "{key}" (every line '
                                'needs "image", "text" and "mask").')
        text = record['text']
        if not isinstance(text, str) or not text.strip():
            raise DataError(f'{where}: "text" must be a non-empty phrase, '
                            f'got {text!r}.')
        img_path = self._file(record['image'], 'image', where, base)
        if img_path not in sizes:
            sizes[img_path] = _image_size(img_path, where,
                                          self.check_images == 'decode')
        mask = record['mask']
        seg_map_path = None
        if mask is None:
            if not self.allow_missing_mask:
                raise DataError(
                    f'{where}: "mask" is null; every line needs a mask PNG '
                    '(or build the dataset with allow_missing_mask=True).')
        else:
            seg_map_path = self._file(mask, 'mask', where, base)
            self._check_mask(seg_map_path, sizes[img_path], where)
        gt_label = None
        if label_index:
            label = record.get('label')
            if label is not None:
                if label not in label_index:
                    raise DataError(
                        f'{where}: unknown label {label!r}; labels must be '
                        f'names from label_classes: {list(label_index)}.')
                gt_label = label_index[label]
        ptype = record.get('phrase_type')
        if ptype is not None and not isinstance(ptype, str):
            raise DataError(f'{where}: "phrase_type" must be a string or '
                            f'null, got {ptype!r}.')
        return {'img_path': img_path, 'seg_map_path': seg_map_path,
                'text': text, 'phrase_type': ptype, 'gt_label': gt_label,
                'reduce_zero_label': False, 'seg_fields': []}

    @staticmethod
    def _file(value: Any, key: str, where: str, base: str) -> str:
        if not isinstance(value, str) or not value:
            raise DataError(f'{where}: "{key}" must be a non-empty path '
                            f'string, got {value!r}.')
        path = osp.normpath(osp.join(base, value))
        if not osp.isfile(path):
            error = MissingImageError if key == 'image' else DataError
            raise error(f'{where}: {key} file {path} not found ("{key}" '
                        'paths are relative to the folder of the jsonl '
                        'file).')
        return path

    def _check_mask(self, path: str, image_size: Tuple[int, int],
                    where: str) -> None:
        values = None
        try:
            with Image.open(path) as mask:
                size, mode = mask.size, mask.mode
                if (self.check_values and size == image_size
                        and mode in MASK_MODES):
                    with open(path, 'rb') as f:
                        # PIL decodes a PNG cut after its pixel data.
                        why = truncated(f.read())
                    if why:
                        raise ValueError(why)
                    mask.load()
                    values = np.unique(np.asarray(mask))
        except Exception as exc:  # PIL raises many types for bad files
            raise DataError(f'{where}: mask {path} cannot be read: '
                            f'{type(exc).__name__}: {exc}') from None
        if size != image_size:
            raise DataError(
                f'{where}: mask {path} is {size[0]}x{size[1]} but its image '
                f'is {image_size[0]}x{image_size[1]} (width x height); masks '
                'must match their image.')
        if mode not in MASK_MODES:
            raise DataError(
                f'{where}: mask {path} has mode {mode}; masks must be '
                'single-channel PNGs of class indices.')
        if values is None:
            return
        num_classes = len(self.classes)
        bad = [int(v) for v in values
               if not (0 <= v < num_classes or v == IGNORE_INDEX)]
        if bad:
            allowed = ('{0, 1, 255}' if num_classes == 2 else
                       f'0..{num_classes - 1} and 255')
            raise DataError(
                f'{where}: mask {path} holds values {bad[:10]}; allowed are '
                f'{allowed} (0 background, 1 referred, 255 ignore).')

    @force_full_init
    def get_texts(self) -> List[str]:
        """Every phrase, in sample order (to fit a tokenizer)."""
        return [self.get_data_info(i)['text'] for i in range(len(self))]


def _image_size(path: str, where: str, decode: bool) -> Tuple[int, int]:
    """The image's (width, height) from its header; with ``decode`` the
    whole image must decode too."""
    try:
        with Image.open(path) as img:
            size = img.size
    except Exception as exc:  # PIL raises many types for bad files
        raise DataError(f'{where}: image {path} cannot be read: '
                        f'{type(exc).__name__}: {exc}') from None
    why = check_image_decodes(path) if decode else ''
    if why:
        raise DataError(f'{where}: image {path} cannot be decoded: {why}')
    return size


def _default_palette(n: int) -> List[List[int]]:
    """``n`` distinct colours, black first (background)."""
    rng = np.random.default_rng(0)
    colours = rng.integers(64, 256, size=(n, 3)).tolist()
    colours[0] = [0, 0, 0]
    return colours
