"""Keep the text true to a flipped image: swap ``left``/``right`` (and
``above``/``below`` for a vertical flip) after a flip transform."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from mmcv.transforms import BaseTransform

from mmfusion.registry import TRANSFORMS

from .word_case import replace_words, word_pattern

#: Word pairs swapped by default, by flip direction (mmcv's names).
DEFAULT_PAIRS: Dict[str, Sequence[Sequence[str]]] = {
    'horizontal': [['left', 'right']],
    'vertical': [['above', 'below'], ['top', 'bottom']],
    'diagonal': [['left', 'right'], ['above', 'below'], ['top', 'bottom']],
}


@TRANSFORMS.register_module()
class SwapWordsOnFlip(BaseTransform):
    """Swap direction words in ``results['text']`` when the image was flipped.

    Put it right after a flip transform that records its decision in
    ``results['flip']`` and ``results['flip_direction']`` (mmcv's and
    mmdet's ``RandomFlip`` do), so a question such as ``is the red circle
    left of the blue square?`` stays true of the flipped picture::

        train_pipeline:
          - {type: CachedLoadImageFromFile}
          - {type: RandomFlip, prob: 0.5, direction: horizontal}
          - {type: SwapWordsOnFlip}
          - {type: PackMultimodalInputs}

    Whole words are swapped, matching case-insensitively (``Left`` becomes
    ``Right``); other text is kept byte for byte. A sample that was not
    flipped, or has no text (None), passes unchanged.

    Args:
        pairs: per flip direction, the word pairs to swap; default
            :data:`DEFAULT_PAIRS`. A direction missing from ``pairs``
            swaps nothing.
    """

    def __init__(self,
                 pairs: Optional[Dict[str, Sequence[Sequence[str]]]] = None
                 ) -> None:
        pairs = DEFAULT_PAIRS if pairs is None else pairs
        if not isinstance(pairs, dict):
            raise TypeError('SwapWordsOnFlip pairs must map a flip '
                            "direction to word pairs, e.g. {'horizontal': "
                            f"[['left', 'right']]}}, got {pairs!r}")
        self.pairs = {}
        self._swaps = {}
        for direction, plist in pairs.items():
            mapping: Dict[str, str] = {}
            for pair in plist:
                if len(pair) != 2 or not all(
                        isinstance(w, str) and w.strip() for w in pair):
                    raise ValueError(
                        f'SwapWordsOnFlip pairs[{direction!r}]: each pair '
                        f'must be two non-empty words, got {pair!r}')
                a, b = (w.strip().lower() for w in pair)
                for w in (a, b):
                    if w in mapping:
                        raise ValueError(
                            f'SwapWordsOnFlip pairs[{direction!r}]: the word '
                            f'{w!r} is in more than one pair')
                mapping[a], mapping[b] = b, a
            self.pairs[direction] = [list(p) for p in plist]
            if mapping:
                self._swaps[direction] = (word_pattern(mapping), mapping)

    def transform(self, results: dict) -> dict:
        text = results.get('text')
        if not results.get('flip') or not isinstance(text, str):
            return results
        swap = self._swaps.get(results.get('flip_direction'))
        if swap is None:
            return results
        pattern, mapping = swap
        results['text'] = replace_words(pattern, mapping, text)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(pairs={self.pairs})'

