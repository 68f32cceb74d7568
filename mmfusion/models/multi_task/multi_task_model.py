"""One image encoder, text encoder and fusion feeding several task heads."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.utils import add_prefix
from torch import Tensor, nn

from mmfusion.models.classifiers.multimodal_classifier import MODALITIES
from mmfusion.models.fusions.base_fusion import FusionOutput
from mmfusion.models.segmentors import TextConditionedSegmentor
from mmfusion.models.utils.fusion_builder import (ModuleCfg, build_module,
                                                  level_fusions)
from mmfusion.registry import MODELS


@MODELS.register_module()
class MultiTaskModel(TextConditionedSegmentor):
    """Several heads on one shared image + text trunk.

    The trunk is :class:`TextConditionedSegmentor`'s (image encoder,
    optional neck, text encoder, the fusion block at every level). Each
    head in ``heads`` is a task, by name:

    - a *dense* head (an mmseg decode head, e.g. ``FCNHead``) reads the
      fused maps of every level and is trained on each sample's
      ``gt_sem_seg``; predictions are ``pred_sem_seg``/``seg_logits`` at
      ``ori_shape``, as for the segmentor (at most one dense head);
    - a *vector* head (e.g. :class:`ClsHead`) reads the fused pooled vector
      (the mean over levels of ``FusionOutput.pooled``, as the classifier
      does) and is trained on ``gt_label``; predictions are ``pred_score``
      and ``pred_label``.

    Every task's losses are multiplied by its ``loss_weights`` entry
    (default 1) and prefixed by its name (``seg.loss_ce``,
    ``count.loss_cls``). A head only sees the samples of the batch that
    have its target: a sample without ``gt_sem_seg`` (or ``gt_label``) adds
    no loss to that head, and a batch where no sample has it gives that
    head a zero loss (still connected to its parameters, so distributed
    training sees every parameter used). Metrics per task come from the
    evaluator, one metric per task with ``prefix`` set to the task's name.

    Args:
        image_encoder, text_encoder, fusion, neck, data_preprocessor,
            modalities, share_fusion, modality_dropout, train_cfg,
            test_cfg, init_cfg: as :class:`TextConditionedSegmentor`.
        heads: task name -> head config or module.
        loss_weights: task name -> factor on its losses.
    """

    def __init__(self,
                 image_encoder: ModuleCfg,
                 text_encoder: ModuleCfg,
                 fusion: ModuleCfg,
                 heads: Dict[str, ModuleCfg],
                 neck: Optional[ModuleCfg] = None,
                 loss_weights: Optional[Dict[str, float]] = None,
                 data_preprocessor: Optional[ModuleCfg] = None,
                 modalities: Sequence[str] = MODALITIES,
                 share_fusion: bool = True,
                 modality_dropout: Optional[Dict[str, float]] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not heads:
            raise ValueError('MultiTaskModel needs at least one head')
        self._head_cfgs = dict(heads)
        super().__init__(image_encoder=image_encoder,
                         text_encoder=text_encoder, fusion=fusion,
                         head=None, neck=neck,
                         data_preprocessor=data_preprocessor,
                         modalities=modalities, share_fusion=share_fusion,
                         modality_dropout=modality_dropout,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         init_cfg=init_cfg)
        weights = dict(loss_weights or {})
        unknown = sorted(set(weights) - set(heads))
        if unknown:
            raise ValueError(f'loss_weights names tasks {unknown} that are '
                             f'not heads ({sorted(heads)})')
        self.loss_weights = {t: float(weights.get(t, 1.0)) for t in heads}

    # ------------------------------------------------------------- building
    def _init_decode_head(self, decode_head) -> None:
        pooled_dim = level_fusions(self.fusion,
                                   len(self.image_channels))[0].out_dim
        self.heads = nn.ModuleDict()
        self.dense_task: Optional[str] = None
        for task, cfg in self._head_cfgs.items():
            if '.' in task or '/' in task:
                raise ValueError(f'task name {task!r} may not hold "." or '
                                 '"/" (they separate loss and metric names)')
            if isinstance(cfg, dict) and _is_dense(cfg):
                head = build_module(self._head_cfg(cfg))
            else:
                head = build_module(cfg, in_channels=pooled_dim)
            if isinstance(head, BaseDecodeHead):
                if self.dense_task is not None:
                    raise ValueError(
                        'MultiTaskModel supports one dense (segmentation) '
                        f'head; got {self.dense_task!r} and {task!r}')
                self.dense_task = task
            self.heads[task] = head
        if self.dense_task is not None:
            head = self.heads[self.dense_task]
            self.align_corners = head.align_corners
            self.num_classes = head.num_classes
            self.out_channels = head.out_channels

    def _init_auxiliary_head(self, auxiliary_head) -> None:
        if auxiliary_head is not None:
            raise ValueError('MultiTaskModel takes no auxiliary head')

    @property
    def decode_head(self) -> Optional[nn.Module]:
        """The dense head (mmseg's inference and post-processing use it)."""
        if self.dense_task is None:
            return None
        return self.heads[self.dense_task]

    @property
    def with_decode_head(self) -> bool:
        return self.dense_task is not None

    # ------------------------------------------------------------ features
    def _features(self, inputs: Dict[str, Tensor]
                  ) -> Tuple[Tuple[Tensor, ...], Tensor]:
        outs: List[FusionOutput] = self.extract_fused(inputs)
        maps = tuple(o.map for o in outs)
        pooled = outs[0].pooled if len(outs) == 1 else torch.stack(
            [o.pooled for o in outs]).mean(0)
        return maps, pooled

    @staticmethod
    def _target_key(head: nn.Module) -> str:
        return 'gt_sem_seg' if isinstance(head, BaseDecodeHead) \
            else 'gt_label'

    # -------------------------------------------------------------- forward
    def loss(self, inputs: Dict[str, Tensor], data_samples: list) -> dict:
        """Every task's losses on the samples that have its target."""
        maps, pooled = self._features(inputs)
        losses: Dict[str, Tensor] = {}
        for task, head in self.heads.items():
            key = self._target_key(head)
            keep = [i for i, s in enumerate(data_samples) if key in s]
            weight = self.loss_weights[task]
            if not keep:
                # Nothing to learn from: a zero that still reaches every
                # parameter of the head (DDP requires them all used).
                zero = sum(p.sum() for p in head.parameters()) * 0.0
                name = 'loss_ce' if key == 'gt_sem_seg' else 'loss_cls'
                losses[f'{task}.{name}'] = zero
                continue
            samples = [data_samples[i] for i in keep]
            if isinstance(head, BaseDecodeHead):
                idx = torch.as_tensor(keep, device=maps[0].device)
                feats = tuple(m.index_select(0, idx) for m in maps)
                task_losses = head.loss(feats, samples, self.train_cfg)
            else:
                idx = torch.as_tensor(keep, device=pooled.device)
                task_losses = head.loss(pooled.index_select(0, idx), samples)
            for name, value in task_losses.items():
                if 'loss' in name:
                    value = value * weight
                losses.update(add_prefix({name: value}, task))
        return losses

    def predict(self, inputs: Dict[str, Tensor],
                data_samples: Optional[list] = None) -> list:
        """Every head's prediction on every sample."""
        maps, pooled = self._features(inputs)
        if data_samples is not None:
            metas = [s.metainfo for s in data_samples]
        else:
            metas = self._default_metas(inputs)
        if self.dense_task is not None:
            seg_logits = self.decode_head.predict(maps, metas, self.test_cfg)
            data_samples = self.postprocess_result(seg_logits, data_samples)
        for task, head in self.heads.items():
            if task == self.dense_task:
                continue
            data_samples = head.predict(pooled, data_samples)
        return data_samples

    def _forward(self, inputs: Dict[str, Tensor],
                 data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """Raw outputs: task name -> logits (maps for the dense head)."""
        maps, pooled = self._features(inputs)
        return {task: head(maps) if task == self.dense_task else head(pooled)
                for task, head in self.heads.items()}


def _is_dense(cfg: dict) -> bool:
    """Whether a head config names an mmseg decode head (looked up in
    mmseg's registry, the default scope left as it is)."""
    name = cfg.get('type')
    if isinstance(name, type):
        return issubclass(name, BaseDecodeHead)
    if not isinstance(name, str):
        return False
    if cfg.get('_scope_') != 'mmseg' and not name.startswith('mmseg.'):
        return False
    from mmseg.registry import MODELS as MMSEG_MODELS
    cls = MMSEG_MODELS.get(name.split('.', 1)[-1])
    return isinstance(cls, type) and issubclass(cls, BaseDecodeHead)
