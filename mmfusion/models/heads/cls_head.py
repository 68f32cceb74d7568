"""Single-label classification head."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmfusion.registry import MODELS
from mmfusion.structures import MultimodalDataSample


@MODELS.register_module()
class ClsHead(BaseModule):
    """MLP on fused features -> class logits, with cross-entropy loss.

    The MLP is ``Linear + ReLU (+ Dropout)`` per ``hidden_dims`` entry, then
    a Linear to ``num_classes`` (a single Linear when ``hidden_dims`` is
    empty).

    Args:
        in_channels: channels of the fused features (the model sets it to
            the fusion's ``out_dim`` unless a config does).
        num_classes: number of classes ``K``.
        hidden_dims: hidden layer sizes.
        dropout: dropout after each hidden layer.
        label_smoothing: cross-entropy label smoothing.
        loss_weight: factor on the loss.
        init_cfg: mmengine weight-initialisation config.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 hidden_dims: Sequence[int] = (256,), dropout: float = 0.0,
                 label_smoothing: float = 0.0, loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.loss_weight = loss_weight
        layers: List[nn.Module] = []
        c_in = in_channels
        for hidden in hidden_dims:
            layers += [nn.Linear(c_in, hidden), nn.ReLU(inplace=True),
                       nn.Dropout(dropout)]
            c_in = hidden
        layers.append(nn.Linear(c_in, num_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(self, feats: Tensor) -> Tensor:
        """``(B, in_channels)`` -> logits ``(B, num_classes)``."""
        return self.mlp(feats)

    def _targets(self, data_samples: Sequence[MultimodalDataSample],
                 device: torch.device) -> Tensor:
        """``(B,)`` long class indices from each sample's ``gt_label``."""
        labels = []
        for sample in data_samples:
            if 'gt_label' not in sample:
                raise KeyError('a data sample has no `gt_label` to train on')
            label = torch.as_tensor(sample.gt_label).reshape(-1)
            if label.numel() != 1:
                raise ValueError(
                    f'{type(self).__name__} expects one class index per '
                    f'sample, got gt_label of shape {tuple(label.shape)} '
                    '(use MultiLabelClsHead for multi-hot labels)')
            labels.append(label)
        return torch.cat(labels).to(device=device, dtype=torch.long)

    def loss(self, feats: Tensor,
             data_samples: Sequence[MultimodalDataSample]
             ) -> Dict[str, Tensor]:
        """``{'loss_cls': scalar}``: cross-entropy against ``gt_label``."""
        logits = self(feats)
        target = self._targets(data_samples, logits.device)
        loss = F.cross_entropy(logits, target,
                               label_smoothing=self.label_smoothing)
        return dict(loss_cls=loss * self.loss_weight)

    def predict(self, feats: Tensor,
                data_samples: Optional[Sequence[MultimodalDataSample]] = None
                ) -> List[MultimodalDataSample]:
        """Set ``pred_score`` ``(K,)`` (softmax) and ``pred_label`` ``(1,)``.

        New samples are made when ``data_samples`` is None.
        """
        scores = self(feats).softmax(dim=-1).detach()
        labels = scores.argmax(dim=-1, keepdim=True)
        if data_samples is None:
            data_samples = [MultimodalDataSample() for _ in range(len(scores))]
        for sample, score, label in zip(data_samples, scores, labels):
            sample.set_data(dict(pred_score=score, pred_label=label))
        return list(data_samples)
