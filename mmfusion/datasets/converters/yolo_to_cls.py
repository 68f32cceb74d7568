"""YOLO labels + class names -> yes/no questions (classification).

For each image, "is there a {name} in the image?" ("an" before a vowel)
for some classes it shows (answer ``yes``) and as many it does not show
(``no``), so every image has balanced answers. The ``no`` questions go to the classes with the most
``yes`` answers so far among those absent from the image, so each question
text is answered ``yes`` and ``no`` about equally often too, and neither
modality alone can answer. Images without any labelled object are left out
(counted).
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Dict, List, Optional

from .cls_writer import ClsSample, split_groups, write_cls_dataset
from .yolo_to_grounding import read_class_names, yolo_images

CLASSES = ('no', 'yes')
DEFAULT_TEMPLATE = 'is there {a} {name} in the image?'


def article(name: str) -> str:
    """'an' before a vowel, else 'a' (for the ``{a}`` of templates)."""
    return 'an' if name[:1].lower() in 'aeiou' else 'a'


def yolo_to_cls(root: str, out_dir: str, classes_file: Optional[str] = None,
                split: Optional[str] = None, positives_per_image: int = 2,
                template: str = DEFAULT_TEMPLATE, val_fraction: float = 0.1,
                test_fraction: float = 0.1, seed: int = 0
                ) -> Dict[str, object]:
    """Write presence questions for the YOLO dataset ``root`` to
    ``out_dir`` (``classes.txt`` = ``no``, ``yes``; ``<split>.jsonl``).

    Args:
        root: YOLO layout (``images/[split/]``, ``labels/[split/]``,
            ``classes.txt`` or ``data.yaml``).
        out_dir: output folder.
        classes_file: class names file instead of ``root``'s.
        split: only ``images/SPLIT`` (default: every image).
        positives_per_image: ``yes`` questions per image (fewer when it
            shows fewer classes); as many ``no`` questions are added.
        template: the question, with ``{name}`` for the class name and
            optionally ``{a}`` for its article (``a``/``an``).
        val_fraction, test_fraction, seed: the split by image.
    """
    if '{name}' not in template:
        raise ValueError(f'template must contain {{name}}, got {template!r}')
    if positives_per_image < 1:
        raise ValueError('positives_per_image must be >= 1')
    names = read_class_names(root, classes_file)
    rng = random.Random(seed)
    stats: dict = {}
    chosen = []
    empty = 0
    for image in yolo_images(root, names, split, stats):
        present = sorted({n for n, _ in image.objects})
        if not present:
            empty += 1
            continue
        k = min(positives_per_image, len(present))
        chosen.append((image.path, present, rng.sample(present, k)))
    yes = Counter(n for _, _, pos in chosen for n in pos)
    no: Counter = Counter()
    samples: List[ClsSample] = []
    for path, present, pos in chosen:
        absent = [n for n in names if n not in present]
        rng.shuffle(absent)  # random tie-break, then most-needed first
        absent.sort(key=lambda n: no[n] - yes[n])
        neg = absent[:len(pos)]
        no.update(neg)
        for name, answer in [(n, 'yes') for n in pos] + [(n, 'no')
                                                          for n in neg]:
            samples.append(ClsSample(image=path,
                                     text=template.format(
                                         name=name, a=article(name)),
                                     label=answer))
    if not samples:
        raise ValueError(f'{root}: no image has a labelled object')
    splits = split_groups(samples, val_fraction, test_fraction, seed)
    out = write_cls_dataset(splits, out_dir, CLASSES)
    out['images_without_objects'] = empty
    out.update({k: v for k, v in stats.items() if v})
    return out
