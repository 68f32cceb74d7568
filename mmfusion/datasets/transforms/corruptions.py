"""Test-time corruptions and modality removal, as pipeline transforms.

Put them before the packing transform (``PackMultimodalInputs``), after the
image is loaded; ``tools/test.py --corrupt``/``--drop-modality`` insert them
into the test pipeline this way, and configs can use them the same way::

    test_pipeline:
      - {type: CachedLoadImageFromFile}
      - {type: ImageGaussianNoise, std: 0.1}
      - {type: TextWordDrop, prob: 0.3, seed: 0}
      - {type: PackMultimodalInputs}

Random corruptions are deterministic: each sample draws from a generator
seeded with ``(seed, sample_idx)`` (the sample's ``img_path`` and text when
it has no ``sample_idx``), so the result depends neither on the order in
which samples are loaded nor on the number of dataloader workers or ranks.
With one seed, the draws of different strengths are coupled: the words
dropped at ``prob=0.2`` are among those dropped at ``prob=0.5``, and the
noise at ``std=0.5`` is that of ``std=0.1`` scaled by 5.

Words are the whitespace-separated pieces of the text (punctuation stays
attached: ``"red?"`` is one word); corrupted texts are re-joined with single
spaces.
"""
from __future__ import annotations

import math
import zlib
from typing import Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmfusion.registry import TRANSFORMS

#: Modalities that :class:`DropModality` can remove.
DROPPABLE = ('image', 'text')


def sample_rng(results: dict, seed: int, salt: int) -> np.random.Generator:
    """A generator for this sample, from ``seed``, the sample and ``salt``
    (one per transform kind, so two kinds do not share their draws)."""
    idx = results.get('sample_idx')
    if idx is None:
        key = f"{results.get('img_path')}\0{results.get('text')}"
        idx = zlib.crc32(key.encode('utf-8'))
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(idx), salt])


def _check_strength(name: str, value: float, high: Optional[float]) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (high is not None
                                                 and value > high):
        upper = f', {high:g}]' if high is not None else ', inf)'
        raise ValueError(f'{name} must be in [0{upper}, got {value}')
    return value


@TRANSFORMS.register_module()
class ImageGaussianNoise(BaseTransform):
    """Add Gaussian noise to ``results['img']``, then clip to [0, 255].

    Args:
        std: the noise standard deviation as a fraction of the 0-255 range:
            the noise has std ``std x 255`` in pixel values. 0 leaves the
            image unchanged.
        seed: base seed (see the module docstring).

    The image keeps its dtype (uint8 images are rounded); a sample without
    an image passes through.
    """

    _salt = 1

    def __init__(self, std: float, seed: int = 0) -> None:
        self.std = _check_strength('ImageGaussianNoise std', std, None)
        self.seed = int(seed)

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if img is None or self.std == 0:
            return results
        img = np.asarray(img)
        rng = sample_rng(results, self.seed, self._salt)
        noise = rng.standard_normal(img.shape, dtype=np.float32)
        out = img.astype(np.float32) + noise * np.float32(self.std * 255.0)
        out = np.clip(out, 0.0, 255.0)
        if np.issubdtype(img.dtype, np.integer):
            out = np.rint(out)
        results['img'] = out.astype(img.dtype)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(std={self.std}, seed={self.seed})'


@TRANSFORMS.register_module()
class ImageGaussianBlur(BaseTransform):
    """Blur ``results['img']`` with a Gaussian kernel (OpenCV).

    Args:
        sigma: the kernel's standard deviation as a fraction of the image's
            shorter side, so that a strength means the same on any
            resolution: ``sigma=0.05`` on a 64 x 64 image is 3.2 pixels.
            0 leaves the image unchanged; at most 1.

    Borders are reflected (``BORDER_REFLECT_101``); the dtype is kept. A
    sample without an image passes through. Deterministic (no randomness).
    """

    def __init__(self, sigma: float) -> None:
        self.sigma = _check_strength('ImageGaussianBlur sigma', sigma, 1.0)

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if img is None or self.sigma == 0:
            return results
        import cv2
        img = np.asarray(img)
        sigma_px = self.sigma * min(img.shape[0], img.shape[1])
        out = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma_px, sigmaY=sigma_px,
                               borderType=cv2.BORDER_REFLECT_101)
        if out.ndim < img.ndim:  # OpenCV drops a single channel axis
            out = out.reshape(img.shape)
        results['img'] = out
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(sigma={self.sigma})'


@TRANSFORMS.register_module()
class TextWordDrop(BaseTransform):
    """Drop each word of ``results['text']`` with probability ``prob``.

    ``prob=0`` leaves the text unchanged (byte for byte); a text that loses
    every word becomes None, an absent text (``text_present`` False, as
    ``"text": null`` in an annotation file), so ``prob=1`` removes every
    text. An absent text stays absent.

    Args:
        prob: per-word drop probability, in [0, 1].
        seed: base seed (see the module docstring).
    """

    _salt = 2

    def __init__(self, prob: float, seed: int = 0) -> None:
        self.prob = _check_strength('TextWordDrop prob', prob, 1.0)
        self.seed = int(seed)

    def transform(self, results: dict) -> dict:
        text = results.get('text')
        if text is None or self.prob == 0:
            return results
        words = text.split()
        rng = sample_rng(results, self.seed, self._salt)
        keep = rng.random(len(words)) >= self.prob
        if keep.all():
            return results
        kept = [w for w, k in zip(words, keep) if k]
        results['text'] = ' '.join(kept) if kept else None
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, seed={self.seed})'


@TRANSFORMS.register_module()
class TextShuffle(BaseTransform):
    """Shuffle the word order of ``results['text']`` with probability
    ``prob`` per sample.

    A shuffled text is a uniformly random permutation of its words (the
    multiset of words is kept; a short text may come out in its original
    order). ``prob=0`` leaves every text unchanged; absent texts pass
    through.

    Args:
        prob: per-sample shuffle probability, in [0, 1].
        seed: base seed (see the module docstring).
    """

    _salt = 3

    def __init__(self, prob: float, seed: int = 0) -> None:
        self.prob = _check_strength('TextShuffle prob', prob, 1.0)
        self.seed = int(seed)

    def transform(self, results: dict) -> dict:
        text = results.get('text')
        if text is None or self.prob == 0:
            return results
        rng = sample_rng(results, self.seed, self._salt)
        if rng.random() >= self.prob:
            return results
        words = text.split()
        results['text'] = ' '.join(words[i] for i in
                                   rng.permutation(len(words)))
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, seed={self.seed})'


@TRANSFORMS.register_module()
class DropModality(BaseTransform):
    """Mark modalities absent for the sample: ``results['<m>_present']``
    becomes False.

    The data stay as they are (the image is still loaded, so its shape and
    pictures of it are unchanged); :class:`PackMultimodalInputs` passes the
    flags to the inputs, the data preprocessor combines them with its own
    presence flags, and the model gives the absent modality zero features,
    exactly as for a ``"text": null`` sample or a missing image.

    Args:
        modalities: ``'image'``, ``'text'`` or a sequence of them.
    """

    def __init__(self, modalities: Union[str, Sequence[str]]) -> None:
        if isinstance(modalities, str):
            modalities = (modalities,)
        modalities = tuple(modalities)
        unknown = [m for m in modalities if m not in DROPPABLE]
        if unknown or not modalities:
            raise ValueError(f'DropModality modalities must be a non-empty '
                             f'subset of {DROPPABLE}, got {modalities}')
        self.modalities = modalities

    def transform(self, results: dict) -> dict:
        for m in self.modalities:
            results[f'{m}_present'] = False
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(modalities={self.modalities})'
