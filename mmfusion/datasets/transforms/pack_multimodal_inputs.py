"""Pack a loaded (image, text, label) sample into model inputs."""
from __future__ import annotations

from numbers import Integral
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmfusion.registry import TRANSFORMS
from mmfusion.structures import MultimodalDataSample


@TRANSFORMS.register_module()
class PackMultimodalInputs(BaseTransform):
    """Pack the image, the text and the label for the model (like mmdet's
    ``PackDetInputs``).

    Output::

        {'inputs': {'img': uint8 tensor (3, H, W) or None,
                    'text': str or None},
         'data_samples': MultimodalDataSample}

    (plus ``'image_present'``/``'text_present'`` bools in ``inputs`` when
    the pipeline set them, see below).

    The image keeps the channel order it was loaded with (BGR from mmcv's
    ``LoadImageFromFile``); the data preprocessor converts and normalises it.
    A sample without ``img`` (absent image) or with a None ``text`` (absent
    text, ``"text": null`` in the annotation file) gives None for that
    input; the data preprocessor then marks it absent (``image_present`` /
    ``text_present`` False) and the model gives it zero features.
    ``results['image_present']``/``results['text_present']`` (set by
    :class:`DropModality`), when there, are copied to the inputs as bools:
    False marks the modality absent though its data are there.

    ``gt_label`` (when present) becomes the data sample's ``gt_label``: a
    ``(1,)`` long tensor for an int index, or a ``(num_classes,)`` float
    multi-hot tensor for a list of indices (multi-label), ``num_classes``
    coming from this transform's argument or from ``results['num_classes']``.

    Args:
        meta_keys: keys copied, when present, into the data sample's metainfo.
        num_classes: number of classes for multi-label targets; default:
            ``results['num_classes']`` (set by :class:`MultimodalClsDataset`).
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'text',
                                             'question_type', 'sample_idx',
                                             'ori_shape', 'img_shape'),
                 num_classes: Optional[int] = None) -> None:
        self.meta_keys = tuple(meta_keys)
        self.num_classes = num_classes

    def transform(self, results: dict) -> dict:
        """Pack ``results`` (a pipeline dict) into inputs and a data sample."""
        img = results.get('img')
        if img is not None:
            img = np.asarray(img)
            if img.ndim < 3:
                img = np.expand_dims(img, -1)
            # (H, W, C) -> (C, H, W); a non-contiguous array (e.g. after a
            # flip) is made contiguous in one copy while transposing.
            if not img.flags.c_contiguous:
                img = torch.from_numpy(
                    np.ascontiguousarray(img.transpose(2, 0, 1)))
            else:
                img = torch.from_numpy(img).permute(2, 0, 1).contiguous()
        inputs = {'img': img, 'text': results.get('text')}
        for key in ('image_present', 'text_present'):
            if key in results:
                inputs[key] = bool(results[key])

        data_sample = MultimodalDataSample()
        if results.get('gt_label') is not None:
            data_sample.gt_label = self._label_tensor(results)
        # set_field, not set_metainfo: that deep-copies the dict, the
        # largest cost of packing; `results` is this sample's own copy of
        # its data info (BaseDataset.get_data_info deep-copies it), so
        # nothing is shared with the dataset.
        for key in self.meta_keys:
            if key in results:
                data_sample.set_field(results[key], key,
                                      field_type='metainfo')
        return {'inputs': inputs, 'data_samples': data_sample}

    def _label_tensor(self, results: dict) -> torch.Tensor:
        label = results['gt_label']
        if isinstance(label, torch.Tensor) and label.numel() == 1 \
                and not label.is_floating_point():
            return label.reshape(1).long()
        if isinstance(label, (Integral, np.integer)):
            return torch.tensor([int(label)], dtype=torch.long)
        # Multi-label: a list (or array) of positive class indices.
        indices = torch.as_tensor(np.asarray(label, dtype=np.int64).reshape(
            -1))
        num_classes = self.num_classes or results.get('num_classes')
        if num_classes is None:
            raise ValueError(
                'PackMultimodalInputs got a multi-label gt_label '
                f'{list(indices.tolist())} but no number of classes: pass '
                'num_classes=K to the transform or set results'
                "['num_classes'] (MultimodalClsDataset does)")
        if indices.numel() and (indices.min() < 0
                                or indices.max() >= num_classes):
            raise ValueError(f'gt_label {indices.tolist()} out of range for '
                             f'{num_classes} classes')
        onehot = torch.zeros(int(num_classes), dtype=torch.float32)
        onehot[indices] = 1.0
        return onehot

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(meta_keys={self.meta_keys}, '
                f'num_classes={self.num_classes})')
