"""Image + text classification dataset read from a JSON-lines file."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset, force_full_init

from mmfusion.registry import DATASETS

from .bad_samples import BadSampleMixin, DataError, MissingImageError


@DATASETS.register_module()
class MultimodalClsDataset(BadSampleMixin, BaseDataset):
    """Samples of (image, text, label) listed one per line in a jsonl file.

    The documented format for users' own data::

        my_data/
            classes.txt          # one class name a line, in index order
            train.jsonl
            images/0001.png ...

    and one JSON object a line in ``train.jsonl``::

        {"image": "images/0001.png", "text": "is the circle red?",
         "label": "yes", "question_type": "colour"}

    - ``image``: path relative to the jsonl file's folder (or absolute;
      ``data_prefix`` is not used);
    - ``text``: a non-empty string, or ``null`` for a sample without text
      (an absent modality; an empty or whitespace-only string is an error).
      A null text reaches the pipeline as None, :class:`PackMultimodalInputs`
      keeps it None, the data preprocessor sets the sample's
      ``text_present`` to False and the model gives it zero text features;
      :meth:`get_texts` (what the tokenizer is fitted on) leaves it out;
    - ``label``: a class name, or a list of class names for multi-label data;
    - ``question_type``: optional group name for per-group metrics.

    Every line is checked when the dataset is built (before training
    starts); errors name the file and line number: malformed JSON, a
    missing key, an unknown label (the message lists the classes), an empty
    or whitespace-only text, a missing image file, a file with no samples.
    Whether each image *decodes* is checked when the sample is first loaded
    (``check_images='exists'``, the default: decoding every image up front
    would cost minutes on a large dataset), again naming file, line and
    image; ``check_images='decode'`` decodes every image while the dataset
    is built instead. Grayscale, RGBA, palette and 16-bit images are
    converted to 3-channel 8-bit by the loading transform, logged once per
    dataset.

    ``skip_bad_samples=True`` leaves bad samples out instead (each logged
    once, the count reported at the end of the run) and refuses a dataset in
    which more than ``max_bad_fraction`` of the samples are bad.

    ``data_list`` entries (what the pipeline receives) hold ``img_path``
    (absolute), ``text`` (str or None), ``gt_label`` (int, or a sorted list
    of ints for multi-label), ``question_type`` (str or None), ``ann_line``
    (line number in ``ann_file``) and ``sample_idx``; multi-label entries
    also get ``num_classes`` so that the packing transform can build
    multi-hot targets.

    Args:
        ann_file: the jsonl file; relative paths are joined to ``data_root``.
        classes_file: class names, one a line. Default: ``classes.txt``
            beside ``ann_file``, unless ``metainfo`` gives ``classes``.
            Relative paths are joined to ``data_root``.
        data_root: folder that relative ``ann_file``/``classes_file`` are in.
        pipeline: transforms applied to each sample.
        metainfo: extra meta information; ``classes`` may be given here
            instead of a classes file.
        skip_bad_samples: leave bad samples out (logged once each) instead
            of failing.
        max_bad_fraction: with ``skip_bad_samples``, the largest fraction of
            bad samples accepted (default 0.01); more fails the build.
        check_images: ``'exists'`` (image files must exist when the dataset
            is built; decoding is checked at load time) or ``'decode'``
            (every image is decoded when the dataset is built).
        test_mode, indices, serialize_data, lazy_init, max_refetch, **kwargs:
            as :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self,
                 ann_file: str,
                 classes_file: Optional[str] = None,
                 data_root: str = '',
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
            raise ValueError('MultimodalClsDataset needs ann_file (a jsonl '
                             'file with one sample a line)')
        metainfo = dict(metainfo or {})
        ann_path = _join(data_root, ann_file)
        if classes_file is not None:
            classes = read_classes(_join(data_root, classes_file))
        elif 'classes' in metainfo:
            classes = tuple(str(c) for c in metainfo['classes'])
        else:
            classes = read_classes(
                osp.join(osp.dirname(ann_path), 'classes.txt'))
        metainfo['classes'] = classes
        super().__init__(ann_file=ann_file, metainfo=metainfo,
                         data_root=data_root, pipeline=list(pipeline),
                         test_mode=test_mode, indices=indices,
                         serialize_data=serialize_data, lazy_init=lazy_init,
                         max_refetch=max_refetch, **kwargs)

    @property
    def classes(self) -> Tuple[str, ...]:
        """Class names in index order."""
        return tuple(self._metainfo['classes'])

    def load_data_list(self) -> List[dict]:
        """Read and check every line of ``ann_file``.

        Raises:
            FileNotFoundError: the annotation file is missing.
            ValueError: a line is invalid; the message names the file, the
                line and how to fix it.
        """
        path = self.ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'annotation file {path} not found; expected a jsonl file '
                'with one {"image": ..., "text": ..., "label": ...} object '
                'a line')
        class_index = {c: i for i, c in enumerate(self.classes)}
        base = osp.dirname(osp.abspath(path))
        self.bad_samples = []
        self._decoded: dict = {}
        parsed, total, missing = self._parse_annotations(
            path, lambda line, lineno: self._parse_line(
                line, path, lineno, base, class_index))
        data_list = [info for _, info in parsed]
        del self._decoded
        self._finish_build(total, missing, path,
                           'one {"image": ..., "text": ..., "label": ...} '
                           'object a line')
        return data_list

    def _parse_line(self, line: str, path: str, lineno: int, base: str,
                    class_index: dict) -> dict:
        where = f'{path}:{lineno}'
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f'{where}: invalid JSON ({err.msg} at column {err.colno}). '
                'Each line must be one JSON object such as {"image": '
                '"images/0001.png", "text": "a question?", "label": "yes"}.'
            ) from None
        if not isinstance(record, dict):
            raise DataError(f'{where}: expected a JSON object, got '
                             f'{type(record).__name__}.')
        for key in ('image', 'text', 'label'):
            if key not in record:
                raise DataError(
                    f'{where}: missing key "{key}" (every line needs "image",'
                    ' "text" and "label"; use "text": null for a sample '
                    'without text).')

        image = record['image']
        if not isinstance(image, str) or not image:
            raise DataError(f'{where}: "image" must be a non-empty path '
                             f'string, got {image!r}.')
        img_path = osp.normpath(osp.join(base, image))
        if not osp.isfile(img_path):
            raise MissingImageError(
                f'{where}: image file {img_path} not found ("image" paths '
                'are relative to the folder of the jsonl file).')
        if self.check_images == 'decode':
            if img_path not in self._decoded:
                self._decoded[img_path] = check_image_decodes(img_path)
            if self._decoded[img_path]:
                raise DataError(f'{where}: image {img_path} cannot be '
                                f'decoded: {self._decoded[img_path]}')

        text = record['text']
        if text is not None and not isinstance(text, str):
            raise DataError(f'{where}: "text" must be a string or null, '
                             f'got {type(text).__name__}.')
        if text is not None and not text.strip():
            raise DataError(
                f'{where}: "text" is an empty string; use null for a sample '
                'without text.')

        label = record['label']
        if isinstance(label, list):
            gt_label: Union[int, List[int]] = sorted(
                {self._label_index(v, where, class_index) for v in label})
        else:
            gt_label = self._label_index(label, where, class_index)

        qtype = record.get('question_type')
        if qtype is not None and not isinstance(qtype, str):
            raise DataError(f'{where}: "question_type" must be a string or '
                             f'null, got {qtype!r}.')
        return {'img_path': img_path, 'text': text, 'gt_label': gt_label,
                'question_type': qtype, 'ann_line': lineno}

    def _label_index(self, label: Any, where: str, class_index: dict) -> int:
        if not isinstance(label, str) or label not in class_index:
            raise DataError(
                f'{where}: unknown label {label!r}; labels must be class '
                f'names from the classes file: {list(self.classes)}. Add the '
                'class there or fix the line.')
        return class_index[label]

    def get_data_info(self, idx: int) -> dict:
        """The ``idx``-th sample's dict (``num_classes`` for multi-label)."""
        info = super().get_data_info(idx)
        if isinstance(info['gt_label'], list):
            info['num_classes'] = len(self.classes)
        return info

    @force_full_init
    def get_texts(self) -> List[str]:
        """Every non-null text, in sample order (to fit a tokenizer)."""
        texts = []
        for i in range(len(self)):
            text = self.get_data_info(i)['text']
            if text is not None:
                texts.append(text)
        return texts


def check_image_decodes(path: str) -> str:
    """'' when the image at ``path`` decodes completely, else why not.

    As strict as :class:`CachedLoadImageFromFile` (which loads it later): a
    PNG or JPEG without its end marker is refused even where PIL decodes
    it.
    """
    import io

    from PIL import Image

    from .transforms.cached_load_image_from_file import truncated
    try:
        with open(path, 'rb') as f:
            data = f.read()
        why = truncated(data)
        if why:
            raise ValueError(why)
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception as exc:  # PIL raises many types for bad files
        return f'{type(exc).__name__}: {exc}'
    return ''


def read_classes(path: str) -> Tuple[str, ...]:
    """Class names from a file with one name a line (blank lines skipped).

    Raises:
        FileNotFoundError: missing file.
        ValueError: no class, or a duplicated class.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'classes file {path} not found: write one class name a line '
            '(e.g. "no" and "yes"), or pass classes_file=... or '
            'metainfo=dict(classes=[...])')
    with open(path, encoding='utf-8') as f:
        classes = tuple(line.strip() for line in f if line.strip())
    if not classes:
        raise ValueError(f'classes file {path} lists no class')
    seen = set()
    for c in classes:
        if c in seen:
            raise ValueError(f'classes file {path} lists {c!r} twice')
        seen.add(c)
    return classes


def _join(root: str, path: str) -> str:
    """``path`` joined to ``root`` unless it is absolute or root is empty."""
    path = os.fspath(path)
    if root and not osp.isabs(path):
        return osp.join(os.fspath(root), path)
    return path
