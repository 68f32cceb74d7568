"""FiLM: feature-wise linear modulation of image maps by the text."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, Optional, Sequence, Union

import torch

from torch import Tensor, nn

from mmfusion.models.image_encoders.small_cnn import coord_conv2d
from mmfusion.models.utils import ObjectCounts, SpatialPooling
from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import MAP, BaseFusion, FusionOutput


class _FiLMBlock(nn.Module):
    """FiLM residual block (Perez et al. 2018, Fig. 3).

    ``[coords] -> conv1x1 -> ReLU -> (r) -> conv3x3 -> BN (no affine) ->
    FiLM -> ReLU -> + r``. A block with ``stride > 1`` downsamples in its
    first conv, which is then 3x3 so no position is skipped unseen.
    """

    def __init__(self, channels: int, coord_conv: bool,
                 stride: int = 1) -> None:
        super().__init__()
        self.coord_conv = coord_conv
        k = 1 if stride == 1 else 3
        self.conv1 = nn.Conv2d(channels + (2 if coord_conv else 0), channels,
                               k, stride=stride, padding=k // 2)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        """``x`` ``(B, C, H, W)``; ``gamma``/``beta`` ``(B, C)``."""
        residual = self.relu(coord_conv2d(self.conv1, x) if self.coord_conv
                             else self.conv1(x))
        y = self.norm(self.conv2(residual))
        # (1 + gamma): a generator output near 0 leaves the features as they
        # are, so training starts close to an unconditioned network.
        y = y * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        return self.relu(y) + residual


class _PlainFiLMBlock(nn.Module):
    """One conv per block: ``[coords] -> conv3x3 (stride) -> BN (no affine)
    -> FiLM -> ReLU`` (+ identity when the shape is kept). About a third of
    the residual block's compute, for CPU budgets."""

    def __init__(self, channels: int, coord_conv: bool, stride: int = 1,
                 in_channels: Optional[int] = None) -> None:
        super().__init__()
        in_channels = in_channels or channels
        self.coord_conv = coord_conv
        self.residual = stride == 1 and in_channels == channels
        self.conv = nn.Conv2d(in_channels + (2 if coord_conv else 0),
                              channels, 3, stride=stride, padding=1,
                              bias=False)
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        y = self.norm(coord_conv2d(self.conv, x) if self.coord_conv
                      else self.conv(x))
        y = self.relu(y * (1 + gamma[:, :, None, None]) +
                      beta[:, :, None, None])
        return y + x if self.residual else y


@MODELS.register_module()
class FiLMFusion(BaseFusion):
    """Text-conditioned residual blocks over the image map (FiLM, CLEVR).

    The image map is projected to ``channels`` (1x1 conv + ReLU, skipped
    when ``image_dim == channels``), passed through ``num_blocks`` FiLM
    residual blocks whose per-channel scale ``1 + gamma`` and shift ``beta``
    come from the text's pooled vector (one Linear predicts them for all
    blocks), then through a 1x1 conv to ``out_dim`` + ReLU -> ``map``;
    ``pooled`` is the global max over positions. For samples without text
    ``gamma = beta = 0``: the blocks run unmodulated. Only the text's pooled
    vector is used, so padding tokens never matter. No attention.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        num_blocks: FiLM residual blocks.
        channels: width of the blocks.
        out_dim: output channels.
        coord_conv: append x/y coordinate channels before each block's first
            conv and before the output conv (as in the paper).
        dropout: dropout on the output map.
        strides: per-block stride (default all 1). Striding lets the text
            modulate the image early, at high resolution, and still end on
            a small map: the image encoder can then be a shallow stem.
        pooling: statistics that ``pooled`` concatenates, a subset of
            ``max`` (as in the paper: finds the referred object), ``mean``
            (counts), ``argmax`` (soft-argmax coordinates of each channel:
            compares positions) and ``peak`` (local maxima: counts blobs),
            see :class:`SpatialPooling`.
        text_to_output: append the text's pooled vector to ``pooled`` so
            the head sees which question was asked.
        block: ``residual`` (the paper's two-conv residual block) or
            ``plain`` (one 3x3 conv per block, a third of the compute).
        modulate_input: also FiLM the incoming image map itself (scale and
            shift of its ``image_dim`` channels, then ReLU) before the first
            block: with a shallow stem the text then selects colours and
            shapes at full resolution.
        pool_blocks: 0-based indices of blocks whose output maps are pooled
            too (with ``block_pooling``) and appended to ``pooled``: finer
            maps than the output's, where a count is read from area and
            boundary statistics of small objects, and a shorter gradient
            path to the early blocks.
        pool_input: pool the (modulated) input map too, like ``pool_blocks``.
        block_pooling: statistics for ``pool_blocks``/``pool_input`` (see
            ``pooling``).
        object_counts: ``K > 0`` appends ``K + 1`` soft object counts to
            ``pooled`` (:class:`ObjectCounts`): objects are the connected
            components of a foreground on ``count_source``, each scored by
            ``count_maps``.
        count_source: the map objects are found on: ``'input'`` (the
            incoming, unmodulated image map) or ``'pixels'`` (the
            preprocessed image, ``ModalityFeatures.pixels``: full resolution,
            where small objects do not merge and their moments are exact).
        count_proposals: ``'learnt'`` (a predicted foreground) or
            ``'background'`` (positions that differ from the image's border
            colour), see :class:`ObjectCounts`.
        count_bg_threshold: how far (in normalised pixel units) a position
            must differ from the border colour to be an object, for
            ``count_proposals='background'``.
        count_maps: maps that describe each object for ``object_counts``,
            upsampled to ``count_source`` and concatenated: ``'output'``
            (the output map), ``'input'`` (the modulated input map),
            ``'pixels'`` (the image: each object's mean colour) and 0-based
            block indices (finer, text-modulated maps where a small object's
            shape is still resolved).
        count_hidden: ``> 0``: objects are scored by an MLP of this width
            over their description, not a linear layer.
        count_moments: also describe objects by the normalised moments of
            their foreground mass (needs ``count_hidden`` and
            ``count_query``).
        count_query: the text's pooled vector enters the object scorer.
        count_attend: ``A > 0``: ``A`` text-conditioned attentions over the
            objects, each appending the attended object's centroid (see
            :class:`ObjectCounts` ``attend``); needs ``object_counts``.
        count_attend_features: each attention also reads out the attended
            object's description (mean colour or fine-map features, and
            its moments), see :class:`ObjectCounts` ``attend_features``.
        count_query_grad: let the object scorer's gradient reach the text
            vector it reads (``count_query``); ``False`` detaches it, so
            counting cannot reshape the text features other questions need.
        pixel_dim: channels of ``ModalityFeatures.pixels`` (3: RGB).
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({MAP})

    def __init__(self, image_dim: int, text_dim: int, num_blocks: int = 4,
                 channels: int = 128, out_dim: int = 256,
                 coord_conv: bool = True, dropout: float = 0.0,
                 strides: Optional[Sequence[int]] = None,
                 pooling: Sequence[str] = ('max', ),
                 text_to_output: bool = False, block: str = 'residual',
                 modulate_input: bool = False,
                 pool_blocks: Sequence[int] = (), pool_input: bool = False,
                 block_pooling: Sequence[str] = ('max', 'mean'),
                 object_counts: int = 0,
                 count_maps: Sequence[Union[str, int]] = ('output', ),
                 count_hidden: int = 0,
                 count_moments: bool = False,
                 count_query: bool = False,
                 count_source: str = 'input',
                 count_proposals: str = 'learnt',
                 count_bg_threshold: float = 0.5,
                 count_query_grad: bool = True,
                 count_attend: int = 0,
                 count_attend_features: bool = False,
                 pixel_dim: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        if num_blocks < 1:
            raise ValueError('num_blocks must be >= 1')
        strides = tuple(strides) if strides is not None else (1, ) * num_blocks
        if len(strides) != num_blocks:
            raise ValueError(f'strides {strides} must give one stride per '
                             f'block (num_blocks={num_blocks})')
        if block not in ('residual', 'plain'):
            raise ValueError(f"block must be 'residual' or 'plain', got "
                             f'{block!r}')
        if isinstance(pooling, str):
            pooling = (pooling, )
        self.pool = SpatialPooling(pooling, out_dim)
        self.text_to_output = text_to_output
        self.pool_blocks = tuple(int(i) for i in pool_blocks)
        bad = [i for i in self.pool_blocks if not 0 <= i < num_blocks]
        if bad:
            raise ValueError(f'pool_blocks {list(self.pool_blocks)} must be '
                             f'block indices in [0, {num_blocks - 1}]')
        self.pool_input = pool_input
        if isinstance(block_pooling, str):
            block_pooling = (block_pooling, )
        self.block_pool = nn.ModuleDict(
            {str(i): SpatialPooling(block_pooling, channels)
             for i in self.pool_blocks})
        if pool_input:
            self.block_pool['input'] = SpatialPooling(block_pooling,
                                                      image_dim)
        if isinstance(count_maps, (str, int)):
            count_maps = (count_maps, )
        self.count_maps = tuple(count_maps)
        map_dims = {'output': out_dim, 'input': image_dim,
                    'pixels': pixel_dim,
                    **{i: channels for i in range(num_blocks)}}
        bad = [m for m in self.count_maps if m not in map_dims]
        if bad or not self.count_maps:
            raise ValueError(f'count_maps {list(self.count_maps)} must name '
                             "'output', 'input', 'pixels' or block indices "
                             f'in [0, {num_blocks - 1}]')
        if count_source not in ('input', 'pixels'):
            raise ValueError(f"count_source must be 'input' or 'pixels', "
                             f'got {count_source!r}')
        self.count_source = count_source
        if count_attend and object_counts <= 0:
            raise ValueError('count_attend attends over the objects that '
                             'object_counts finds: set object_counts > 0')
        self.count_query_grad = count_query_grad
        self._needs_pixels = object_counts > 0 and (
            count_source == 'pixels' or 'pixels' in self.count_maps)
        self.object_counts = (ObjectCounts(
            pixel_dim if count_source == 'pixels' else image_dim,
            [map_dims[m] for m in self.count_maps],
            object_counts, hidden=count_hidden, moments=count_moments,
            query_dim=text_dim if count_query else 0,
            proposals=count_proposals, bg_threshold=count_bg_threshold,
            attend=count_attend, attend_features=count_attend_features)
                              if object_counts > 0 else None)
        self._map_dim = out_dim
        self._out_dim = (self.pool.out_dim +
                         (self.object_counts.out_dim if object_counts > 0
                          else 0) +
                         sum(p.out_dim for p in self.block_pool.values()) +
                         (text_dim if text_to_output else 0))
        self.num_blocks = num_blocks
        self.channels = channels
        self.coord_conv = coord_conv
        if block == 'plain':
            # The first plain block maps image_dim -> channels itself.
            self.proj = nn.Identity()
        elif image_dim != channels:
            self.proj = nn.Sequential(nn.Conv2d(image_dim, channels, 1),
                                      nn.ReLU(inplace=True))
        else:
            self.proj = nn.Identity()
        self.modulate_input = modulate_input
        self.film_generator = nn.Linear(
            text_dim, 2 * channels * num_blocks +
            (2 * image_dim if modulate_input else 0))
        if block == 'plain':
            self.blocks = nn.ModuleList(
                _PlainFiLMBlock(channels, coord_conv, s,
                                image_dim if i == 0 else channels)
                for i, s in enumerate(strides))
        else:
            self.blocks = nn.ModuleList(
                _FiLMBlock(channels, coord_conv, s) for s in strides)
        self.out_conv = nn.Sequential(
            nn.Conv2d(channels + (2 if coord_conv else 0), out_dim, 1),
            nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)

    def _count_query(self, text: ModalityFeatures) -> Optional[Tensor]:
        """The text vector the object scorer reads (None without one)."""
        if self.object_counts is None or self.object_counts.query is None:
            return None
        q = text.get_pooled()
        return q if self.count_query_grad else q.detach()

    @property
    def out_dim(self) -> int:
        return self._out_dim

    @property
    def map_dim(self) -> int:
        return self._map_dim

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        if image.map is None:
            raise ValueError('FiLMFusion needs image feature maps '
                             '(ModalityFeatures.map)')
        if self._needs_pixels and image.pixels is None:
            raise ValueError(
                "FiLMFusion: count_source='pixels' or 'pixels' in count_maps "
                'needs the image itself (ModalityFeatures.pixels), which '
                'this model does not pass; use count_source=input and '
                'count_maps without pixels')
        x = fine = image.map
        if self.count_source == 'pixels':
            fine = image.pixels
        params = self.film_generator(text.get_pooled())
        present = text.get_present().to(params.dtype).unsqueeze(-1)
        params = params * present
        if self.modulate_input:
            d = self.image_dim
            g0, b0 = params[:, :d], params[:, d:2 * d]
            params = params[:, 2 * d:]
            x = torch.relu(x * (1 + g0[:, :, None, None]) +
                           b0[:, :, None, None])
        extra = []
        count_inputs = {'input': x, 'pixels': image.pixels}
        if self.pool_input:
            extra.append(self.block_pool['input'](x))
        x = self.proj(x)
        # (B, num_blocks, 2, C): gamma and beta of each block.
        params = params.reshape(-1, self.num_blocks, 2, self.channels)
        for i, block in enumerate(self.blocks):
            x = block(x, params[:, i, 0], params[:, i, 1])
            if i in self.pool_blocks:
                extra.append(self.block_pool[str(i)](x))
            count_inputs[i] = x
        out_map = coord_conv2d(self.out_conv[0], x) if self.coord_conv \
            else self.out_conv[0](x)
        out_map = self.dropout(self.out_conv[1](out_map))
        if self.object_counts is not None:
            count_inputs['output'] = out_map
            extra.append(self.object_counts(
                fine, [count_inputs[m] for m in self.count_maps],
                self._count_query(text)))
        pooled = torch.cat([self.pool(out_map)] + extra, dim=1)
        if self.text_to_output:
            pooled = torch.cat([pooled, text.get_pooled()], dim=1)
        return FusionOutput(pooled=pooled, map=out_map)
