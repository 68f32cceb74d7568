"""Pack a loaded (image, phrase, boxes) sample for a text-conditioned
detector."""
from __future__ import annotations

from typing import Sequence

from mmcv.transforms import BaseTransform

from mmfusion.registry import TRANSFORMS

#: Meta keys kept by default: mmdet's, plus the phrase, the ground truth in
#: original image coordinates (``instances``, what ``CocoMetric`` reads
#: when it has no ``ann_file``) and the phrase type.
DET_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                 'scale_factor', 'flip', 'flip_direction', 'text',
                 'instances', 'phrase_type', 'sample_idx')


@TRANSFORMS.register_module()
class PackDetTextInputs(BaseTransform):
    """mmdet's ``PackDetInputs`` with the text beside the image.

    Output::

        {'inputs': {'img': uint8 tensor (3, H, W), 'text': str or None},
         'data_samples': DetDataSample}

    The data sample is mmdet's, built by ``PackDetInputs`` (``gt_instances``
    with ``bboxes`` and ``labels``; ``ignored_instances``), with the
    ``meta_keys`` that are present copied into its metainfo. The text is
    ``results['text']`` (None: absent). ``results['image_present']`` /
    ``results['text_present']`` (from :class:`DropModality`) go to the
    inputs as bools, as in :class:`PackMultimodalInputs`. A pipeline
    without a resize has no ``scale_factor``; ``(1.0, 1.0)`` is set then,
    so that predictions can be rescaled to the original image.

    The packing is mmdet's own ``PackDetInputs`` (held, and imported when
    the transform is built, so importing mmfusion's datasets does not load
    mmdet's).

    Args:
        meta_keys: keys copied, when present, into the data sample's
            metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = DET_META_KEYS) -> None:
        from mmdet.datasets.transforms import PackDetInputs
        self.meta_keys = tuple(meta_keys)
        self._pack = PackDetInputs(meta_keys=self.meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack ``results`` (a pipeline dict) into inputs and a data sample."""
        results.setdefault('scale_factor', (1.0, 1.0))
        packed = self._pack.transform(results)
        inputs = {'img': packed.pop('inputs', None),
                  'text': results.get('text')}
        for key in ('image_present', 'text_present'):
            if key in results:
                inputs[key] = bool(results[key])
        packed['inputs'] = inputs
        return packed

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
