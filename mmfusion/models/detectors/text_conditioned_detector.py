"""A single-stage detector that finds what a phrase describes."""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors import BaseDetector, SingleStageDetector
from mmengine.config import ConfigDict
from torch import Tensor, nn

from mmfusion.models.fusions.base_fusion import MAP, FusionOutput
from mmfusion.models.utils.fusion_builder import (ModuleCfg, build_fusions,
                                                  build_image_trunk,
                                                  build_module,
                                                  build_text_encoder,
                                                  fusion_input_kind,
                                                  image_maps, level_fusions,
                                                  probe_image_maps)
from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures

MODALITIES = ('image', 'text')


@MODELS.register_module()
class TextConditionedDetector(SingleStageDetector):
    """Detect the objects a phrase refers to (phrase grounding).

    ``inputs`` (from :class:`MultimodalDetDataPreprocessor`) -> image
    encoder (e.g. mmdet's ``ResNet``) -> neck (e.g. mmdet's ``FPN``) -> at
    every level, the fusion block with the text encoder's
    :class:`ModalityFeatures` -> the fused maps (``FusionOutput.map``) ->
    a dense head (e.g. mmdet's ``RetinaHead``: anchors, focal loss, box
    coder, assigner, NMS). By default the head has one class, "the phrase
    refers to this box"; with per-category data (``class_mode='category'``)
    its ``num_classes`` is the number of categories.

    It is mmdet's :class:`SingleStageDetector` (``loss``, ``predict`` and
    ``_forward`` are mmdet's) with :meth:`extract_feat` taking the image and
    the text. Its parts are built here rather than by
    ``SingleStageDetector.__init__``, which builds every part from a dict in
    mmdet's registry: here each part is a config built in mmfusion's
    registry (mmdet parts by ``_scope_: mmdet``) or a ready module, and the
    text encoder and fusion blocks are added. The parts are the attributes
    mmdet tools expect (``backbone``, ``neck``, ``bbox_head``), also
    reachable as ``image_encoder`` and ``head``.

    Sizes are found, not configured: one dummy forward of a
    ``1x3x64x64`` image at build time measures the image encoder's levels
    (the neck gets them as ``in_channels`` unless its config sets it) and
    the neck's; each fusion gets ``image_dim`` (its level's channels) and
    ``text_dim`` (the text encoder's ``out_dim``), the head
    ``in_channels`` (the fusion's ``map_dim``), and a text encoder config
    without ``vocab_size`` the tokenizer's ``max_vocab_size``. The fusion
    must accept maps (``'map'`` in its ``input_kinds``) and return a map of
    its input's height and width (FiLM with strides 1, for example); build
    time fails otherwise, naming the blocks that fit.

    Args:
        image_encoder: image backbone config or module; returns a tuple of
            ``(B, C_l, H_l, W_l)`` maps.
        text_encoder: text encoder config or module, with ``out_dim`` and
            ``forward(ids, mask, present) -> ModalityFeatures``.
        fusion: a :class:`BaseFusion` config or module accepting maps.
        head: an mmdet dense head config (``_scope_: mmdet``) or module,
            with ``loss``/``predict`` over a tuple of maps.
        neck: optional neck config or module on the image maps.
        data_preprocessor: config or module (default: a
            :class:`MultimodalDetDataPreprocessor` with default settings).
        modalities: modalities the model uses; ``('image',)`` removes the
            text from every sample (the image-only baseline: the fusion runs
            unconditioned, the rest of the model unchanged).
        share_fusion: one fusion block for every level (requires equal
            channels) or one per level. Blocks with batch norm (FiLM) keep
            one set of statistics per block, so separate blocks suit levels
            whose statistics differ.
        train_cfg: mmdet's training settings (assigner, sampler, ...),
            handed to the head as ``SingleStageDetector`` does; may also
            sit in the head config.
        test_cfg: mmdet's test settings (``score_thr``, ``nms``, ...),
            handed to the head likewise.
        init_cfg: mmengine weight-initialisation config.
    """

    def __init__(self,
                 image_encoder: ModuleCfg,
                 text_encoder: ModuleCfg,
                 fusion: ModuleCfg,
                 head: ModuleCfg,
                 neck: Optional[ModuleCfg] = None,
                 data_preprocessor: Optional[ModuleCfg] = None,
                 modalities: Sequence[str] = MODALITIES,
                 share_fusion: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='MultimodalDetDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        # Not SingleStageDetector.__init__: see the class docstring.
        BaseDetector.__init__(self, data_preprocessor=data_preprocessor,
                              init_cfg=init_cfg)
        self.modalities = self._check_modalities(modalities)

        self.backbone, self.neck, channels = build_image_trunk(
            image_encoder, neck)
        self.image_channels: Tuple[int, ...] = channels

        self.text_encoder = build_text_encoder(text_encoder,
                                               self.data_preprocessor)

        # Dense heads need a fused map per level, all of one map_dim.
        fusion_input_kind(fusion, MAP)
        self.fusion = build_fusions(fusion, self.image_channels,
                                    self.text_encoder.out_dim, share_fusion,
                                    same_dim='map_dim')
        self.share_fusion = not isinstance(self.fusion, nn.ModuleList)
        map_dim = level_fusions(self.fusion,
                                len(self.image_channels))[0].map_dim

        if isinstance(head, dict):
            # mmdet heads read their settings as attributes
            # (``test_cfg.score_thr``): ConfigDict, also from a plain dict.
            head = ConfigDict(copy.deepcopy(head))
            head.setdefault('in_channels', map_dim)
            if train_cfg is not None:
                head['train_cfg'] = ConfigDict(train_cfg)
            if test_cfg is not None:
                head['test_cfg'] = ConfigDict(test_cfg)
        self.bbox_head = build_module(head)
        self.train_cfg = getattr(self.bbox_head, 'train_cfg', train_cfg)
        self.test_cfg = getattr(self.bbox_head, 'test_cfg', test_cfg)
        self._check_fused_maps()

    # ------------------------------------------------------------- aliases
    @property
    def image_encoder(self) -> nn.Module:
        """The image encoder (mmdet's name: ``backbone``)."""
        return self.backbone

    @property
    def head(self) -> nn.Module:
        """The dense head (mmdet's name: ``bbox_head``)."""
        return self.bbox_head

    # ------------------------------------------------------------- building
    @staticmethod
    def _check_modalities(modalities: Sequence[str]) -> Tuple[str, ...]:
        if isinstance(modalities, str):
            modalities = (modalities, )
        modalities = tuple(modalities)
        if ('image' not in modalities or any(m not in MODALITIES
                                             for m in modalities)
                or len(set(modalities)) != len(modalities)):
            raise ValueError(
                f'modalities must be ("image", "text") or ("image",) for a '
                f'detector (boxes come from the image), got {modalities}')
        return modalities

    def _check_fused_maps(self) -> None:
        """Each fused map has its level's height and width and ``map_dim``
        channels (a strided fusion would misplace every anchor)."""
        maps = probe_image_maps(self.backbone, self.neck)
        fusions = level_fusions(self.fusion, len(maps))
        modules = [*fusions, self.text_encoder]
        modes = [m.training for m in modules]
        try:
            for m in modules:
                m.eval()
            with torch.no_grad():
                ids = torch.ones(1, 1, dtype=torch.long,
                                 device=maps[0].device)
                mask = torch.ones(1, 1, dtype=torch.bool,
                                  device=maps[0].device)
                text = self.text_encoder(ids, mask, mask[:, 0])
                for level, (fmap, fusion) in enumerate(zip(maps, fusions)):
                    out = fusion(ModalityFeatures.from_map(fmap), text).map
                    if out is None or out.shape[-2:] != fmap.shape[-2:] or \
                            out.shape[1] != fusion.map_dim:
                        got = None if out is None else tuple(out.shape)
                        raise ValueError(
                            f'{type(fusion).__name__} must return a map of '
                            f'its input size for a dense head: level '
                            f'{level} is {tuple(fmap.shape)} but the fused '
                            f'map is {got} (map_dim {fusion.map_dim}). Use '
                            'strides of 1 (e.g. model/fusion=film_det).')
        finally:
            for m, mode in zip(modules, modes):
                m.train(mode)

    # ------------------------------------------------------------ features
    def _presence(self, inputs: Dict[str, Tensor], batch_size: int,
                  device: torch.device) -> Tuple[Tensor, Tensor]:
        """``(B,)`` image and text presence after ``modalities``."""
        ones = torch.ones(batch_size, dtype=torch.bool, device=device)
        image = inputs.get('image_present', ones).to(device).bool()
        text = inputs.get('text_present', ones).to(device).bool()
        if 'text' not in self.modalities:
            text = torch.zeros_like(text)
        return image, text

    def fuse(self, inputs: Dict[str, Tensor],
             return_attention: bool = False) -> List[FusionOutput]:
        """One :class:`FusionOutput` per image level."""
        if not isinstance(inputs, dict):
            raise TypeError(
                'TextConditionedDetector takes the inputs dict of '
                'MultimodalDetDataPreprocessor (img, text_ids, text_mask, '
                f'...), got {type(inputs).__name__}')
        img = inputs['img']
        image_present, text_present = self._presence(inputs, img.shape[0],
                                                     img.device)
        maps = image_maps(self.backbone, img, self.neck)
        text = self.text_encoder(inputs['text_ids'], inputs['text_mask'],
                                 text_present)
        keep = image_present[:, None, None, None]
        outs = []
        fusions = level_fusions(self.fusion, len(maps))
        for fmap, fusion in zip(maps, fusions):
            fmap = fmap * keep.to(fmap.dtype)  # absent images: zeros
            outs.append(fusion(ModalityFeatures.from_map(fmap, image_present),
                               text, return_attention=return_attention))
        return outs

    def extract_feat(self, batch_inputs: Dict[str, Tensor]
                     ) -> Tuple[Tensor, ...]:
        """The fused map of every level, for the head."""
        return tuple(out.map for out in self.fuse(batch_inputs))

    def loss(self, batch_inputs: Dict[str, Tensor],
             batch_data_samples) -> Dict[str, Tensor]:
        """mmdet's single-stage loss, each term summed over the levels
        (``loss_cls``, ``loss_bbox`` as tensors, as mmengine would log
        them), so every mmfusion model returns tensor losses."""
        losses = super().loss(batch_inputs, batch_data_samples)
        return {k: sum(v) if isinstance(v, (list, tuple)) else v
                for k, v in losses.items()}
