"""Deterministic generator of the shapes grounding (text-conditioned
detection) benchmark.

Every sample is an (image, phrase) pair whose targets are the boxes of the
objects the phrase refers to (:class:`~.phrases.Query`): zero, one or many.
Samples are built in *quads*, as in the classification benchmark: two
phrases P1, P2 of one type that differ in exactly one word, and two images
A (where P1 holds) and B (where P2 holds), each phrase asked on both
images: ``(A, P1), (A, P2), (B, P1), (B, P2)``. The two phrases' target
sets are disjoint on every image, so which boxes are targets is decided by
the phrase, never by the image alone.

Phrase types (quad ``i`` has type ``PHRASE_TYPES[i % 5]``), with the word
that P2 changes:

- ``colour``: ``the {colour} shapes`` (the colour);
- ``shape``: ``the {shape}s`` (the shape);
- ``colour_shape``: ``the {colour} {shape}s`` (the colour or the shape);
- ``size``: ``the {size} {colour} shapes`` / ``the {size} {shape}s`` /
  ``the {size} shapes`` (small <-> large);
- ``position``: ``the {colour} shapes {side}`` / ``the {shape}s {side}`` /
  ``the shapes {side}`` with sides ``on the left``, ``on the right``, ``at
  the top``, ``at the bottom`` (image halves; left <-> right, top <->
  bottom). No object of such a quad's images straddles the dividing line.

Image A holds one or two objects that meet P1 (B: P2), and with
:data:`FORCE_OTHER_P` also one that meets the other phrase; the other
objects are random, so a phrase asked on the other image matches zero (a
negative), one or many objects. The ``control`` subset asks ``every
shape`` of every image (all objects are targets): the text adds nothing,
so a model without text can learn it.

Positions and sizes appear in the phrases, so pipelines must not flip or
rescale images by different factors along x and y.
See :meth:`ShapesGroundingGenerator.generate` for the files written (mmdet's
ODVG grounding format, :class:`~mmfusion.datasets.GroundingDataset`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from .base_generator import BaseShapesGenerator
from .phrases import OPPOSITE_SIDE, SIDE_AXIS, SIDES, Query, side_mask
from .renderer import render_scene_image
from .scene import (COLOURS, SHAPES, SIZES, ObjectSpec, ShapeObject,
                    centre_mask, choice, pick_centre, random_size,
                    sample_radius, shuffled)

#: Phrase types of the main subset, in quad order.
PHRASE_TYPES: Tuple[str, ...] = ('colour', 'shape', 'colour_shape', 'size',
                                 'position')
#: Subsets and phases.
GROUNDING_SUBSETS: Tuple[str, ...] = ('main', 'control')
PHASES: Tuple[str, ...] = ('train', 'val', 'test')
#: The phrase of every control sample.
CONTROL_PHRASE = 'every shape'
#: Chance that an image also holds an object meeting the quad's other
#: phrase (otherwise that phrase matches only what the random objects give,
#: often nothing: the negatives).
FORCE_OTHER_P = 0.5
#: Chance of two objects (instead of one) meeting the image's own phrase.
TWO_TARGETS_P = 0.3
#: Redraws of one image before giving up.
MAX_ATTEMPTS = 1000
#: Version of the on-disk layout, recorded in ``meta.json``.
FORMAT_VERSION = 1

_IMAGES_PER_QUAD = {'main': 2, 'control': 4}


def grounding_split_name(subset: str, phase: str) -> str:
    """File-name stem of a split: ``train`` or ``control_train``."""
    if subset not in GROUNDING_SUBSETS:
        raise ValueError(f'unknown subset {subset!r}; expected one of '
                         f'{GROUNDING_SUBSETS}')
    if phase not in PHASES:
        raise ValueError(f'unknown split {phase!r}; expected one of {PHASES}')
    return phase if subset == 'main' else f'{subset}_{phase}'


def grounding_ann_file_name(subset: str, phase: str) -> str:
    """Annotation file of a split, e.g. ``grounding_control_val.jsonl``."""
    return f'grounding_{grounding_split_name(subset, phase)}.jsonl'


@dataclass
class GroundingQuad:
    """The images and samples of one quad.

    Attributes:
        scenes: the quad's images as object lists.
        samples: ``(image index into scenes, phrase, phrase type, target
            object indices into that scene)``.
    """

    scenes: List[List[ShapeObject]]
    samples: List[Tuple[int, str, str, List[int]]]


class ShapesGroundingGenerator(BaseShapesGenerator):
    """Build the shapes grounding benchmark; same settings give the same
    bytes.

    The settings have the classification generator's names (a quad here is
    also two images and two texts, four samples), so one ``shapes_generator``
    config block serves both tasks; the folders differ by prefix
    (``det-<hash>``, see :func:`~.ensure.ensure_shapes_dataset`).

    Args:
        image_size: side of the square images in pixels (object radii
            scale with it: small 8-9 px and large 14-15 px at 96 px).
        min_objects: fewest objects in an image (at least 2).
        max_objects: most objects in an image.
        train_quads: quads of the main train split.
        val_quads: quads of the main val split and of the control val.
        test_quads: quads of the main test split and of the control test.
        control_quads: quads (four images each) of the control train split.
        seed: base seed.
    """

    SUBSETS = GROUNDING_SUBSETS
    PHASES = PHASES
    MIN_IMAGE_SIZE = 32
    OBJECTS_REASON = 'an image holds the objects of both phrases'
    SEED_PREFIX = 'grounding/'
    split_name = staticmethod(grounding_split_name)

    def __init__(self, image_size: int = 96, min_objects: int = 2,
                 max_objects: int = 6, train_quads: int = 6000,
                 val_quads: int = 100, test_quads: int = 250,
                 control_quads: int = 750, seed: int = 0) -> None:
        super().__init__(image_size, min_objects, max_objects, train_quads,
                         val_quads, test_quads, control_quads, seed)

    def iter_quads(self, name: str) -> Iterator[GroundingQuad]:
        """The quads of split ``name``, in file order."""
        spec = {s[0]: s for s in self.splits()}
        if name not in spec:
            raise ValueError(f'unknown split {name!r}; expected one of '
                             f'{list(spec)}')
        _, subset, _, quads = spec[name]
        rng = self.split_rng(name)
        for i in range(quads):
            if subset == 'main':
                yield self._phrase_quad(
                    rng, PHRASE_TYPES[i % len(PHRASE_TYPES)])
            else:
                yield self._control_quad(rng)

    def generate(self, out_dir: Union[str, Path],
                 progress: bool = True) -> Path:
        """Write the benchmark into ``out_dir`` (created if needed).

        Files written:

        - ``grounding_<split>.jsonl`` per split (``train``, ``val``,
          ``test``, ``control_<phase>``): one image a line in mmdet's ODVG
          grounding format plus the negatives::

              {"filename": "images/train/000000.png", "height": 96,
               "width": 96,
               "grounding": {
                 "caption": "the red shapes. the blue shapes.",
                 "regions": [{"bbox": [x1, y1, x2, y2],
                              "phrase": "the red shapes",
                              "tokens_positive": [[0, 14]],
                              "category": "circle"}, ...],
                 "negatives": ["the blue shapes"],
                 "phrase_types": {"the red shapes": "colour", ...}}}

          one region per target box (its ``category`` is the object's
          shape), boxes tight in continuous pixel coordinates (x2, y2
          exclusive); ``negatives`` lists the phrases asked of the image
          that match nothing. :class:`~mmfusion.datasets.GroundingDataset`
          makes one sample per (image, phrase).
        - ``images/<split>/<index>.png``: RGB PNGs;
        - ``scenes_<split>.jsonl``: every object of every image, as in the
          classification benchmark;
        - ``meta.json`` (last): settings, vocabulary and split sizes.

        Args:
            out_dir: folder to write into.
            progress: show a tqdm bar over the quads.

        Returns:
            ``out_dir`` as a :class:`Path`.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        splits = self.splits()
        split_meta = {}
        with tqdm(total=sum(s[3] for s in splits), desc='shapes grounding',
                  unit='quad', mininterval=1.0,
                  disable=not progress) as bar:
            for name, subset, phase, quads in splits:
                bar.set_postfix_str(name)
                split_meta[name] = self._write_split(out, name, subset, phase,
                                                     bar)
        meta = {
            'format_version': FORMAT_VERSION,
            'task': 'grounding',
            'settings': self.settings(),
            'classes': ['referred'],
            'categories': list(SHAPES),
            'phrase_types': list(PHRASE_TYPES),
            'vocabulary': {'colours': list(COLOURS), 'shapes': list(SHAPES),
                           'sizes': list(SIZES), 'sides': list(SIDES)},
            'control_phrase': CONTROL_PHRASE,
            'splits': split_meta,
        }
        (out / 'meta.json').write_text(
            json.dumps(meta, indent=2, sort_keys=True) + '\n')
        return out

    # -------------------------------------------------------------- writing
    def _write_split(self, out: Path, name: str, subset: str, phase: str,
                     bar: tqdm) -> dict:
        img_dir = out / 'images' / name
        img_dir.mkdir(parents=True, exist_ok=True)
        quads = dict((s[0], s[3]) for s in self.splits())[name]
        n_images = quads * _IMAGES_PER_QUAD[subset]
        width = max(6, len(str(max(0, n_images - 1))))
        size = self.image_size
        ann_lines: List[str] = []
        scene_lines: List[str] = []
        index = samples = negatives = boxes = 0
        for quad in self.iter_quads(name):
            per_image: List[List[Tuple[str, str, List[int]]]] = [
                [] for _ in quad.scenes]
            for img, phrase, ptype, targets in quad.samples:
                per_image[img].append((phrase, ptype, targets))
            for objects, asked in zip(quad.scenes, per_image):
                rel = f'images/{name}/{index:0{width}d}.png'
                index += 1
                render_scene_image(objects, size).save(
                    out / rel, format='PNG', compress_level=1)
                scene_lines.append(json.dumps({
                    'image': rel, 'width': size, 'height': size,
                    'objects': [o.to_dict() for o in objects]}))
                ann_lines.append(json.dumps(
                    odvg_record(rel, size, objects, asked)))
                samples += len(asked)
                negatives += sum(1 for _, _, t in asked if not t)
                boxes += sum(len(t) for _, _, t in asked)
            bar.update(1)
        ann = grounding_ann_file_name(subset, phase)
        (out / ann).write_text(''.join(line + '\n' for line in ann_lines))
        scenes = f'scenes_{name}.jsonl'
        (out / scenes).write_text(''.join(line + '\n'
                                          for line in scene_lines))
        return {'subset': subset, 'phase': phase, 'quads': quads,
                'images': index, 'samples': samples, 'negatives': negatives,
                'boxes': boxes, 'ann_file': ann, 'scenes_file': scenes,
                'image_dir': f'images/{name}'}

    # ------------------------------------------------------------ sampling
    def _random_query(self, rng: np.random.Generator, ptype: str) -> Query:
        if ptype == 'colour':
            return Query(colour=choice(rng, COLOURS))
        if ptype == 'shape':
            return Query(shape=choice(rng, SHAPES))
        if ptype == 'colour_shape':
            return Query(colour=choice(rng, COLOURS),
                         shape=choice(rng, SHAPES))
        base = int(rng.integers(3))  # colour, shape or neither
        colour = choice(rng, COLOURS) if base == 0 else None
        shape = choice(rng, SHAPES) if base == 1 else None
        if ptype == 'size':
            return Query(colour=colour, shape=shape, size=random_size(rng))
        if ptype == 'position':
            return Query(colour=colour, shape=shape, side=choice(rng, SIDES))
        raise ValueError(f'unknown phrase type {ptype!r}; expected one of '
                         f'{PHRASE_TYPES}')

    @staticmethod
    def _other(rng: np.random.Generator, options: Sequence[str],
               value: str) -> str:
        return choice(rng, [o for o in options if o != value])

    def _contrast(self, rng: np.random.Generator, q: Query,
                  ptype: str) -> Query:
        """``q`` with one word changed: the two target sets are disjoint."""
        if ptype == 'colour':
            return Query(colour=self._other(rng, COLOURS, q.colour))
        if ptype == 'shape':
            return Query(shape=self._other(rng, SHAPES, q.shape))
        if ptype == 'colour_shape':
            if rng.random() < 0.5:
                return Query(colour=self._other(rng, COLOURS, q.colour),
                             shape=q.shape)
            return Query(colour=q.colour,
                         shape=self._other(rng, SHAPES, q.shape))
        if ptype == 'size':
            other = 'large' if q.size == 'small' else 'small'
            return Query(colour=q.colour, shape=q.shape, size=other)
        return Query(colour=q.colour, shape=q.shape,
                     side=OPPOSITE_SIDE[q.side])

    def _spec_for(self, rng: np.random.Generator,
                  q: Query) -> Tuple[ObjectSpec, Optional[str], bool]:
        """An object meeting ``q``: spec, side, and whether its size is
        fixed (a phrase with a size must not see it shrunk)."""
        spec = ObjectSpec(q.shape or choice(rng, SHAPES),
                          q.colour or choice(rng, COLOURS),
                          q.size or random_size(rng))
        return spec, q.side, q.size is not None

    def _scene(self, rng: np.random.Generator, forced: Sequence[Query],
               axis: Optional[str]) -> Optional[List[ShapeObject]]:
        """Objects meeting each of ``forced``, then random ones.

        With ``axis``, every object is clearly on one side of that axis'
        dividing line. None when some object did not fit (redraw).
        """
        wanted = [self._spec_for(rng, q) for q in forced]
        n = int(rng.integers(max(self.min_objects, len(wanted)),
                             self.max_objects + 1))
        while len(wanted) < n:
            wanted.append((ObjectSpec(choice(rng, SHAPES),
                                      choice(rng, COLOURS),
                                      random_size(rng)), None, False))
        # Large objects first: they are the hard ones to fit.
        order = sorted(range(len(wanted)),
                       key=lambda i: wanted[i][0].size != 'large')
        placed: List[ShapeObject] = []
        for i in order:
            obj = self._place(rng, *wanted[i], placed, axis)
            if obj is None:
                return None
            placed.append(obj)
        return shuffled(rng, placed)

    def _place(self, rng: np.random.Generator, spec: ObjectSpec,
               side: Optional[str], fixed_size: bool,
               placed: Sequence[ShapeObject],
               axis: Optional[str]) -> Optional[ShapeObject]:
        sizes = [spec.size]
        if not fixed_size and spec.size == 'large':
            sizes.append('small')  # crowded scenes stay cheap to sample
        for size in sizes:
            radius = sample_radius(rng, size, self.image_size)
            mask = centre_mask(radius, self.image_size, placed, self.margin)
            if axis is not None:
                mask &= side_mask(radius, self.image_size, axis, side)
            centre = pick_centre(rng, mask)
            if centre is not None:
                return ShapeObject(spec.shape, spec.colour, size, centre[0],
                                   centre[1], radius)
        return None

    def _retry(self, draw) -> List[ShapeObject]:
        for _ in range(MAX_ATTEMPTS):
            objects = draw()
            if objects is not None:
                return objects
        raise RuntimeError(
            f'could not place the objects of an image in {MAX_ATTEMPTS} '
            f'tries: image_size={self.image_size} is too small for '
            f'max_objects={self.max_objects}; use a larger image_size or '
            'fewer objects')

    def _forced(self, rng: np.random.Generator, own: Query,
                other: Query) -> List[Query]:
        forced = [own] * (2 if rng.random() < TWO_TARGETS_P else 1)
        if rng.random() < FORCE_OTHER_P:
            forced.append(other)
        return forced[:self.max_objects]

    def targets(self, objects: Sequence[ShapeObject], q: Query) -> List[int]:
        """Indices of the objects ``q`` refers to."""
        return [i for i, o in enumerate(objects)
                if q.matches(o, self.image_size)]

    def _phrase_quad(self, rng: np.random.Generator,
                     ptype: str) -> GroundingQuad:
        q1 = self._random_query(rng, ptype)
        q2 = self._contrast(rng, q1, ptype)
        axis = SIDE_AXIS[q1.side] if q1.side is not None else None
        a_forced = self._forced(rng, q1, q2)
        b_forced = self._forced(rng, q2, q1)
        a = self._retry(lambda: self._scene(rng, a_forced, axis))
        b = self._retry(lambda: self._scene(rng, b_forced, axis))
        samples = [(img, q.text, ptype, self.targets(scene, q))
                   for img, scene in enumerate((a, b)) for q in (q1, q2)]
        return GroundingQuad([a, b], samples)

    def _control_quad(self, rng: np.random.Generator) -> GroundingQuad:
        scenes = [self._retry(lambda: self._scene(rng, (), None))
                  for _ in range(_IMAGES_PER_QUAD['control'])]
        samples = [(i, CONTROL_PHRASE, 'control', list(range(len(s))))
                   for i, s in enumerate(scenes)]
        return GroundingQuad(scenes, samples)


def odvg_record(image: str, size: int, objects: Sequence[ShapeObject],
                asked: Sequence[Tuple[str, str, List[int]]]) -> dict:
    """One ODVG line: the image and the phrases asked of it.

    Args:
        image: path relative to the annotation file.
        size: image side in pixels.
        objects: the scene.
        asked: ``(phrase, phrase type, target indices)`` per phrase.
    """
    caption, spans = caption_with_spans([p for p, _, _ in asked])
    regions, negatives = [], []
    for phrase, _, targets in asked:
        if not targets:
            negatives.append(phrase)
        for i in targets:
            regions.append({'bbox': list(objects[i].bbox), 'phrase': phrase,
                            'tokens_positive': [list(spans[phrase])],
                            'category': objects[i].shape})
    return {'filename': image, 'height': size, 'width': size,
            'grounding': {'caption': caption, 'regions': regions,
                          'negatives': negatives,
                          'phrase_types': {p: t for p, t, _ in asked}}}


def caption_with_spans(phrases: Sequence[str]) -> Tuple[str, dict]:
    """``'p1. p2.'`` and each distinct phrase's ``(start, end)`` in it."""
    spans, parts, pos = {}, [], 0
    for phrase in phrases:
        if phrase in spans:
            continue
        spans[phrase] = (pos, pos + len(phrase))
        parts.append(phrase)
        pos += len(phrase) + 2  # '. '
    return ('. '.join(parts) + '.' if parts else ''), spans
