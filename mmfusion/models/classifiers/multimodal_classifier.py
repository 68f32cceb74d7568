"""An image + text classifier: encoders, fusion block, classification head."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from mmfusion.models.fusions.base_fusion import MAP, FusionOutput
from mmfusion.models.utils.fusion_builder import (ModuleCfg, build_fusions,
                                                  build_image_trunk,
                                                  build_module,
                                                  build_text_encoder,
                                                  fusion_input_kind,
                                                  image_maps, level_fusions)
from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures, MultimodalDataSample

MODALITIES = ('image', 'text')


@MODELS.register_module()
class MultimodalClassifier(BaseModel):
    """Classify (image, text) pairs.

    ``inputs`` (from :class:`MultimodalDataPreprocessor`) -> image encoder
    (a tuple of maps, e.g. SmallCNN or mmdet's ResNet) -> optional neck
    (tuple -> tuple, e.g. mmdet's FPN) -> per level, the fusion block with
    the text encoder's :class:`ModalityFeatures` -> pooled vectors averaged
    over levels -> head.

    Sizes are found, not configured: the image channels of each level come
    from one dummy forward of a ``1x3x64x64`` image at build time (a neck
    config without ``in_channels`` gets the image encoder's levels, then
    the neck's levels are measured); the fusion gets ``image_dim`` (that
    level's channels) and ``text_dim`` (the text encoder's ``out_dim``),
    the head ``in_channels`` (the fusion's ``out_dim``) and a text encoder
    config without ``vocab_size`` the tokenizer's ``max_vocab_size`` --
    each unless the config sets it.

    The fusion is fed image maps when it accepts them (``'map'`` in its
    ``input_kinds``), pooled vectors (spatial mean) otherwise;
    ``fusion_input`` forces one kind and fails at build time, naming the
    blocks that fit, when the block cannot take it.

    Missing modalities: a sample whose ``image_present``/``text_present`` is
    False has zero features for that modality. ``modalities`` drops one
    modality for every sample (unimodal baselines: ``('image',)`` ignores
    the text), the rest of the model unchanged. ``modality_dropout`` drops
    a modality per sample with the given probability in training only; a
    sample never loses both (where both draws drop, the text is kept).

    Args:
        image_encoder: image backbone config or module; returns a tuple of
            ``(B, C_l, H_l, W_l)`` maps (a single tensor is wrapped).
        text_encoder: text encoder config or module, with ``out_dim`` and
            ``forward(ids, mask, present) -> ModalityFeatures``.
        fusion: a :class:`BaseFusion` config or module.
        head: classification head config or module (``loss``/``predict``).
        neck: optional neck config or module on the image maps.
        data_preprocessor: config of the data preprocessor (default: a
            :class:`MultimodalDataPreprocessor` with default settings).
        modalities: modalities the model uses, a non-empty subset of
            ``('image', 'text')``.
        share_fusion: with several image levels, one fusion block for all
            (requires equal channels) or one per level.
        modality_dropout: per-modality drop probability in training, e.g.
            ``{'text': 0.1}``.
        fusion_input: ``'map'``, ``'vector'`` or None (automatic, see above).
        return_attention: store the fusion's attention weights on the data
            samples in ``predict`` mode (also a ``forward`` argument).
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
                 share_fusion: bool = True,
                 modality_dropout: Optional[Dict[str, float]] = None,
                 fusion_input: Optional[str] = None,
                 return_attention: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='MultimodalDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            # Built here, in mmfusion's registry, so no default scope is
            # needed to find MultimodalDataPreprocessor.
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.modalities = self._check_modalities(modalities)
        self.modality_dropout = self._check_dropout(modality_dropout)
        self.return_attention = return_attention

        self.image_encoder, self.neck, channels = build_image_trunk(
            image_encoder, neck)
        self.image_channels: Tuple[int, ...] = channels
        self.text_encoder = build_text_encoder(text_encoder,
                                               self.data_preprocessor)

        self.image_kind: str = fusion_input_kind(fusion, fusion_input)
        self.fusion = build_fusions(fusion, self.image_channels,
                                    self.text_encoder.out_dim, share_fusion)
        self.share_fusion = not isinstance(self.fusion, nn.ModuleList)
        first = level_fusions(self.fusion, len(self.image_channels))[0]
        self.head = build_module(head, in_channels=first.out_dim)

    # ------------------------------------------------------------- building
    @staticmethod
    def _check_modalities(modalities: Sequence[str]) -> Tuple[str, ...]:
        if isinstance(modalities, str):
            modalities = (modalities,)
        modalities = tuple(modalities)
        unknown = [m for m in modalities if m not in MODALITIES]
        if unknown or not modalities or len(set(modalities)) != len(
                modalities):
            raise ValueError(
                f'modalities must be a non-empty subset of {MODALITIES} '
                f'without repeats, got {modalities}')
        return modalities

    @staticmethod
    def _check_dropout(cfg: Optional[Dict[str, float]]) -> Dict[str, float]:
        cfg = dict(cfg or {})
        for key, p in cfg.items():
            if key not in MODALITIES:
                raise ValueError(f'modality_dropout keys must be in '
                                 f'{MODALITIES}, got {key!r}')
            if not 0.0 <= float(p) < 1.0:
                raise ValueError(f'modality_dropout[{key!r}] must be in '
                                 f'[0, 1), got {p}')
        return {k: float(v) for k, v in cfg.items()}

    def _image_maps(self, img: Tensor) -> Tuple[Tensor, ...]:
        """Image encoder (+ neck) output as a tuple of maps."""
        return image_maps(self.image_encoder, img, self.neck)

    # ------------------------------------------------------------ features
    def _presence(self, inputs: Dict[str, Tensor], batch_size: int,
                  device: torch.device) -> Tuple[Tensor, Tensor]:
        """``(B,)`` image and text presence after modalities and dropout."""
        ones = torch.ones(batch_size, dtype=torch.bool, device=device)
        image = inputs.get('image_present', ones).to(device).bool()
        text = inputs.get('text_present', ones).to(device).bool()
        if 'image' not in self.modalities:
            image = torch.zeros_like(image)
        if 'text' not in self.modalities:
            text = torch.zeros_like(text)
        if self.training and self.modality_dropout:
            p_img = self.modality_dropout.get('image', 0.0)
            p_txt = self.modality_dropout.get('text', 0.0)
            kept_img = image & (torch.rand(batch_size, device=device) >= p_img)
            kept_txt = text & (torch.rand(batch_size, device=device) >= p_txt)
            # Dropout never takes a sample's last modality (an input-less
            # sample teaches nothing): keep the text, else the image.
            lost = (image | text) & ~kept_img & ~kept_txt
            kept_txt = kept_txt | (lost & text)
            kept_img = kept_img | (lost & ~text & image)
            image, text = kept_img, kept_txt
        return image, text

    def extract_level_feats(self, inputs: Dict[str, Tensor],
                            return_attention: bool = False
                            ) -> List[FusionOutput]:
        """One :class:`FusionOutput` per image level."""
        img = inputs['img']
        ids, mask = inputs['text_ids'], inputs['text_mask']
        image_present, text_present = self._presence(inputs, img.shape[0],
                                                     img.device)
        maps = self._image_maps(img)
        text = self.text_encoder(ids, mask, text_present)
        fusions = level_fusions(self.fusion, len(maps))
        outs = []
        keep = image_present[:, None, None, None]
        for fmap, fusion in zip(maps, fusions):
            fmap = fmap * keep.to(fmap.dtype)  # absent images: zeros
            if self.image_kind == MAP:
                image = ModalityFeatures.from_map(fmap, image_present)
                image.pixels = img * keep.to(img.dtype)
            else:
                image = ModalityFeatures(pooled=fmap.mean(dim=(2, 3)),
                                         present=image_present)
            outs.append(fusion(image, text,
                               return_attention=return_attention))
        return outs

    def extract_feat(self, inputs: Dict[str, Tensor],
                     return_attention: bool = False) -> FusionOutput:
        """Fused features: ``pooled`` averaged over the image levels.

        ``map`` and ``attention`` are those of the last (usually coarsest)
        level; :meth:`extract_level_feats` gives every level's.
        """
        outs = self.extract_level_feats(inputs, return_attention)
        pooled = outs[0].pooled if len(outs) == 1 else torch.stack(
            [o.pooled for o in outs]).mean(0)
        last = outs[-1]
        # Passed on unevaluated: computed only if the caller reads it.
        return FusionOutput(pooled=pooled, map=lambda: last.map,
                            attention=last.attention)

    # -------------------------------------------------------------- forward
    def forward(self, inputs: Dict[str, Tensor],
                data_samples: Optional[List[MultimodalDataSample]] = None,
                mode: str = 'tensor',
                return_attention: Optional[bool] = None
                ) -> Union[Tensor, Dict[str, Tensor],
                           List[MultimodalDataSample]]:
        """Run the model.

        Args:
            inputs: the preprocessor's ``inputs`` dict.
            data_samples: samples with ``gt_label`` (``loss``) or to fill
                (``predict``).
            mode: ``'tensor'`` -> logits ``(B, K)``; ``'loss'`` -> dict of
                losses; ``'predict'`` -> data samples with ``pred_score`` and
                ``pred_label`` (and ``attention`` ``(heads, L_text, H * W)``
                with meta ``attention_hw`` when attention is asked for and
                the fusion gives it).
            return_attention: overrides the ``return_attention`` attribute
                in ``predict`` mode.
        """
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs).pooled)
        if mode == 'loss':
            if data_samples is None:
                raise ValueError("mode='loss' needs data_samples with "
                                 '`gt_label`')
            return self.head.loss(self.extract_feat(inputs).pooled,
                                  data_samples)
        if mode == 'predict':
            want = self.return_attention if return_attention is None \
                else return_attention
            feats = self.extract_feat(inputs, return_attention=want)
            samples = self.head.predict(feats.pooled, data_samples)
            if want and feats.attention is not None:
                hw = tuple(feats.map.shape[-2:]) if feats.map is not None \
                    else None
                for sample, attn in zip(samples, feats.attention.detach()):
                    sample.set_data(dict(attention=attn))
                    if hw is not None:
                        sample.set_metainfo(dict(attention_hw=hw))
            return samples
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got "
                         f'{mode!r}')
