"""Deterministic generator of the shapes yes/no classification benchmark.

Every sample is an (image, question, yes/no) triple whose answer needs both
modalities. Samples are built in *quads*: two questions Q1, Q2 of one type and
two images A, B such that Q1 is true on A and false on B and Q2 the reverse,
giving ``(A, Q1, yes), (A, Q2, no), (B, Q1, no), (B, Q2, yes)``. Across a
split every distinct text and every image therefore has exactly as many yes
as no answers, and a model that sees only one modality is exactly at chance.

Question types (quad ``i`` has type ``QUESTION_TYPES[i % 4]``):

- ``colour``: ``is the {shape} {colour}?`` (the shape is unique in the image);
- ``shape``: ``is the {colour} shape a {shape}?`` (the colour is unique);
- ``count``: ``are there {n} {colour} shapes?`` / ``are there {n} {shape}s?``
  for n = two..four, ``is there one {colour} shape?`` / ``is there one
  {shape}?`` for n = 1; the count is exact;
- ``position``: ``is the {colour} {shape} {relation} the {colour} {shape}?``
  with relations ``left of``, ``right of``, ``above``, ``below`` (image y
  grows downwards); both objects are unique by colour and shape and their
  edges are at least one radius apart along the relation's axis.

Two control subsets check each encoder on its own:

- ``image_control``: the single text ``is there a red shape?``; half of the
  images hold a red object (only the image helps);
- ``text_control``: ``is {word} a colour?`` for a colour or shape word on a
  random image, each image getting one yes and one no text (only the text
  helps).

Sizes never appear in the texts; they are kept in the scene files for dense
tasks. See :meth:`ShapesGenerator.generate` for the files written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import (Callable, Dict, Iterator, List, Optional, Sequence, Tuple,
                    Union)

import numpy as np
from tqdm import tqdm

from .base_generator import BaseShapesGenerator
from .renderer import render_scene_image
from .scene import (COLOURS, OPPOSITE, RELATIONS, SHAPES, SIZES, ObjectSpec,
                    ShapeObject, centre_mask, choice, choose_distinct,
                    pick_centre, place_scene, random_size, relation_mask,
                    sample_radius, shuffled)

#: Class names, in index order (``classes.txt``).
CLASSES: Tuple[str, ...] = ('no', 'yes')
#: Question types of the main subset, in quad order.
QUESTION_TYPES: Tuple[str, ...] = ('colour', 'shape', 'count', 'position')
#: Subsets (``main`` and the two controls) and phases of each subset.
SUBSETS: Tuple[str, ...] = ('main', 'image_control', 'text_control')
PHASES: Tuple[str, ...] = ('train', 'val', 'test')
#: Version of the on-disk layout, recorded in ``meta.json``.
FORMAT_VERSION = 1

NUMBER_WORDS: Dict[int, str] = {1: 'one', 2: 'two', 3: 'three', 4: 'four'}
#: Largest count asked by count questions.
MAX_COUNT = 4
#: The fixed text of the image control subset.
IMAGE_CONTROL_TEXT = 'is there a red shape?'
IMAGE_CONTROL_COLOUR = 'red'
#: Chance of adding a distractor of the other queried attribute (colour and
#: shape questions), so that "is colour c present" is no shortcut.
DISTRACTOR_P = 0.5
#: Redraws of one image before giving up (a failure means the settings leave
#: no room for the objects, e.g. a tiny image_size with many objects).
MAX_ATTEMPTS = 1000

_IMAGES_PER_QUAD = {'main': 2, 'image_control': 4, 'text_control': 2}


def split_name(subset: str, phase: str) -> str:
    """File-name stem of a split: ``train`` or ``image_control_train``."""
    if subset not in SUBSETS:
        raise ValueError(f'unknown subset {subset!r}; expected one of '
                         f'{SUBSETS}')
    if phase not in PHASES:
        raise ValueError(f'unknown split {phase!r}; expected one of {PHASES}')
    return phase if subset == 'main' else f'{subset}_{phase}'


def ann_file_name(subset: str, phase: str) -> str:
    """Annotation file of a split, e.g. ``cls_text_control_val.jsonl``."""
    return f'cls_{split_name(subset, phase)}.jsonl'


@dataclass
class Quad:
    """The images and samples of one quad.

    Attributes:
        scenes: the quad's images as object lists (2 or 4 of them).
        samples: ``(image index into scenes, text, label, question_type)``.
    """

    scenes: List[List[ShapeObject]]
    samples: List[Tuple[int, str, str, str]]


@dataclass
class SplitData:
    """A whole split in memory (see :meth:`ShapesGenerator.build_split`).

    Attributes:
        name: split name (``train``, ``image_control_val``, ...).
        scenes: every image of the split as an object list.
        samples: dicts with ``image`` (index into ``scenes``), ``text``,
            ``label`` and ``question_type``.
    """

    name: str
    scenes: List[List[ShapeObject]] = field(default_factory=list)
    samples: List[dict] = field(default_factory=list)


class ShapesGenerator(BaseShapesGenerator):
    """Build the shapes benchmark; same settings give the same bytes.

    Each split draws from its own ``numpy`` generator seeded from ``(seed,
    crc32(split name))``, so splits are independent of each other and of the
    Python hash seed.

    Args:
        image_size: side of the square RGB images in pixels; object radii
            scale with it (small 5-6 px, large 9-10 px at 64 px).
        min_objects: fewest objects in an image (at least 2).
        max_objects: most objects in an image.
        train_quads: quads (4 samples, 2 images) of the main train split.
        val_quads: quads of the main val split, and of each control's val.
        test_quads: quads of the main test split, and of each control's test.
        control_quads: quads of each control subset's train split.
        seed: base seed.
    """

    SUBSETS = SUBSETS
    PHASES = PHASES
    MIN_IMAGE_SIZE = 16
    OBJECTS_REASON = 'position questions refer to two objects'
    split_name = staticmethod(split_name)

    def __init__(self, image_size: int = 64, min_objects: int = 2,
                 max_objects: int = 6, train_quads: int = 12000,
                 val_quads: int = 500, test_quads: int = 1000,
                 control_quads: int = 1500, seed: int = 0) -> None:
        super().__init__(image_size, min_objects, max_objects, train_quads,
                         val_quads, test_quads, control_quads, seed)

    def iter_quads(self, name: str) -> Iterator[Quad]:
        """The quads of split ``name``, in file order."""
        spec = {s[0]: s for s in self.splits()}
        if name not in spec:
            raise ValueError(f'unknown split {name!r}; expected one of '
                             f'{list(spec)}')
        _, subset, _, quads = spec[name]
        rng = self.split_rng(name)
        for i in range(quads):
            if subset == 'main':
                qtype = QUESTION_TYPES[i % len(QUESTION_TYPES)]
                yield getattr(self, f'_{qtype}_quad')(rng)
            elif subset == 'image_control':
                yield self._image_control_quad(rng)
            else:
                yield self._text_control_quad(rng)

    def build_split(self, name: str) -> SplitData:
        """Split ``name`` in memory: its scenes and samples, no files."""
        data = SplitData(name)
        for quad in self.iter_quads(name):
            base = len(data.scenes)
            data.scenes.extend(quad.scenes)
            for img, text, label, qtype in quad.samples:
                data.samples.append({'image': base + img, 'text': text,
                                     'label': label, 'question_type': qtype})
        return data

    def generate(self, out_dir: Union[str, Path],
                 progress: bool = True) -> Path:
        """Write the benchmark into ``out_dir`` (created if needed).

        Files written:

        - ``classes.txt``: ``no`` and ``yes``, one per line;
        - ``cls_<split>.jsonl`` per split (``train``, ``val``, ``test``,
          ``image_control_<phase>``, ``text_control_<phase>``): one sample a
          line, ``{"image": "images/<split>/000123.png", "text": ...,
          "label": "yes", "question_type": "colour"}``, paths relative to the
          file's folder;
        - ``images/<split>/<index>.png``: RGB PNGs;
        - ``scenes_<split>.jsonl``: one image a line, ``{"image", "width",
          "height", "objects": [{"shape", "colour", "size", "bbox": [x1, y1,
          x2, y2], "centre": [x, y], "radius"}]}``; boxes are tight, in
          continuous pixel coordinates with x2, y2 exclusive;
        - ``meta.json`` (last): settings, vocabulary and split sizes.

        Args:
            out_dir: folder to write into.
            progress: show a tqdm bar over the quads.

        Returns:
            ``out_dir`` as a :class:`Path`.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / 'classes.txt').write_text(''.join(c + '\n' for c in CLASSES))
        splits = self.splits()
        split_meta = {}
        # mininterval: fewer redraws in non-interactive (log file) output.
        with tqdm(total=sum(s[3] for s in splits), desc='shapes',
                  unit='quad', mininterval=1.0,
                  disable=not progress) as bar:
            for name, subset, phase, quads in splits:
                bar.set_postfix_str(name)
                split_meta[name] = self._write_split(
                    out, name, subset, phase, quads, bar)
        meta = {
            'format_version': FORMAT_VERSION,
            'settings': self.settings(),
            'classes': list(CLASSES),
            'question_types': list(QUESTION_TYPES),
            'vocabulary': {'colours': list(COLOURS), 'shapes': list(SHAPES),
                           'sizes': list(SIZES),
                           'relations': list(RELATIONS)},
            'splits': split_meta,
        }
        # meta.json last: its presence marks a complete folder.
        (out / 'meta.json').write_text(
            json.dumps(meta, indent=2, sort_keys=True) + '\n')
        return out

    # -------------------------------------------------------------- writing
    def _write_split(self, out: Path, name: str, subset: str, phase: str,
                     quads: int, bar: tqdm) -> dict:
        img_dir = out / 'images' / name
        img_dir.mkdir(parents=True, exist_ok=True)
        n_images = quads * _IMAGES_PER_QUAD[subset]
        width = max(6, len(str(max(0, n_images - 1))))
        size = self.image_size
        sample_lines: List[str] = []
        scene_lines: List[str] = []
        index = 0
        for quad in self.iter_quads(name):
            rel_paths = []
            for objects in quad.scenes:
                rel = f'images/{name}/{index:0{width}d}.png'
                index += 1
                # Low zlib effort: images are tiny and mostly background, and
                # the bytes stay deterministic for a given zlib.
                render_scene_image(objects, size).save(
                    out / rel, format='PNG', compress_level=1)
                rel_paths.append(rel)
                scene_lines.append(json.dumps({
                    'image': rel, 'width': size, 'height': size,
                    'objects': [o.to_dict() for o in objects]}))
            for img, text, label, qtype in quad.samples:
                sample_lines.append(json.dumps({
                    'image': rel_paths[img], 'text': text, 'label': label,
                    'question_type': qtype}))
            bar.update(1)
        ann = ann_file_name(subset, phase)
        (out / ann).write_text(''.join(line + '\n' for line in sample_lines))
        scenes = f'scenes_{name}.jsonl'
        (out / scenes).write_text(''.join(line + '\n'
                                          for line in scene_lines))
        return {'subset': subset, 'phase': phase, 'quads': quads,
                'images': index, 'samples': len(sample_lines),
                'ann_file': ann, 'scenes_file': scenes,
                'image_dir': f'images/{name}'}

    # ------------------------------------------------------------ sampling
    def _num_objects(self, rng: np.random.Generator, at_least: int = 1) -> int:
        """Objects in an image: uniform in ``[max(min, at_least), max]``."""
        lo = max(self.min_objects, at_least)
        return int(rng.integers(lo, self.max_objects + 1))

    def _retry(self, draw: Callable[[], Optional[List[ShapeObject]]]
               ) -> List[ShapeObject]:
        """Call ``draw`` until it places every object."""
        for _ in range(MAX_ATTEMPTS):
            objects = draw()
            if objects is not None:
                return objects
        raise RuntimeError(
            f'could not place the objects of an image in {MAX_ATTEMPTS} '
            f'tries: image_size={self.image_size} is too small for '
            f'max_objects={self.max_objects}; use a larger image_size or '
            'fewer objects')

    def _place(self, rng: np.random.Generator, specs: List[ObjectSpec],
               placed: Sequence[ShapeObject] = ()
               ) -> Optional[List[ShapeObject]]:
        """Place ``specs`` around ``placed``; the objects in random order."""
        objects = place_scene(rng, specs, self.image_size, self.margin,
                              placed)
        return None if objects is None else shuffled(rng, objects)

    def _unique_attr_scene(self, rng: np.random.Generator, key_attr: str,
                           key: str, value: str, other_value: str
                           ) -> Optional[List[ShapeObject]]:
        """An image where ``key`` (a shape or colour) occurs exactly once.

        Used by colour questions (``key_attr='shape'``: the unique shape has
        colour ``value``) and by shape questions (``key_attr='colour'``: the
        unique colour has shape ``value``). With :data:`DISTRACTOR_P` a
        distractor with ``other_value`` (the other queried answer) is added
        on another key; the remaining objects never carry ``key``.
        """
        def make(key_value: str, other: str) -> ObjectSpec:
            if key_attr == 'shape':
                return ObjectSpec(key_value, other, random_size(rng))
            return ObjectSpec(other, key_value, random_size(rng))

        keys, values = (SHAPES, COLOURS) if key_attr == 'shape' else (
            COLOURS, SHAPES)
        free_keys = [k for k in keys if k != key]
        n = self._num_objects(rng)
        specs = [make(key, value)]
        if rng.random() < DISTRACTOR_P:
            specs.append(make(choice(rng, free_keys), other_value))
        while len(specs) < n:
            specs.append(make(choice(rng, free_keys), choice(rng, values)))
        return self._place(rng, specs)

    def _colour_quad(self, rng: np.random.Generator) -> Quad:
        shape = choice(rng, SHAPES)
        c1, c2 = choose_distinct(rng, COLOURS, 2)
        a = self._retry(lambda: self._unique_attr_scene(
            rng, 'shape', shape, c1, c2))
        b = self._retry(lambda: self._unique_attr_scene(
            rng, 'shape', shape, c2, c1))
        return _quad(a, b, f'is the {shape} {c1}?', f'is the {shape} {c2}?',
                     'colour')

    def _shape_quad(self, rng: np.random.Generator) -> Quad:
        colour = choice(rng, COLOURS)
        s1, s2 = choose_distinct(rng, SHAPES, 2)
        a = self._retry(lambda: self._unique_attr_scene(
            rng, 'colour', colour, s1, s2))
        b = self._retry(lambda: self._unique_attr_scene(
            rng, 'colour', colour, s2, s1))
        return _quad(a, b, f'is the {colour} shape a {s1}?',
                     f'is the {colour} shape a {s2}?', 'shape')

    def _count_scene(self, rng: np.random.Generator, attr: str, value: str,
                     count: int) -> Optional[List[ShapeObject]]:
        """An image with exactly ``count`` objects whose ``attr`` is value."""
        n = self._num_objects(rng, at_least=count)
        specs = []
        for i in range(n):
            match = i < count
            if attr == 'colour':
                colour = value if match else choice(
                    rng, [c for c in COLOURS if c != value])
                shape = choice(rng, SHAPES)
            else:
                shape = value if match else choice(
                    rng, [s for s in SHAPES if s != value])
                colour = choice(rng, COLOURS)
            specs.append(ObjectSpec(shape, colour, random_size(rng)))
        return self._place(rng, specs)

    def _count_quad(self, rng: np.random.Generator) -> Quad:
        attr = 'colour' if rng.random() < 0.5 else 'shape'
        value = choice(rng, COLOURS if attr == 'colour' else SHAPES)
        top = min(MAX_COUNT, self.max_objects)
        n1, n2 = (int(v) + 1 for v in rng.choice(top, size=2, replace=False))
        a = self._retry(lambda: self._count_scene(rng, attr, value, n1))
        b = self._retry(lambda: self._count_scene(rng, attr, value, n2))
        return _quad(a, b, count_text(attr, value, n1),
                     count_text(attr, value, n2), 'count')

    def _position_scene(self, rng: np.random.Generator, x: Tuple[str, str],
                        relation: str, y: Tuple[str, str]
                        ) -> Optional[List[ShapeObject]]:
        """An image where object ``x`` (colour, shape) is ``relation`` ``y``.

        Both are unique by (colour, shape). ``y`` goes first anywhere, then
        ``x`` inside the relation's half-plane with the required gap.
        """
        size = self.image_size
        y_size = random_size(rng)
        y_r = sample_radius(rng, y_size, size)
        y_centre = pick_centre(rng, centre_mask(y_r, size, [], self.margin))
        if y_centre is None:
            return None
        y_obj = ShapeObject(y[1], y[0], y_size, y_centre[0], y_centre[1],
                            y_r)
        x_size = random_size(rng)
        x_r = sample_radius(rng, x_size, size)
        mask = (centre_mask(x_r, size, [y_obj], self.margin)
                & relation_mask(x_r, size, relation, y_obj))
        # Empty when y sits too close to the edge on x's side: redraw.
        x_centre = pick_centre(rng, mask)
        if x_centre is None:
            return None
        x_obj = ShapeObject(x[1], x[0], x_size, x_centre[0], x_centre[1],
                            x_r)
        n = self._num_objects(rng, at_least=2)
        specs = []
        while len(specs) < n - 2:
            colour, shape = choice(rng, COLOURS), choice(rng, SHAPES)
            if (colour, shape) in (x, y):
                continue  # keep the referred objects unique
            specs.append(ObjectSpec(shape, colour, random_size(rng)))
        return self._place(rng, specs, [x_obj, y_obj])

    def _position_quad(self, rng: np.random.Generator) -> Quad:
        while True:
            x = (choice(rng, COLOURS), choice(rng, SHAPES))
            y = (choice(rng, COLOURS), choice(rng, SHAPES))
            if x != y:
                break
        relation = choice(rng, RELATIONS)
        opposite = OPPOSITE[relation]
        q1 = f'is the {x[0]} {x[1]} {relation} the {y[0]} {y[1]}?'
        # Q2 is false where Q1 is true: the opposite word, or the two objects
        # swapped, so neither phrasing alone gives the answer away.
        if rng.random() < 0.5:
            q2 = f'is the {x[0]} {x[1]} {opposite} the {y[0]} {y[1]}?'
        else:
            q2 = f'is the {y[0]} {y[1]} {relation} the {x[0]} {x[1]}?'
        a = self._retry(lambda: self._position_scene(rng, x, relation, y))
        b = self._retry(lambda: self._position_scene(rng, x, opposite, y))
        return _quad(a, b, q1, q2, 'position')

    def _random_scene(self, rng: np.random.Generator,
                      colours: Tuple[str, ...] = COLOURS,
                      forced: Sequence[ObjectSpec] = ()
                      ) -> Optional[List[ShapeObject]]:
        """Random objects in ``colours``, plus the ``forced`` specs."""
        n = self._num_objects(rng, at_least=len(forced))
        specs = list(forced)
        while len(specs) < n:
            specs.append(ObjectSpec(choice(rng, SHAPES), choice(rng, colours),
                                    random_size(rng)))
        return self._place(rng, specs)

    def _image_control_quad(self, rng: np.random.Generator) -> Quad:
        """Four images, two with a red object; the same text for all."""
        others = tuple(c for c in COLOURS if c != IMAGE_CONTROL_COLOUR)
        scenes, samples = [], []
        for i, label in enumerate(('yes', 'no', 'yes', 'no')):
            if label == 'yes':
                # One or two red objects, so "exactly one" is no shortcut.
                forced = [ObjectSpec(choice(rng, SHAPES), IMAGE_CONTROL_COLOUR,
                                     random_size(rng))
                          for _ in range(1 + int(rng.integers(2)))]
                scene = self._retry(
                    lambda: self._random_scene(rng, others, forced))
            else:
                scene = self._retry(lambda: self._random_scene(rng, others))
            scenes.append(scene)
            samples.append((i, IMAGE_CONTROL_TEXT, label, 'image_control'))
        return Quad(scenes, samples)

    def _text_control_quad(self, rng: np.random.Generator) -> Quad:
        """Two random images, each with one colour word and one shape word."""
        scenes, samples = [], []
        for i in range(2):
            scenes.append(self._retry(lambda: self._random_scene(rng)))
            samples.append((i, f'is {choice(rng, COLOURS)} a colour?', 'yes',
                            'text_control'))
            samples.append((i, f'is {choice(rng, SHAPES)} a colour?', 'no',
                            'text_control'))
        return Quad(scenes, samples)



def count_text(attr: str, value: str, count: int) -> str:
    """The count question for ``count`` objects of colour/shape ``value``."""
    word = NUMBER_WORDS[count]
    if attr == 'colour':
        noun = 'shape' if count == 1 else 'shapes'
        phrase = f'{word} {value} {noun}'
    else:
        phrase = f'{word} {value}' + ('' if count == 1 else 's')
    return f'is there {phrase}?' if count == 1 else f'are there {phrase}?'


def _quad(a: List[ShapeObject], b: List[ShapeObject], q1: str, q2: str,
          qtype: str) -> Quad:
    """The four samples of a quad where Q1 holds on A and Q2 on B."""
    return Quad([a, b], [(0, q1, 'yes', qtype), (0, q2, 'no', qtype),
                         (1, q1, 'no', qtype), (1, q2, 'yes', qtype)])
