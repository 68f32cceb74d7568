"""What the three shapes generators share: sizes and seed, their checks,
the settings dict that names the data folder, the splits and their seeds."""
from __future__ import annotations

import zlib
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .scene import object_margin


class BaseShapesGenerator:
    """Settings, splits and per-split generators of a shapes benchmark.

    A split is ``(name, subset, phase, quads)``: every subset has the
    phases ``PHASES``; the ``main`` subset's train split has
    ``train_quads`` quads and every other subset's ``control_quads``; val
    and test have ``val_quads`` and ``test_quads`` in every subset. Each
    split draws from its own ``numpy`` generator seeded from ``(seed,
    crc32(SEED_PREFIX + name))``, so splits are independent of each other
    and of the Python hash seed. Subclasses set the class attributes below
    and write their own ``generate``.

    Args:
        image_size: side of the square images in pixels.
        min_objects: fewest objects in an image (at least 2).
        max_objects: most objects in an image.
        train_quads: quads of the main train split.
        val_quads: quads of each subset's val split.
        test_quads: quads of each subset's test split.
        control_quads: quads of each control subset's train split.
        seed: base seed (>= 0).
    """

    #: Subsets and phases, in file order.
    SUBSETS: Sequence[str] = ('main', )
    PHASES: Sequence[str] = ('train', 'val', 'test')
    #: Smallest accepted ``image_size``.
    MIN_IMAGE_SIZE: int = 16
    #: Largest accepted ``max_objects`` (None: no limit).
    MAX_OBJECTS: Optional[int] = None
    #: Why ``min_objects`` is at least 2 (said when it is not).
    OBJECTS_REASON: str = ''
    #: Prefix of the split names hashed into the split seeds.
    SEED_PREFIX: str = ''

    def __init__(self, image_size: int, min_objects: int, max_objects: int,
                 train_quads: int, val_quads: int, test_quads: int,
                 control_quads: int, seed: int) -> None:
        if image_size < self.MIN_IMAGE_SIZE:
            raise ValueError(f'image_size must be at least '
                             f'{self.MIN_IMAGE_SIZE}, got {image_size}')
        top = self.MAX_OBJECTS
        if not 2 <= min_objects <= max_objects or (top is not None
                                                   and max_objects > top):
            bound = '' if top is None else f' <= {top}'
            reason = f' ({self.OBJECTS_REASON})' if self.OBJECTS_REASON \
                else ''
            raise ValueError(
                f'need 2 <= min_objects <= max_objects{bound}{reason}, got '
                f'min_objects={min_objects}, max_objects={max_objects}')
        for name, value in (('train_quads', train_quads),
                            ('val_quads', val_quads),
                            ('test_quads', test_quads),
                            ('control_quads', control_quads)):
            if value < 0:
                raise ValueError(f'{name} must be >= 0, got {value}')
        if seed < 0:
            raise ValueError(f'seed must be >= 0, got {seed}')
        self.image_size = int(image_size)
        self.min_objects = int(min_objects)
        self.max_objects = int(max_objects)
        self.train_quads = int(train_quads)
        self.val_quads = int(val_quads)
        self.test_quads = int(test_quads)
        self.control_quads = int(control_quads)
        self.seed = int(seed)
        self.margin = object_margin(self.image_size)

    def settings(self) -> dict:
        """All constructor arguments as a plain dict (hashed for folders)."""
        return {
            'image_size': self.image_size,
            'min_objects': self.min_objects,
            'max_objects': self.max_objects,
            'train_quads': self.train_quads,
            'val_quads': self.val_quads,
            'test_quads': self.test_quads,
            'control_quads': self.control_quads,
            'seed': self.seed,
        }

    @staticmethod
    def split_name(subset: str, phase: str) -> str:
        """The file name part of a split (subclasses name theirs)."""
        raise NotImplementedError

    def splits(self) -> List[Tuple[str, str, str, int]]:
        """``(split name, subset, phase, quads)`` of every split written."""
        quads = {'train': self.train_quads, 'val': self.val_quads,
                 'test': self.test_quads}
        out = []
        for subset in self.SUBSETS:
            for phase in self.PHASES:
                n = quads[phase]
                if subset != 'main' and phase == 'train':
                    n = self.control_quads
                out.append((self.split_name(subset, phase), subset, phase,
                            n))
        return out

    def split_rng(self, name: str) -> np.random.Generator:
        """The generator of split ``name``, from ``(seed, crc32(name))``."""
        key = zlib.crc32(f'{self.SEED_PREFIX}{name}'.encode())
        return np.random.default_rng(np.random.SeedSequence([self.seed, key]))

