"""Phrase grounding (text-conditioned detection) data in ODVG format."""
from __future__ import annotations

import json
import os.path as osp
from numbers import Real
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset, force_full_init

from mmfusion.registry import DATASETS

from .bad_samples import BadSampleMixin, DataError, MissingImageError
from .multimodal_cls_dataset import _join, check_image_decodes, read_classes

#: The one class of ``class_mode='match'``: "the phrase refers to this box".
MATCH_CLASS = 'referred'
CLASS_MODES = ('match', 'category')


@DATASETS.register_module()
class GroundingDataset(BadSampleMixin, BaseDataset):
    """One sample per (image, phrase) from an ODVG grounding jsonl file.

    The file is mmdet's ODVG grounding format (what mmdet's grounding models
    train on), one JSON object a line, one line per image::

        {"filename": "images/0001.jpg", "height": 480, "width": 640,
         "grounding": {
            "caption": "the red circles. a dog.",
            "regions": [
              {"bbox": [x1, y1, x2, y2], "phrase": "the red circles",
               "tokens_positive": [[0, 15]]},
              {"bbox": [[x1, y1, x2, y2], [x1, y1, x2, y2]],
               "phrase": "a dog", "tokens_positive": [[17, 22]]}],
            "negatives": ["a cat", "the blue squares"]}}

    - ``filename``: image path relative to the jsonl file's folder (or
      absolute), or to ``data_root``/``data_prefix['img']`` when
      ``data_prefix=dict(img=...)`` is given (mmdet's convention);
    - ``height``, ``width``: image size in pixels;
    - ``regions``: boxes in pixels, ``[x1, y1, x2, y2]`` (x2, y2 exclusive,
      inside the image, positive area), one box or a list of boxes per
      region; a ``phrase`` may appear in several regions, its sample then
      has all of their boxes. ``tokens_positive`` and ``caption`` are read
      by mmdet's loader and ignored here. A region may carry ``category``
      (its class name for ``class_mode='category'``; default: the phrase).
    - **negatives** (mmfusion's addition; mmdet's ODVG loader cannot hold a
      phrase without a box): ``grounding.negatives`` lists phrases that
      match nothing in the image; each becomes a sample without targets.
      mmdet's loader ignores the key, so such files still load there.
    - ``grounding.phrase_types`` (optional): ``{phrase: type}``, kept as the
      samples' ``phrase_type`` (for analysis).

    Samples are the distinct phrases of each line (regions' phrases in
    order of first appearance, then the negatives); each gets its own
    ``img_id`` (its index in the file), which :class:`mmdet.evaluation.
    CocoMetric` uses as the image id, so every (image, phrase) pair is
    evaluated as its own COCO image.

    Every line is checked when the dataset is built (before training
    starts): UTF-8 text, valid JSON, the image file exists, boxes inside the
    image and of positive area, phrases non-empty strings, no phrase both a
    region and a negative, categories in the classes; errors
    (:class:`~mmfusion.datasets.bad_samples.DataError`, a ``ValueError``)
    name the file and line. A file with no samples, or none of whose image
    paths exist, is an error too. Whether each image *decodes* is checked
    when the sample is loaded (``check_images='exists'``, the default),
    again naming file, line and image; ``check_images='decode'`` decodes
    every image while the dataset is built instead.

    ``skip_bad_samples=True`` leaves bad lines out instead (each logged
    once, counted in the end-of-run report; a line is one bad sample
    however many phrases it holds), failing only when more than
    ``max_bad_fraction`` of the lines are bad (see
    :class:`~mmfusion.datasets.bad_samples.BadSampleMixin`).

    ``data_list`` entries hold ``img_path``, ``img_id``, ``height``,
    ``width``, ``text`` (the phrase), ``instances`` (``[{'bbox',
    'bbox_label', 'ignore_flag'}]``, mmdet's form; empty for a negative),
    ``phrase_type`` and ``ann_line`` (the line in ``ann_file``).

    Args:
        ann_file: the jsonl file; relative paths are joined to ``data_root``.
        class_mode: ``'match'`` (default): one class, ``'referred'``, for
            every target box (the detector scores "the phrase refers to
            this box"); ``'category'``: the boxes keep their categories
            (``classes`` from ``classes_file``, ``metainfo['classes']`` or,
            failing both, every category in the file, sorted).
        classes_file: class names, one a line, for ``class_mode='category'``
            (relative paths are joined to ``data_root``).
        data_root: folder of relative paths.
        data_prefix: ``dict(img=FOLDER)`` to resolve ``filename`` against
            ``data_root/FOLDER`` instead of the jsonl file's folder.
        pipeline: transforms applied to each sample.
        skip_bad_samples: leave bad lines out (logged once each) instead of
            failing on the first.
        max_bad_fraction: with ``skip_bad_samples``, the largest fraction of
            bad lines accepted (default 0.01); more fails the build.
        check_images: ``'exists'`` (image files must exist when the dataset
            is built; decoding is checked at load time) or ``'decode'``
            (every image is decoded when the dataset is built).
        metainfo, test_mode, indices, serialize_data, lazy_init,
        max_refetch, **kwargs: as :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self,
                 ann_file: str,
                 class_mode: str = 'match',
                 classes_file: Optional[str] = None,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 metainfo: Optional[dict] = None,
                 test_mode: bool = False,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000,
                 skip_bad_samples: bool = False,
                 max_bad_fraction: float = 0.01,
                 check_images: str = 'exists',
                 **kwargs: Any) -> None:
        self._init_bad_samples(skip_bad_samples, max_bad_fraction,
                               check_images)
        if not ann_file:
            raise ValueError('GroundingDataset needs ann_file (an ODVG jsonl '
                             'file with one image a line)')
        if class_mode not in CLASS_MODES:
            raise ValueError(f'class_mode must be one of {CLASS_MODES}, got '
                             f'{class_mode!r}')
        self.class_mode = class_mode
        metainfo = dict(metainfo or {})
        if class_mode == 'match':
            metainfo['classes'] = (MATCH_CLASS, )
        elif classes_file is not None:
            metainfo['classes'] = read_classes(_join(data_root, classes_file))
        elif 'classes' in metainfo:
            metainfo['classes'] = tuple(str(c) for c in metainfo['classes'])
        # else: collected from the file in load_data_list.
        self._img_prefix = (data_prefix or {}).get('img')
        super().__init__(ann_file=ann_file, metainfo=metainfo,
                         data_root=data_root, data_prefix=dict(
                             img_path=''),
                         pipeline=list(pipeline), test_mode=test_mode,
                         indices=indices, serialize_data=serialize_data,
                         lazy_init=lazy_init, max_refetch=max_refetch,
                         **kwargs)

    @property
    def classes(self) -> Tuple[str, ...]:
        return tuple(self._metainfo.get('classes', ()))

    # -------------------------------------------------------------- loading
    def load_data_list(self) -> List[dict]:
        """Read and check every line of ``ann_file``.

        Raises:
            FileNotFoundError: the annotation file is missing.
            DataError: (a ValueError) a line is invalid, unless skipped; the
                message names the file, the line and what is wrong. Also a
                file without samples, or none of whose images exist.
        """
        path = self.ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'annotation file {path} not found; expected an ODVG jsonl '
                'file with one {"filename", "height", "width", "grounding": '
                '{"regions": [...]}} object a line')
        if self._img_prefix is not None:
            base = _join(self.data_root, self._img_prefix)
        else:
            base = osp.dirname(osp.abspath(path))
        self.bad_samples = []
        decoded: Dict[str, str] = {}  # image path -> why it does not decode
        records, total, missing = self._parse_annotations(
            path, lambda line, lineno: self._parse_line(
                line, f'{path}:{lineno}', base, decoded))
        if 'classes' not in self._metainfo:
            cats = sorted({c for _, rec in records for s in rec
                           for _, c in s['boxes']})
            self._metainfo['classes'] = tuple(cats)
        index = {c: i for i, c in enumerate(self.classes)}
        data_list = []
        for lineno, samples in records:
            if self.class_mode != 'match':
                unknown = next((c for s in samples for _, c in s['boxes']
                                if c not in index), None)
                if unknown is not None:
                    self._bad(
                        f'{path}:{lineno}: category {unknown!r} is not in '
                        f'the classes {list(self.classes)}; add it to the '
                        'classes file or fix the line.')
                    continue
            for sample in samples:
                sample['instances'] = [
                    {'bbox': box, 'ignore_flag': 0,
                     'bbox_label': 0 if self.class_mode == 'match'
                     else index[cat]}
                    for box, cat in sample.pop('boxes')]
                sample['ann_line'] = lineno
                sample['img_id'] = len(data_list)
                data_list.append(sample)
        self._finish_build(total, missing, path,
                           'one ODVG {"filename", "height", "width", '
                           '"grounding": {"regions": [...]}} object a line')
        return data_list

    def _parse_line(self, line: str, where: str, base: str,
                    decoded: Dict[str, str]) -> List[dict]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f'{where}: invalid JSON ({err.msg} at column {err.colno}). '
                'Each line must be one ODVG object such as {"filename": '
                '"images/0001.jpg", "height": 480, "width": 640, '
                '"grounding": {"regions": [{"bbox": [x1, y1, x2, y2], '
                '"phrase": "a dog"}]}}.') from None
        if not isinstance(record, dict):
            raise DataError(f'{where}: expected a JSON object, got '
                            f'{type(record).__name__}.')
        for key in ('filename', 'height', 'width', 'grounding'):
            if key not in record:
                raise DataError(
                    f'{where}: missing key "{key}" (every line needs '
                    '"filename", "height", "width" and "grounding").')
        filename = record['filename']
        if not isinstance(filename, str) or not filename:
            raise DataError(f'{where}: "filename" must be a non-empty path '
                            f'string, got {filename!r}.')
        img_path = osp.normpath(osp.join(base, filename))
        if not osp.isfile(img_path):
            rel = ('data_root/data_prefix["img"]' if self._img_prefix
                   is not None else 'the folder of the jsonl file')
            raise MissingImageError(
                f'{where}: image file {img_path} not found ("filename" is '
                f'relative to {rel}).')
        if self.check_images == 'decode':
            if img_path not in decoded:
                decoded[img_path] = check_image_decodes(img_path)
            if decoded[img_path]:
                raise DataError(f'{where}: image {img_path} cannot be '
                                f'decoded: {decoded[img_path]}')
        height, width = record['height'], record['width']
        for name, value in (('height', height), ('width', width)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value <= 0:
                raise DataError(f'{where}: "{name}" must be a positive '
                                f'integer, got {value!r}.')
        grounding = record['grounding']
        if not isinstance(grounding, dict):
            raise DataError(f'{where}: "grounding" must be an object with '
                            '"regions" (and optionally "negatives").')
        regions = grounding.get('regions', [])
        negatives = grounding.get('negatives', [])
        types = grounding.get('phrase_types') or {}
        if not isinstance(regions, list):
            raise DataError(f'{where}: "grounding.regions" must be a list.')
        if not isinstance(negatives, list):
            raise DataError(f'{where}: "grounding.negatives" must be a list '
                            'of phrases that match nothing in the image.')
        if not isinstance(types, dict):
            raise DataError(f'{where}: "grounding.phrase_types" must map '
                            'phrases to type names.')

        boxes: Dict[str, List[Tuple[List[float], str]]] = {}
        for r, region in enumerate(regions):
            at = f'{where}: regions[{r}]'
            if not isinstance(region, dict):
                raise DataError(f'{at} must be an object with "bbox" and '
                                '"phrase".')
            phrase = _phrase(region.get('phrase'), at)
            category = region.get('category', phrase)
            if not isinstance(category, str) or not category.strip():
                raise DataError(f'{at}: "category" must be a non-empty '
                                f'string, got {category!r}.')
            for box in _boxes(region.get('bbox'), at, width, height):
                boxes.setdefault(phrase, []).append((box, category))
        samples = []
        common = {'img_path': img_path, 'height': height, 'width': width}
        for phrase, items in boxes.items():
            samples.append({**common, 'text': phrase, 'boxes': items,
                            'phrase_type': types.get(phrase)})
        seen = set()
        for n, neg in enumerate(negatives):
            phrase = _phrase(neg, f'{where}: negatives[{n}]')
            if phrase in boxes:
                raise DataError(
                    f'{where}: negatives[{n}] {phrase!r} is also the phrase '
                    'of a region: a negative must match nothing in the '
                    'image.')
            if phrase in seen:
                continue
            seen.add(phrase)
            samples.append({**common, 'text': phrase, 'boxes': [],
                            'phrase_type': types.get(phrase)})
        return samples

    # ---------------------------------------------------------------- access
    @force_full_init
    def get_texts(self) -> List[str]:
        """Every sample's phrase, in sample order (to fit a tokenizer)."""
        return [self.get_data_info(i)['text'] for i in range(len(self))]

    @force_full_init
    def get_cat_ids(self, idx: int) -> List[int]:
        """Class indices of sample ``idx``'s boxes (mmdet's interface)."""
        return [ins['bbox_label'] for ins in
                self.get_data_info(idx)['instances']]


def _phrase(value: Any, at: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f'{at}: the phrase must be a non-empty string, got '
                        f'{value!r}.')
    return value


def _boxes(value: Any, at: str, width: int, height: int
           ) -> List[List[float]]:
    """A region's boxes, checked: one box or a list of boxes."""
    if isinstance(value, list) and not value:
        raise DataError(f'{at}: "bbox" is empty; a phrase that matches '
                        'nothing in the image goes in "grounding.negatives".')
    if (isinstance(value, list) and value
            and all(isinstance(b, list) for b in value)):
        candidates = value
    else:
        candidates = [value]
    out = []
    for box in candidates:
        if (not isinstance(box, list) or len(box) != 4 or not all(
                isinstance(v, Real) and not isinstance(v, bool)
                for v in box)):
            raise DataError(f'{at}: "bbox" must be [x1, y1, x2, y2] in '
                            f'pixels or a list of such boxes, got {box!r}.')
        x1, y1, x2, y2 = (float(v) for v in box)
        if not (x2 > x1 and y2 > y1):
            raise DataError(f'{at}: box {box} has no area (need x2 > x1 and '
                            'y2 > y1; boxes are [x1, y1, x2, y2], not '
                            '[x, y, w, h]).')
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise DataError(f'{at}: box {box} is not inside the '
                            f'{width} x {height} image.')
        out.append([x1, y1, x2, y2])
    return out
