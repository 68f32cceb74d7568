"""Colour augmentation that keeps colour words true: permute the image's
channels and rename the colours the text mentions to match."""
from __future__ import annotations

import itertools
from typing import Dict, List, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmfusion.registry import TRANSFORMS

from .word_case import replace_words, word_pattern


@TRANSFORMS.register_module()
class RandomColourPermutation(BaseTransform):
    """Permute the colour channels and rewrite colour words to follow.

    Exchanging channels maps pure colours onto each other: with the
    six colours of the shapes benchmark, swapping red and green channels
    turns a red circle green and a magenta one cyan. Every permutation that
    maps the named colours onto themselves is eligible; one is drawn per
    sample (the identity among them) and each colour word of
    ``results['text']`` is renamed to the colour it became, so the answer
    to ``is the circle red?`` or ``are there two green shapes?`` is
    unchanged. Colour-blind questions (shape, count by shape, position)
    see the same scene in new colours. Use it only where the named colours
    are the only colours the texts rely on.

    Args:
        colours: colour name -> ``[r, g, b]`` (0-255) of every colour word
            the texts may use. At least one channel permutation other than
            the identity must map this set onto itself.
        prob: probability of drawing a permutation at all (else the sample
            passes unchanged).
        channel_order: the order of the loaded image's channels, ``bgr``
            (mmcv's default) or ``rgb``.

    Sets ``results['colour_permutation']``: the channel order applied, as
    indices into the image's channels (``[0, 1, 2]`` when unchanged).
    """

    def __init__(self,
                 colours: Dict[str, Sequence[int]],
                 prob: float = 1.0,
                 channel_order: str = 'bgr') -> None:
        if not isinstance(colours, dict) or not colours:
            raise ValueError('RandomColourPermutation colours must be a '
                             'non-empty mapping name -> [r, g, b], got '
                             f'{colours!r}')
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError("RandomColourPermutation channel_order must be "
                             f"'bgr' or 'rgb', got {channel_order!r}")
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(
                f'RandomColourPermutation prob must be in [0, 1], got {prob}')
        rgb: Dict[str, Tuple[int, ...]] = {}
        for name, value in colours.items():
            value = tuple(int(v) for v in value)
            if len(value) != 3 or not all(0 <= v <= 255 for v in value):
                raise ValueError(f'RandomColourPermutation colours[{name!r}]'
                                 f' must be [r, g, b] in 0..255, got '
                                 f'{list(value)}')
            rgb[name.lower()] = value
        by_value = {v: k for k, v in rgb.items()}
        if len(by_value) != len(rgb):
            raise ValueError('RandomColourPermutation colours: two names '
                             'share one value')
        self.colours = {k: list(v) for k, v in rgb.items()}
        self.prob = float(prob)
        self.channel_order = channel_order
        # (channel order in the image's layout, word -> word) per eligible
        # permutation; the identity first.
        self._perms: List[Tuple[List[int], Dict[str, str]]] = []
        for perm in itertools.permutations(range(3)):
            # In RGB terms: new[c] = old[perm[c]].
            renamed = {}
            for name, value in rgb.items():
                new = tuple(value[perm[c]] for c in range(3))
                if new not in by_value:
                    break
                renamed[name] = by_value[new]
            else:
                order = list(perm)
                if channel_order == 'bgr':  # same permutation, BGR indices
                    order = [2 - perm[2 - c] for c in range(3)]
                self._perms.append((order, renamed))
        if len(self._perms) < 2:
            raise ValueError(
                'RandomColourPermutation: no channel permutation maps the '
                f'colours {sorted(rgb)} onto themselves, so no colour can '
                'change; drop the transform or list colours closed under '
                'channel swaps (e.g. red, green, blue)')
        self._pattern = word_pattern(rgb)

    @property
    def num_permutations(self) -> int:
        """How many channel permutations may be drawn (identity included)."""
        return len(self._perms)

    def transform(self, results: dict) -> dict:
        if self.prob < 1.0 and np.random.rand() >= self.prob:
            results['colour_permutation'] = [0, 1, 2]
            return results
        order, renamed = self._perms[np.random.randint(len(self._perms))]
        results['colour_permutation'] = list(order)
        if order == [0, 1, 2]:
            return results
        img = results.get('img')
        if img is not None:
            results['img'] = np.ascontiguousarray(img[..., order])
        text = results.get('text')
        if isinstance(text, str):
            results['text'] = replace_words(self._pattern, renamed, text)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(colours={self.colours}, '
                f'prob={self.prob}, channel_order={self.channel_order!r})')

