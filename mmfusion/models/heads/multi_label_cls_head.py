"""Multi-label classification head."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmfusion.registry import MODELS
from mmfusion.structures import MultimodalDataSample
from .cls_head import ClsHead


@MODELS.register_module()
class MultiLabelClsHead(ClsHead):
    """MLP -> one logit per class, with binary cross-entropy per class.

    ``gt_label`` is a ``(K,)`` multi-hot vector. Predictions:
    ``pred_score`` ``(K,)`` sigmoid probabilities and ``pred_label`` ``(K,)``
    long 0/1 (``score >= threshold``).

    Args:
        in_channels: channels of the fused features.
        num_classes: number of classes ``K``.
        hidden_dims: hidden layer sizes.
        dropout: dropout after each hidden layer.
        threshold: score from which a class is predicted.
        loss_weight: factor on the loss.
        pos_weight: per-class weight of positive examples (BCE
            ``pos_weight``), or None.
        init_cfg: mmengine weight-initialisation config.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 hidden_dims: Sequence[int] = (256,), dropout: float = 0.0,
                 threshold: float = 0.5, loss_weight: float = 1.0,
                 pos_weight: Optional[Sequence[float]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, num_classes, hidden_dims=hidden_dims,
                         dropout=dropout, loss_weight=loss_weight,
                         init_cfg=init_cfg)
        self.threshold = threshold
        if pos_weight is not None:
            if len(pos_weight) != num_classes:
                raise ValueError(f'pos_weight has {len(pos_weight)} values '
                                 f'for {num_classes} classes')
            self.register_buffer('pos_weight',
                                 torch.tensor(pos_weight, dtype=torch.float),
                                 persistent=False)
        else:
            self.pos_weight = None

    def _targets(self, data_samples: Sequence[MultimodalDataSample],
                 device: torch.device) -> Tensor:
        """``(B, K)`` float multi-hot targets."""
        labels = []
        for sample in data_samples:
            if 'gt_label' not in sample:
                raise KeyError('a data sample has no `gt_label` to train on')
            label = torch.as_tensor(sample.gt_label).reshape(-1)
            if label.numel() != self.num_classes:
                raise ValueError(
                    f'{type(self).__name__} expects multi-hot gt_label of '
                    f'shape ({self.num_classes},), got {tuple(label.shape)}')
            labels.append(label)
        return torch.stack(labels).to(device=device, dtype=torch.float)

    def loss(self, feats: Tensor,
             data_samples: Sequence[MultimodalDataSample]
             ) -> Dict[str, Tensor]:
        """``{'loss_cls': scalar}``: mean binary cross-entropy."""
        logits = self(feats)
        target = self._targets(data_samples, logits.device)
        loss = F.binary_cross_entropy_with_logits(
            logits, target, pos_weight=self.pos_weight)
        return dict(loss_cls=loss * self.loss_weight)

    def predict(self, feats: Tensor,
                data_samples: Optional[Sequence[MultimodalDataSample]] = None
                ) -> List[MultimodalDataSample]:
        """Set ``pred_score`` ``(K,)`` (sigmoid), ``pred_label`` ``(K,)``."""
        scores = self(feats).sigmoid().detach()
        labels = (scores >= self.threshold).long()
        if data_samples is None:
            data_samples = [MultimodalDataSample() for _ in range(len(scores))]
        for sample, score, label in zip(data_samples, scores, labels):
            sample.set_data(dict(pred_score=score, pred_label=label))
        return list(data_samples)
