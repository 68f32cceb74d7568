"""Referring-segmentation splits of the shapes benchmark.

Every sample is an (image, phrase, mask) triple: the mask marks the pixels of
the objects the phrase refers to. Each image of the main splits gets two
phrases of one type whose referents are disjoint and non-empty, so the same
image has two different masks and only the phrase tells which: an image-only
model cannot do better than guessing between the two.

Sizes are counted in *quads* of four samples, as for classification (the
settings have the same names): a main quad is two images of one phrase type
with two phrases each, a control quad four images with one phrase each.

Phrase types (quad ``i`` has type ``REFSEG_TYPES[i % 4]``):

- ``colour``: ``the {colour} shapes`` -- every object of that colour (1 to 3
  of each queried colour; the other objects have other colours);
- ``shape``: ``the {shape}s`` (``the circles``) -- every object of that shape;
- ``size``: ``the {large|small} {colour} shapes`` -- the objects of that
  colour and size (both sizes of the colour are present);
- ``position``: ``the {colour} {shape} on the left|right`` or ``the {colour}
  {shape} at the top|bottom`` -- exactly two objects share colour and shape,
  their edges at least one radius apart along the axis (no flips in the
  pipelines: the words mean image directions).

The control subset ``all_shapes`` has one phrase per image, ``every shape``
(or ``all shapes``, ``all the shapes``), whose mask is every object: only the
image matters, so an image-only model can learn it.

Each line also carries ``label``, the number of referred objects as a word
(``one`` .. ``six``, listed in ``count_classes.txt``), the classification
target of the multi-task experiment.

Files written by :meth:`ShapesRefSegGenerator.generate` (``data_root/
seg-<hash of the settings>/``; the classification benchmark's ``cls-<hash>``
folders are untouched):

- ``classes.txt``: ``background`` and ``referred``;
- ``count_classes.txt``: the count words;
- ``refseg_<split>.jsonl`` for ``train``, ``val``, ``test``,
  ``all_shapes_train``, ...: one sample a line, ``{"image":
  "images/<split>/000012.png", "text": "the red shapes", "mask":
  "masks/<split>/000024.png", "phrase_type": "colour", "label": "two"}``,
  paths relative to the file (the documented :class:`RefSegDataset` format);
- ``images/<split>/*.png``: RGB images; ``masks/<split>/*.png``: one
  single-channel PNG per sample, 0 background and 1 referred;
- ``scenes_<split>.jsonl``: the objects of each image (as for classification);
- ``meta.json`` (last): settings and split sizes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy as np
from PIL import Image
from tqdm import tqdm

from .base_generator import BaseShapesGenerator
from .renderer import render_scene, render_scene_image
from .scene import (COLOURS, SHAPES, ObjectSpec, ShapeObject, centre_mask,
                    choice, choose_distinct, pick_centre, place_scene,
                    random_size, relation_mask, sample_radius, shuffled)

#: Segmentation classes of the binary target, in index order.
REFSEG_CLASSES: Tuple[str, ...] = ('background', 'referred')
#: Phrase types of the main subset, in image order.
REFSEG_TYPES: Tuple[str, ...] = ('colour', 'shape', 'size', 'position')
#: Subsets: the main one and the "every shape" control.
REFSEG_SUBSETS: Tuple[str, ...] = ('main', 'all_shapes')
REFSEG_PHASES: Tuple[str, ...] = ('train', 'val', 'test')
#: Phrasings of the control subset (all mean every object).
ALL_SHAPES_TEXTS: Tuple[str, ...] = ('every shape', 'all shapes',
                                     'all the shapes')
#: Count words of the multi-task target (referred objects).
COUNT_WORDS: Tuple[str, ...] = ('one', 'two', 'three', 'four', 'five', 'six')
#: Most referents of one colour / shape phrase.
MAX_REFERENTS = 3
#: Layout version recorded in ``meta.json``.
REFSEG_FORMAT_VERSION = 1
#: Redraws of one image before giving up.
MAX_ATTEMPTS = 1000

#: Position phrases: axis -> (relation of the first object to the second,
#: phrase of the first, phrase of the second).
_POSITION_WORDS = {
    'horizontal': ('left of', 'on the left', 'on the right'),
    'vertical': ('above', 'at the top', 'at the bottom'),
}


def refseg_split_name(subset: str, phase: str) -> str:
    """``train`` or ``all_shapes_train``."""
    if subset not in REFSEG_SUBSETS:
        raise ValueError(f'unknown subset {subset!r}; expected one of '
                         f'{REFSEG_SUBSETS}')
    if phase not in REFSEG_PHASES:
        raise ValueError(f'unknown split {phase!r}; expected one of '
                         f'{REFSEG_PHASES}')
    return phase if subset == 'main' else f'{subset}_{phase}'


def refseg_ann_file(subset: str, phase: str) -> str:
    """Annotation file of a split, e.g. ``refseg_all_shapes_val.jsonl``."""
    return f'refseg_{refseg_split_name(subset, phase)}.jsonl'


def plural(shape: str) -> str:
    """``circle`` -> ``circles``."""
    return shape + 's'


@dataclass
class RefImage:
    """One image and its phrases.

    Attributes:
        objects: the scene.
        phrases: ``(text, phrase_type, indices of the referred objects)``.
    """

    objects: List[ShapeObject]
    phrases: List[Tuple[str, str, Tuple[int, ...]]]


class ShapesRefSegGenerator(BaseShapesGenerator):
    """Build the referring-segmentation splits; same settings, same bytes.

    Each split draws from its own generator seeded from ``(seed,
    crc32('refseg/' + split name))``.

    Args:
        image_size: side of the square images in pixels (object radii scale
            with it: small 5-6 px, large 9-10 px at 64 px).
        min_objects: fewest objects in an image (at least 2).
        max_objects: most objects in an image (at most 6).
        train_quads: quads of the main train split (2 images, 2 phrases
            each).
        val_quads: quads of the main val split and of the control's val.
        test_quads: quads of the main test split and of the control's test.
        control_quads: quads of the control's train split (4 images, one
            phrase each).
        seed: base seed.
    """

    SUBSETS = REFSEG_SUBSETS
    PHASES = REFSEG_PHASES
    MIN_IMAGE_SIZE = 32
    MAX_OBJECTS = len(COUNT_WORDS)
    SEED_PREFIX = 'refseg/'
    split_name = staticmethod(refseg_split_name)

    def __init__(self, image_size: int = 64, min_objects: int = 2,
                 max_objects: int = 6, train_quads: int = 3000,
                 val_quads: int = 125, test_quads: int = 250,
                 control_quads: int = 375, seed: int = 0) -> None:
        super().__init__(image_size, min_objects, max_objects, train_quads,
                         val_quads, test_quads, control_quads, seed)

    def iter_images(self, name: str) -> Iterator[RefImage]:
        """The images of split ``name`` with their phrases, in file order."""
        spec = {s[0]: s for s in self.splits()}
        if name not in spec:
            raise ValueError(f'unknown split {name!r}; expected one of '
                             f'{list(spec)}')
        _, subset, _, quads = spec[name]
        rng = self.split_rng(name)
        for i in range(quads):
            if subset == 'main':
                ptype = REFSEG_TYPES[i % len(REFSEG_TYPES)]
                draw = getattr(self, f'_{ptype}_image')
                for _ in range(2):
                    yield self._retry(draw, rng)
            else:
                for _ in range(4):
                    yield self._retry(self._all_shapes_image, rng)

    def generate(self, out_dir: Union[str, Path],
                 progress: bool = True) -> Path:
        """Write every split into ``out_dir`` (see the module docstring)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / 'classes.txt').write_text(''.join(
            c + '\n' for c in REFSEG_CLASSES))
        (out / 'count_classes.txt').write_text(''.join(
            c + '\n' for c in COUNT_WORDS[:self.max_objects]))
        split_meta = {}
        splits = self.splits()
        with tqdm(total=sum(s[3] * 4 for s in splits),
                  desc='shapes refseg', unit='sample', mininterval=1.0,
                  disable=not progress) as bar:
            for name, subset, phase, count in splits:
                bar.set_postfix_str(name)
                split_meta[name] = self._write_split(out, name, subset, phase,
                                                     count, bar)
        meta = {
            'format_version': REFSEG_FORMAT_VERSION,
            'task': 'referring segmentation',
            'settings': self.settings(),
            'classes': list(REFSEG_CLASSES),
            'count_classes': list(COUNT_WORDS[:self.max_objects]),
            'phrase_types': list(REFSEG_TYPES),
            'splits': split_meta,
        }
        (out / 'meta.json').write_text(
            json.dumps(meta, indent=2, sort_keys=True) + '\n')
        return out

    # -------------------------------------------------------------- writing
    def _write_split(self, out: Path, name: str, subset: str, phase: str,
                     quads: int, bar: tqdm) -> dict:
        img_dir = out / 'images' / name
        mask_dir = out / 'masks' / name
        img_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        width = max(6, len(str(max(0, 4 * quads - 1))))
        size = self.image_size
        lines: List[str] = []
        scene_lines: List[str] = []
        n_masks = 0
        index = -1
        for index, ref in enumerate(self.iter_images(name)):
            rel = f'images/{name}/{index:0{width}d}.png'
            render_scene_image(ref.objects, size).save(
                out / rel, format='PNG', compress_level=1)
            scene_lines.append(json.dumps({
                'image': rel, 'width': size, 'height': size,
                'objects': [o.to_dict() for o in ref.objects]}))
            for text, ptype, referents in ref.phrases:
                mask_rel = f'masks/{name}/{n_masks:0{width}d}.png'
                n_masks += 1
                Image.fromarray(referent_mask(ref.objects, referents, size)
                                ).save(out / mask_rel, format='PNG',
                                       compress_level=1)
                lines.append(json.dumps({
                    'image': rel, 'text': text, 'mask': mask_rel,
                    'phrase_type': ptype,
                    'label': COUNT_WORDS[len(referents) - 1]}))
                bar.update(1)
        ann = refseg_ann_file(subset, phase)
        (out / ann).write_text(''.join(line + '\n' for line in lines))
        scenes = f'scenes_{name}.jsonl'
        (out / scenes).write_text(''.join(line + '\n'
                                          for line in scene_lines))
        return {'subset': subset, 'phase': phase, 'quads': quads,
                'images': index + 1, 'samples': len(lines), 'ann_file': ann,
                'scenes_file': scenes}

    # ------------------------------------------------------------ sampling
    def _retry(self, draw: Callable[[np.random.Generator],
                                    Optional[RefImage]],
               rng: np.random.Generator) -> RefImage:
        for _ in range(MAX_ATTEMPTS):
            ref = draw(rng)
            if ref is not None:
                return ref
        raise RuntimeError(
            f'could not place the objects of an image in {MAX_ATTEMPTS} '
            f'tries: image_size={self.image_size} is too small for '
            f'max_objects={self.max_objects}')

    def _count(self, rng: np.random.Generator, at_least: int) -> int:
        lo = max(self.min_objects, at_least)
        if lo > self.max_objects:
            return -1
        return int(rng.integers(lo, self.max_objects + 1))

    def _referent_counts(self, rng: np.random.Generator) -> Tuple[int, int]:
        """Referents of two disjoint phrases (1..3 each, fitting the image)."""
        top = min(MAX_REFERENTS, self.max_objects - 1)
        while True:
            k1, k2 = (int(v) for v in rng.integers(1, top + 1, size=2))
            if k1 + k2 <= self.max_objects:
                return k1, k2

    def _two_values_image(self, rng: np.random.Generator, attr: str
                          ) -> Optional[RefImage]:
        """Colour (``attr='colour'``) or shape phrases on disjoint sets."""
        values = COLOURS if attr == 'colour' else SHAPES
        v1, v2 = choose_distinct(rng, values, 2)
        k1, k2 = self._referent_counts(rng)
        n = self._count(rng, k1 + k2)
        others = [v for v in values if v not in (v1, v2)]
        specs = []
        for i in range(n):
            value = v1 if i < k1 else v2 if i < k1 + k2 else choice(
                rng, others)
            if attr == 'colour':
                specs.append(ObjectSpec(choice(rng, SHAPES), value,
                                        random_size(rng)))
            else:
                specs.append(ObjectSpec(value, choice(rng, COLOURS),
                                        random_size(rng)))
        objects = place_scene(rng, specs, self.image_size, self.margin)
        if objects is None:
            return None
        objects = shuffled(rng, objects)
        phrases = []
        for value in (v1, v2):
            refs = tuple(i for i, o in enumerate(objects)
                         if getattr(o, attr) == value)
            text = (f'the {value} shapes' if attr == 'colour' else
                    f'the {plural(value)}')
            phrases.append((text, attr, refs))
        return RefImage(objects, phrases)

    def _colour_image(self, rng: np.random.Generator) -> Optional[RefImage]:
        return self._two_values_image(rng, 'colour')

    def _shape_image(self, rng: np.random.Generator) -> Optional[RefImage]:
        return self._two_values_image(rng, 'shape')

    def _size_image(self, rng: np.random.Generator) -> Optional[RefImage]:
        """Large and small objects of one colour, others of other colours.

        Large objects that do not fit are shrunk by the placer, so the
        referents are read from the placed scene; a scene left without
        one of the sizes is redrawn.
        """
        colour = choice(rng, COLOURS)
        top = min(2, (self.max_objects) // 2)
        k_large = int(rng.integers(1, top + 1))
        k_small = int(rng.integers(1, top + 1))
        n = self._count(rng, k_large + k_small)
        others = [c for c in COLOURS if c != colour]
        specs = [ObjectSpec(choice(rng, SHAPES), colour, 'large')
                 for _ in range(k_large)]
        specs += [ObjectSpec(choice(rng, SHAPES), colour, 'small')
                  for _ in range(k_small)]
        while len(specs) < n:
            specs.append(ObjectSpec(choice(rng, SHAPES), choice(rng, others),
                                    random_size(rng)))
        objects = place_scene(rng, specs, self.image_size, self.margin)
        if objects is None:
            return None
        objects = shuffled(rng, objects)
        order = ('large', 'small') if rng.random() < 0.5 else ('small',
                                                               'large')
        phrases = []
        for size in order:
            refs = tuple(i for i, o in enumerate(objects)
                         if o.colour == colour and o.size == size)
            if not refs:
                return None
            phrases.append((f'the {size} {colour} shapes', 'size', refs))
        return RefImage(objects, phrases)

    def _position_image(self, rng: np.random.Generator
                        ) -> Optional[RefImage]:
        """Two objects of one colour and shape, apart along one axis."""
        colour, shape = choice(rng, COLOURS), choice(rng, SHAPES)
        axis = 'horizontal' if rng.random() < 0.5 else 'vertical'
        relation, first_words, second_words = _POSITION_WORDS[axis]
        size = self.image_size
        # The second object first, anywhere; then the first one in the
        # relation's half-plane with the required gap.
        b_size = random_size(rng)
        b_r = sample_radius(rng, b_size, size)
        b_centre = pick_centre(rng, centre_mask(b_r, size, [], self.margin))
        if b_centre is None:
            return None
        b = ShapeObject(shape, colour, b_size, b_centre[0], b_centre[1], b_r)
        a_size = random_size(rng)
        a_r = sample_radius(rng, a_size, size)
        mask = (centre_mask(a_r, size, [b], self.margin)
                & relation_mask(a_r, size, relation, b))
        a_centre = pick_centre(rng, mask)
        if a_centre is None:
            return None
        a = ShapeObject(shape, colour, a_size, a_centre[0], a_centre[1], a_r)
        n = self._count(rng, 2)
        specs = []
        while len(specs) < n - 2:
            c, s = choice(rng, COLOURS), choice(rng, SHAPES)
            if (c, s) == (colour, shape):
                continue
            specs.append(ObjectSpec(s, c, random_size(rng)))
        objects = place_scene(rng, specs, size, self.margin, [a, b])
        if objects is None:
            return None
        objects = shuffled(rng, objects)
        ia, ib = objects.index(a), objects.index(b)
        phrases = [(f'the {colour} {shape} {first_words}', 'position', (ia,)),
                   (f'the {colour} {shape} {second_words}', 'position',
                    (ib,))]
        if rng.random() < 0.5:
            phrases.reverse()
        return RefImage(objects, phrases)

    def _all_shapes_image(self, rng: np.random.Generator
                          ) -> Optional[RefImage]:
        n = self._count(rng, 1)
        specs = [ObjectSpec(choice(rng, SHAPES), choice(rng, COLOURS),
                            random_size(rng)) for _ in range(n)]
        objects = place_scene(rng, specs, self.image_size, self.margin)
        if objects is None:
            return None
        objects = shuffled(rng, objects)
        text = choice(rng, ALL_SHAPES_TEXTS)
        return RefImage(objects, [(text, 'all_shapes',
                                   tuple(range(len(objects))))])


def referent_mask(objects: List[ShapeObject], referents: Tuple[int, ...],
                  image_size: int) -> np.ndarray:
    """``(H, W)`` uint8 mask: 1 on the referred objects' pixels, else 0."""
    chosen = [objects[i] for i in referents]
    return render_scene(chosen, image_size).any(axis=2).astype(np.uint8)


# ------------------------------------------------------------------ cache
def refseg_folder_name(settings: dict) -> str:
    """``seg-<first 10 hex of sha1(json.dumps(settings, sort_keys=True))>``
    (:func:`shapes_folder_name` with ``task='seg'``)."""
    from .ensure import shapes_folder_name
    return shapes_folder_name(settings, 'seg')


def ensure_refseg_dataset(data_root: Union[str, Path] = 'data/shapes',
                          progress: bool = True, **kwargs) -> Path:
    """The folder of the referring-segmentation splits, generated once:
    :func:`ensure_shapes_dataset` with ``task='seg'`` (folder
    ``data_root/seg-<hash of the ShapesRefSegGenerator settings>``; local
    rank 0 writes it to a temporary folder and renames it, other ranks
    wait)."""
    from .ensure import ensure_shapes_dataset
    return ensure_shapes_dataset(data_root, progress, task='seg', **kwargs)


__all__ = [
    'ALL_SHAPES_TEXTS', 'COUNT_WORDS', 'REFSEG_CLASSES', 'REFSEG_PHASES',
    'REFSEG_SUBSETS', 'REFSEG_TYPES', 'RefImage', 'ShapesRefSegGenerator',
    'ensure_refseg_dataset', 'referent_mask', 'refseg_ann_file',
    'refseg_folder_name', 'refseg_split_name'
]
