"""Referring segmentation on mmseg's EncoderDecoder: mask what the text
says."""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.config import ConfigDict
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.segmentors.base import BaseSegmentor
from torch import Tensor, nn

from mmfusion.models.classifiers.multimodal_classifier import (
    MODALITIES, MultimodalClassifier)
from mmfusion.models.fusions.base_fusion import MAP, FusionOutput
from mmfusion.models.utils.fusion_builder import (ModuleCfg, build_fusions,
                                                  build_image_trunk,
                                                  build_module,
                                                  build_text_encoder,
                                                  fusion_input_kind,
                                                  level_fusions)
from mmfusion.registry import MODELS

_MC = MultimodalClassifier


@MODELS.register_module()
class TextConditionedSegmentor(EncoderDecoder):
    """Segment the pixels that a phrase refers to.

    mmseg's :class:`EncoderDecoder` with the text in the encoder: ``inputs``
    (from :class:`MultimodalSegDataPreprocessor`) -> image encoder (e.g.
    mmdet's or mmseg's ResNet, a tuple of maps) -> optional neck (e.g.
    mmdet's FPN) -> at every level, the fusion block with the text
    encoder's features -> the levels' fused maps (``FusionOutput.map``) ->
    decode head (mmseg's ``FCNHead`` by reference, with its loss) -> per
    pixel class logits, resized and cropped back to each image's
    ``ori_shape`` by mmseg's ``postprocess_result``.

    The image and text parts are the classifier's
    (:class:`MultimodalClassifier`): the same arguments, presence flags,
    ``modalities`` (``('image',)`` makes the image-only baseline: every
    text marked absent), ``modality_dropout`` and ``share_fusion``; the
    fusion must accept maps (``'map'`` in its ``input_kinds``; a block that
    does not fails at build time naming those that do).

    Sizes are found, not configured, unless the config sets them: the neck's
    ``in_channels`` (the image encoder's channels per level, from one
    dummy forward), the fusion's ``image_dim``/``text_dim`` and the heads'
    ``in_channels`` (the fused ``map_dim`` of the levels in the head's
    ``in_index``: a list for ``input_transform='resize_concat'``).

    The target is binary by default (``num_classes=2`` in the head:
    background and referred); per-class masks need only the head's
    ``num_classes`` and the dataset's classes.

    Args:
        image_encoder: image backbone config or module.
        text_encoder: text encoder config or module.
        fusion: a :class:`BaseFusion` config (or module) accepting maps.
        head: decode head config or module (mmseg ``BaseDecodeHead``).
        neck: optional neck config or module on the image maps.
        auxiliary_head: optional mmseg auxiliary head(s) on the fused maps
            (deep supervision in training only).
        data_preprocessor: preprocessor config (default
            :class:`MultimodalSegDataPreprocessor`).
        modalities: modalities the model uses.
        share_fusion: one fusion block for every level or one per level.
        modality_dropout: per-modality drop probability in training.
        train_cfg: mmseg training config of the heads.
        test_cfg: mmseg test config; ``mode='whole'`` (default) only.
        init_cfg: mmengine weight-initialisation config.
    """

    # The classifier's image + text machinery, shared as it is.
    _check_modalities = staticmethod(_MC._check_modalities)
    _check_dropout = staticmethod(_MC._check_dropout)
    _image_maps = _MC._image_maps
    _presence = _MC._presence
    extract_level_feats = _MC.extract_level_feats

    def __init__(self,
                 image_encoder: ModuleCfg,
                 text_encoder: ModuleCfg,
                 fusion: ModuleCfg,
                 head: ModuleCfg,
                 neck: Optional[ModuleCfg] = None,
                 auxiliary_head: Union[ModuleCfg, List[ModuleCfg],
                                       None] = None,
                 data_preprocessor: Optional[ModuleCfg] = None,
                 modalities: Sequence[str] = MODALITIES,
                 share_fusion: bool = True,
                 modality_dropout: Optional[Dict[str, float]] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='MultimodalSegDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        # EncoderDecoder.__init__ builds from mmseg's registry only; the
        # parts here come from configs or modules, so it is skipped.
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor,
                               init_cfg=init_cfg)
        self.modalities = self._check_modalities(modalities)
        self.modality_dropout = self._check_dropout(modality_dropout)
        self.return_attention = False
        self.build_trunk(image_encoder, text_encoder, neck, fusion,
                         share_fusion)
        self._init_decode_head(head)
        self._init_auxiliary_head(auxiliary_head)
        self.train_cfg = ConfigDict(train_cfg or {})
        self.test_cfg = ConfigDict(test_cfg or dict(mode='whole'))
        if self.test_cfg.get('mode', 'whole') != 'whole':
            raise ValueError(
                f"{type(self).__name__} supports test_cfg.mode='whole' only "
                f"(got {self.test_cfg.mode!r}); resize large images in the "
                'test pipeline instead of sliding windows')

    # ------------------------------------------------------------- building
    def build_trunk(self, image_encoder: ModuleCfg, text_encoder: ModuleCfg,
                    neck: Optional[ModuleCfg], fusion: ModuleCfg,
                    share_fusion: bool) -> None:
        """Image encoder, neck, text encoder and the per-level fusion."""
        self.image_encoder, self.neck, channels = build_image_trunk(
            image_encoder, neck)
        self.image_channels: Tuple[int, ...] = channels
        self.text_encoder = build_text_encoder(text_encoder,
                                               self.data_preprocessor)
        self.image_kind: str = fusion_input_kind(fusion, MAP)
        self.fusion = build_fusions(fusion, self.image_channels,
                                    self.text_encoder.out_dim, share_fusion)
        self.share_fusion = not isinstance(self.fusion, nn.ModuleList)
        fusions = level_fusions(self.fusion, len(self.image_channels))
        self.fused_channels: Tuple[int, ...] = tuple(f.map_dim
                                                     for f in fusions)

    def _head_cfg(self, head: ModuleCfg) -> ModuleCfg:
        """``head`` with ``in_channels`` from the fused levels it reads."""
        if not isinstance(head, dict) or 'in_channels' in head:
            return head
        head = copy.deepcopy(head)
        n = len(self.fused_channels)
        index = head.get('in_index', -1)
        if head.get('input_transform') in ('resize_concat',
                                           'multiple_select'):
            if isinstance(index, int):
                index = list(range(n))
                head['in_index'] = index
            head['in_channels'] = [self.fused_channels[i] for i in index]
        else:
            head['in_channels'] = self.fused_channels[index]
        return head

    def _init_decode_head(self, decode_head: ModuleCfg) -> None:
        self.decode_head = build_module(self._head_cfg(decode_head))
        self.align_corners = self.decode_head.align_corners
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels

    def _init_auxiliary_head(self, auxiliary_head) -> None:
        if auxiliary_head is None:
            return
        if isinstance(auxiliary_head, (list, tuple)):
            self.auxiliary_head = nn.ModuleList(
                build_module(self._head_cfg(h)) for h in auxiliary_head)
        else:
            self.auxiliary_head = build_module(self._head_cfg(auxiliary_head))

    # ------------------------------------------------------------ features
    def extract_fused(self, inputs: Dict[str, Tensor]) -> List[FusionOutput]:
        """One :class:`FusionOutput` per level (``map`` always set)."""
        outs = self.extract_level_feats(inputs)
        for level, out in enumerate(outs):
            if out.map is None:
                raise ValueError(
                    f'the fusion gave no map at level {level}: segmentation '
                    "needs a block that returns FusionOutput.map")
        return outs

    def extract_feat(self, inputs: Dict[str, Tensor]) -> Tuple[Tensor, ...]:
        """The fused maps of every level, for the decode head."""
        return tuple(out.map for out in self.extract_fused(inputs))

    # -------------------------------------------------------------- predict
    @staticmethod
    def _default_metas(inputs: Dict[str, Tensor]) -> List[dict]:
        img = inputs['img']
        shape = tuple(img.shape[2:])
        return [dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                     padding_size=[0, 0, 0, 0])] * img.shape[0]

    def predict(self, inputs: Dict[str, Tensor],
                data_samples: Optional[list] = None) -> list:
        """``SegDataSample`` per input with ``pred_sem_seg`` ``(1, H, W)``
        and ``seg_logits`` ``(C, H, W)`` at each image's ``ori_shape``."""
        if data_samples is not None:
            metas = [s.metainfo for s in data_samples]
        else:
            metas = self._default_metas(inputs)
        seg_logits = self.inference(inputs, metas)
        return self.postprocess_result(seg_logits, data_samples)

    def slide_inference(self, inputs, batch_img_metas):
        raise NotImplementedError(
            f"{type(self).__name__} supports test_cfg.mode='whole' only")

    def aug_test(self, inputs, batch_img_metas, rescale=True):
        raise NotImplementedError(
            f'{type(self).__name__} has no test-time augmentation')


__all__ = ['TextConditionedSegmentor']
