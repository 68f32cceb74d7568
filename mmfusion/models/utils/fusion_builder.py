"""Build-time helpers of the image + text models: build parts from configs,
measure the image levels with a dummy forward and build the fusion block(s)
over those levels.

Shared by :class:`MultimodalClassifier`, :class:`TextConditionedDetector`,
:class:`TextConditionedSegmentor` and :class:`MultiTaskModel`.

Not exported by :mod:`mmfusion.models.utils`: this module imports the
fusion package, whose blocks import :mod:`mmfusion.models.utils`; import it
as ``mmfusion.models.utils.fusion_builder``.
"""
from __future__ import annotations

import copy
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from mmfusion.models.fusions.base_fusion import (MAP, VECTOR, BaseFusion,
                                                 check_input_kind)
from mmfusion.registry import MODELS

#: A part given as a config dict (built in ``MODELS``) or a ready module.
ModuleCfg = Union[dict, nn.Module]

#: Side of the zero image used to measure the image levels at build time.
PROBE_SIZE = 64


def build_module(cfg: ModuleCfg, **defaults) -> nn.Module:
    """Build ``cfg`` in mmfusion's ``MODELS``; a module passes through.

    ``defaults`` fill keys the config does not set (the config is copied,
    not changed). mmdet and mmseg parts resolve in their own registries
    through their ``_scope_``.
    """
    if isinstance(cfg, nn.Module):
        return cfg
    if not isinstance(cfg, dict):
        raise TypeError(f'expected a config dict or an nn.Module, got '
                        f'{type(cfg).__name__}')
    cfg = copy.deepcopy(cfg)
    for key, value in defaults.items():
        cfg.setdefault(key, value)
    return MODELS.build(cfg)


def build_text_encoder(text_encoder: ModuleCfg,
                       data_preprocessor: Optional[nn.Module]) -> nn.Module:
    """The text encoder of a model whose data preprocessor tokenizes.

    - Its ``vocab_size`` defaults to the tokenizer's ``max_vocab_size``;
    - a pretrained encoder that brings its own tokenizer (``model/
      text_encoder=minilm``) gives it to the preprocessor
      (:func:`~mmfusion.models.tokenizers.adopt_text_encoder_tokenizer`);
    - a ``vocab_size`` below the tokenizer's ids fails here, not as an index
      error in the first forward, and so does an encoder without
      ``out_dim`` (the fusion blocks are sized by it).
    """
    from mmfusion.models.tokenizers import adopt_text_encoder_tokenizer
    text_defaults = {}
    tokenizer = getattr(data_preprocessor, 'tokenizer', None)
    if tokenizer is not None:
        text_defaults['vocab_size'] = tokenizer.max_vocab_size
    encoder = build_module(text_encoder, **text_defaults)
    if data_preprocessor is not None:
        adopt_text_encoder_tokenizer(data_preprocessor, encoder)
    tokenizer = getattr(data_preprocessor, 'tokenizer', None)
    vocab_size = getattr(encoder, 'vocab_size', None)
    max_ids = getattr(tokenizer, 'max_vocab_size', None)
    if isinstance(vocab_size, int) and isinstance(max_ids, int) and \
            vocab_size < max_ids:
        raise ValueError(
            f'the text encoder has vocab_size={vocab_size} but the '
            f'tokenizer makes ids up to max_vocab_size={max_ids}: raise '
            'vocab_size or leave it out of the config (it then follows the '
            'tokenizer)')
    if not hasattr(encoder, 'out_dim'):
        raise AttributeError(f'the text encoder {type(encoder).__name__} has '
                             'no `out_dim`')
    return encoder


def image_maps(image_encoder: nn.Module, img: Tensor,
               neck: Optional[nn.Module] = None) -> Tuple[Tensor, ...]:
    """The image levels of ``img``.

    Args:
        image_encoder: maps ``(B, 3, H, W)`` images to a tuple of ``(B,
            C_l, H_l, W_l)`` maps (a single tensor is taken as one level).
        img: ``(B, 3, H, W)`` images.
        neck: optional module from the encoder's tuple of maps to another
            tuple of maps (a single tensor is taken as one level).

    Returns:
        One ``(B, C_l, H_l, W_l)`` map per level, after the neck if given.
    """
    feats = image_encoder(img)
    if isinstance(feats, Tensor):
        feats = (feats, )
    if neck is not None:
        feats = neck(tuple(feats))
        if isinstance(feats, Tensor):
            feats = (feats, )
    return tuple(feats)


def probe_image_maps(image_encoder: nn.Module,
                     neck: Optional[nn.Module] = None,
                     size: int = PROBE_SIZE) -> Tuple[Tensor, ...]:
    """The levels of one zero ``(1, 3, size, size)`` image.

    The encoder and neck run in eval mode without gradients (batch-norm
    statistics are untouched) on the device of the encoder's parameters;
    their training modes are restored afterwards.

    Returns:
        One ``(1, C_l, H_l, W_l)`` map per level.

    Raises:
        ValueError: when a level is not a 4-d map (or there is none).
    """
    modules = [m for m in (image_encoder, neck) if m is not None]
    modes = [m.training for m in modules]
    param = next(image_encoder.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    try:
        for m in modules:
            m.eval()
        with torch.no_grad():
            maps = image_maps(image_encoder,
                              torch.zeros(1, 3, size, size, device=device),
                              neck)
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    if not maps or any(m.dim() != 4 for m in maps):
        raise ValueError('the image encoder (and neck) must return '
                         '(B, C, H, W) maps, got shapes '
                         f'{[tuple(m.shape) for m in maps]}')
    return maps


def probe_image_channels(image_encoder: nn.Module,
                         neck: Optional[nn.Module] = None,
                         size: int = PROBE_SIZE) -> Tuple[int, ...]:
    """The channels ``C_l`` of each image level, from
    :func:`probe_image_maps`."""
    return tuple(int(m.shape[1])
                 for m in probe_image_maps(image_encoder, neck, size))


def build_image_trunk(image_encoder: ModuleCfg,
                      neck: Optional[ModuleCfg] = None
                      ) -> Tuple[nn.Module, Optional[nn.Module],
                                 Tuple[int, ...]]:
    """Build the image encoder and the optional neck, and measure them.

    A neck config without ``in_channels`` gets the encoder's channels per
    level (a list, as mmdet's ``FPN`` takes them), measured by a dummy
    forward of the encoder alone.

    Returns:
        ``(image_encoder, neck or None, channels)`` where ``channels`` holds
        the channels of each level the model fuses (after the neck).
    """
    encoder = build_module(image_encoder)
    if neck is None:
        return encoder, None, probe_image_channels(encoder)
    if isinstance(neck, dict) and 'in_channels' not in neck:
        neck = dict(neck, in_channels=list(probe_image_channels(encoder)))
    neck = build_module(neck)
    return encoder, neck, probe_image_channels(encoder, neck)


def fusion_class(fusion: ModuleCfg) -> Tuple[type, str]:
    """The class of a fusion config or module, and its name for messages.

    Raises:
        KeyError: (mmengine's, naming close matches) when the config's
            ``type`` is not registered.
    """
    if isinstance(fusion, nn.Module):
        return type(fusion), type(fusion).__name__
    name = fusion.get('type')
    if isinstance(name, type):
        return name, name.__name__
    cls = MODELS.get(name)
    if cls is None:
        MODELS.build(fusion)  # raises, naming close matches
    return cls, name


def fusion_input_kind(fusion: ModuleCfg,
                      fusion_input: Optional[str] = None) -> str:
    """The kind of image features to feed the fusion: ``'map'`` (``(B, C,
    H, W)`` maps) or ``'vector'`` (``(B, C)`` pooled).

    Args:
        fusion: the fusion config or module.
        fusion_input: the kind to force, or None for maps when the block
            accepts them (``'map'`` in its ``input_kinds``), else vectors.

    Raises:
        ValueError: for an unknown ``fusion_input``, or a block that cannot
            take the kind (naming the blocks that can).
    """
    cls, name = fusion_class(fusion)
    if fusion_input is None:
        kind = MAP if MAP in getattr(cls, 'input_kinds', ()) else VECTOR
    elif fusion_input in (MAP, VECTOR):
        kind = fusion_input
    else:
        raise ValueError(f"fusion_input must be '{MAP}', '{VECTOR}' or "
                         f'None, got {fusion_input!r}')
    check_input_kind(name, cls, kind)
    return kind


def build_fusions(fusion: ModuleCfg, image_channels: Tuple[int, ...],
                  text_dim: int, share: bool,
                  same_dim: str = 'out_dim'
                  ) -> Union[BaseFusion, nn.ModuleList]:
    """The fusion block(s) over the image levels.

    With one level, or ``share``, one block for every level (the levels
    must then have equal channels); otherwise one block per level (a config
    is needed to build several). Each block built from a config gets
    ``image_dim`` (its level's channels) and ``text_dim`` unless the config
    sets them.

    Args:
        fusion: a :class:`BaseFusion` config or module.
        image_channels: channels ``C_l`` of each image level.
        text_dim: channels of the text features.
        share: one block for all levels rather than one per level.
        same_dim: the attribute the blocks must agree on (``'out_dim'``,
            the pooled size, for vector heads; ``'map_dim'``, the fused map
            channels, for dense heads on every level).

    Returns:
        One :class:`BaseFusion`, or an ``nn.ModuleList`` of one per level.
    """
    levels = tuple(image_channels)
    if isinstance(fusion, nn.Module):
        if len(levels) > 1 and not share:
            raise ValueError('share_fusion=False with several image '
                             'levels needs a fusion config, not a module')
        modules = [fusion]
    elif share or len(levels) == 1:
        if len(set(levels)) > 1:
            raise ValueError(
                f'share_fusion=True needs equal channels on every image '
                f'level, got {levels}: use a neck (e.g. FPN) or '
                'share_fusion=False')
        modules = [build_module(fusion, image_dim=levels[0],
                                text_dim=text_dim)]
    else:
        modules = [build_module(fusion, image_dim=c, text_dim=text_dim)
                   for c in levels]
    for m in modules:
        if not isinstance(m, BaseFusion):
            raise TypeError(f'the fusion must be a BaseFusion, got '
                            f'{type(m).__name__}')
    if len({getattr(m, same_dim) for m in modules}) > 1:
        raise ValueError(f'the per-level fusions must have one {same_dim}')
    return modules[0] if len(modules) == 1 else nn.ModuleList(modules)


def level_fusions(fusion: Union[BaseFusion, nn.ModuleList],
                  num_levels: int) -> List[BaseFusion]:
    """The block of each of ``num_levels`` levels: a shared block repeated,
    or the per-level blocks of an ``nn.ModuleList``.

    Raises:
        ValueError: when the per-level blocks are not ``num_levels``.
    """
    if not isinstance(fusion, nn.ModuleList):
        return [fusion] * num_levels
    fusions = list(fusion)
    if len(fusions) != num_levels:
        raise ValueError(f'{len(fusions)} fusion blocks for {num_levels} '
                         'image levels')
    return fusions
