"""Write grounding annotations as ODVG lines (shared by the converters)."""
from __future__ import annotations

import json
import os
import os.path as osp
import random
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

Box = Tuple[float, float, float, float]


@dataclass
class GroundingImage:
    """One image and its objects, before it becomes an ODVG line.

    Attributes:
        path: the image file (absolute or relative to the working folder).
        width, height: image size in pixels.
        objects: ``(category name, [x1, y1, x2, y2])`` per object, pixels.
    """

    path: str
    width: int
    height: int
    objects: List[Tuple[str, Box]] = field(default_factory=list)


def clip_box(box: Sequence[float], width: int,
             height: int) -> Optional[Box]:
    """``box`` clipped to the image; None when nothing of positive area is
    left."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = max(0.0, min(x1, width)), max(0.0, min(x2, width))
    y1, y2 = max(0.0, min(y1, height)), max(0.0, min(y2, height))
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2, y2)


def grounding_record(image: GroundingImage, categories: Sequence[str],
                     out_dir: str, max_negatives: Optional[int] = None,
                     rng: Optional[random.Random] = None) -> dict:
    """The ODVG line of ``image``: category names as phrases.

    Each object is one region (``bbox``, ``phrase`` = its category name,
    ``tokens_positive`` = the name's span in the caption, ``category``); the
    categories absent from the image are its ``negatives`` (all of them, or
    ``max_negatives`` drawn with ``rng``). The caption joins the phrases
    (present ones first) as ``"dog. person. cat."``. ``filename`` is
    relative to ``out_dir`` (where the jsonl file goes).
    """
    present = []
    for name, _ in image.objects:
        if name not in present:
            present.append(name)
    absent = [c for c in categories if c not in present]
    if max_negatives is not None and len(absent) > max_negatives:
        picked = set((rng or random.Random(0)).sample(absent, max_negatives))
        absent = [c for c in absent if c in picked]
    spans, parts, pos = {}, [], 0
    for name in present + absent:
        spans[name] = [pos, pos + len(name)]
        parts.append(name)
        pos += len(name) + 2
    regions = [{'bbox': [round(v, 2) for v in box], 'phrase': name,
                'tokens_positive': [spans[name]], 'category': name}
               for name, box in image.objects]
    return {
        'filename': osp.relpath(osp.abspath(image.path),
                                osp.abspath(out_dir)),
        'height': int(image.height),
        'width': int(image.width),
        'grounding': {'caption': '. '.join(parts) + '.' if parts else '',
                      'regions': regions, 'negatives': absent},
    }


def write_grounding_jsonl(images: Iterable[GroundingImage],
                          categories: Sequence[str], out_file: str,
                          max_negatives: Optional[int] = None,
                          seed: int = 0) -> dict:
    """Write ``images`` to ``out_file`` (ODVG jsonl, one image a line).

    Returns:
        Counts: ``images``, ``boxes``, ``samples`` (distinct phrases per
        image, negatives included) and ``negatives``.
    """
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(seed)
    stats = {'images': 0, 'boxes': 0, 'samples': 0, 'negatives': 0}
    tmp = out_file + '.tmp'
    from mmfusion.utils.progress import track
    with open(tmp, 'w', encoding='utf-8') as f:
        for image in track(images, desc='convert', unit='image'):
            rec = grounding_record(image, categories, out_dir, max_negatives,
                                   rng)
            f.write(json.dumps(rec) + '\n')
            g = rec['grounding']
            stats['images'] += 1
            stats['boxes'] += len(g['regions'])
            stats['negatives'] += len(g['negatives'])
            stats['samples'] += len({r['phrase'] for r in g['regions']}) + \
                len(g['negatives'])
    os.replace(tmp, out_file)
    return stats
