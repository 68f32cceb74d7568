"""Pascal VOC XML annotations -> ODVG grounding jsonl (class names as
phrases).

A VOC folder (``VOCdevkit/VOC2007``) holds ``Annotations/<id>.xml``,
``JPEGImages/<id>.jpg`` and the split lists ``ImageSets/Main/<split>.txt``.
Every object becomes a region whose phrase is its class name (``pottedplant``
written as ``potted plant`` etc., unless ``raw_names``); the classes absent
from an image are its negatives (phrases that match nothing), as the
detection converters write them (:mod:`.odvg_writer`). VOC boxes are 1-based
and inclusive; they are written 0-based with exclusive ``x2, y2``.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import random
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Sequence, Tuple

from .odvg_writer import GroundingImage, clip_box, grounding_record

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')
#: VOC's run-together names as phrases.
VOC_PHRASES = {'aeroplane': 'aeroplane', 'diningtable': 'dining table',
               'motorbike': 'motorbike', 'pottedplant': 'potted plant',
               'tvmonitor': 'tv monitor'}
SPLITS = ('train', 'val', 'test')


def _text(node: Optional[ET.Element], tag: str, where: str) -> str:
    child = node.find(tag) if node is not None else None
    if child is None or child.text is None or not child.text.strip():
        raise ValueError(f'{where}: missing <{tag}>')
    return child.text.strip()


def parse_voc_xml(path: str, image_dir: str, skip_difficult: bool = False
                  ) -> Tuple[GroundingImage, List[str]]:
    """The image and objects of one VOC XML file, and the class names whose
    only instances were left out as ``difficult`` (neither regions nor
    negatives).

    Raises:
        ValueError: malformed XML or a box without area (file named).
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f'{path}: invalid XML ({err})') from None
    filename = _text(root, 'filename', path)
    image_path = osp.join(image_dir, filename)
    size = root.find('size')
    try:
        width = int(float(_text(size, 'width', path)))
        height = int(float(_text(size, 'height', path)))
    except ValueError:
        width = height = 0
    if width <= 0 or height <= 0:  # some VOC-style tools write 0
        if not osp.isfile(image_path):
            raise ValueError(f'{path}: no image size and image {image_path} '
                             'not found')
        from PIL import Image
        with Image.open(image_path) as im:
            width, height = im.size
    objects, kept, difficult_only = [], set(), set()
    for i, obj in enumerate(root.findall('object')):
        where = f'{path}: object {i + 1}'
        name = _text(obj, 'name', where)
        difficult = obj.find('difficult')
        is_difficult = difficult is not None and (difficult.text or '') \
            .strip() in ('1', 'true')
        if is_difficult and skip_difficult:
            difficult_only.add(name)
            continue
        box = obj.find('bndbox')
        try:
            xmin, ymin, xmax, ymax = (float(_text(box, k, where)) for k in
                                      ('xmin', 'ymin', 'xmax', 'ymax'))
        except ValueError as err:
            raise ValueError(f'{where}: bad <bndbox> ({err})') from None
        clipped = clip_box((xmin - 1, ymin - 1, xmax, ymax), width, height)
        if clipped is None:
            raise ValueError(f'{where}: box ({xmin}, {ymin}, {xmax}, {ymax}) '
                             f'has no area inside the {width}x{height} image')
        objects.append((name, clipped))
        kept.add(name)
    return (GroundingImage(path=image_path, width=width, height=height,
                           objects=objects),
            sorted(difficult_only - kept))


def find_voc_root(src: str) -> str:
    """``src`` itself when it holds ``Annotations/``, else its only
    ``VOC20xx`` child that does."""
    if osp.isdir(osp.join(src, 'Annotations')):
        return src
    if osp.isdir(src):
        years = sorted(d for d in os.listdir(src)
                       if osp.isdir(osp.join(src, d, 'Annotations')))
        if len(years) == 1:
            return osp.join(src, years[0])
        if years:
            raise ValueError(f'{src} holds {years}: pass one of them as IN')
    raise FileNotFoundError(f'{src} is not a Pascal VOC folder (expected '
                            'Annotations/, JPEGImages/, ImageSets/Main/)')


def voc_to_grounding(src: str, out: str,
                     splits: Optional[Sequence[str]] = None,
                     classes: Optional[Sequence[str]] = None,
                     raw_names: bool = False, skip_difficult: bool = False,
                     max_negatives: Optional[int] = None, seed: int = 0
                     ) -> Dict[str, dict]:
    """Convert a VOC folder into ODVG jsonl files.

    Args:
        src: the VOC year folder (or a VOCdevkit with one year in it).
        out: a folder (one ``<split>.jsonl`` per split), or a ``.jsonl``
            file when one split is converted.
        splits: split lists to read (``ImageSets/Main/<split>.txt``);
            default: those of train/val/test present, or every XML file as
            ``train`` without split lists.
        classes: class names (default: the 20 VOC classes); an object of
            another class is an error.
        raw_names: keep VOC's names (``pottedplant``) as the phrases.
        skip_difficult: leave out ``difficult`` objects (a class with only
            difficult instances in an image is then neither a region nor a
            negative there).
        max_negatives, seed: keep this many negatives per image, drawn with
            the seed (default: every absent class).

    Returns:
        Counts per split (images, boxes, samples, negatives).
    """
    root = find_voc_root(src)
    ann_dir, img_dir = osp.join(root, 'Annotations'), osp.join(
        root, 'JPEGImages')
    list_dir = osp.join(root, 'ImageSets', 'Main')
    if splits:
        ids = {}
        for split in splits:
            path = osp.join(list_dir, f'{split}.txt')
            if not osp.isfile(path):
                raise FileNotFoundError(f'split list {path} not found')
            ids[split] = _read_ids(path)
    else:
        ids = {s: _read_ids(osp.join(list_dir, f'{s}.txt')) for s in SPLITS
               if osp.isfile(osp.join(list_dir, f'{s}.txt'))}
        if not ids:
            ids = {'train': sorted(f[:-4] for f in os.listdir(ann_dir)
                                   if f.endswith('.xml'))}
    if out.endswith('.jsonl') and len(ids) != 1:
        raise ValueError(f'{len(ids)} splits ({sorted(ids)}) but OUT is one '
                         'file: pass a folder, or choose one with --split')
    names = list(classes) if classes else list(VOC_CLASSES)

    def phrase(name: str) -> str:
        return name if raw_names else VOC_PHRASES.get(name, name)

    stats = {}
    for split, split_ids in ids.items():
        images = []
        for image_id in split_ids:
            xml = osp.join(ann_dir, f'{image_id}.xml')
            if not osp.isfile(xml):
                raise FileNotFoundError(f'{xml} (listed in {split}.txt) not '
                                        'found')
            image, difficult_only = parse_voc_xml(xml, img_dir,
                                                  skip_difficult)
            for name, _ in image.objects:
                if name not in names:
                    raise ValueError(f'{xml}: class {name!r} is not one of '
                                     f'the classes {names}')
            image.objects = [(phrase(n), b) for n, b in image.objects]
            # Difficult-only classes are no negatives: they are there.
            images.append((image, [phrase(n) for n in difficult_only]))
        out_file = out if out.endswith('.jsonl') else osp.join(
            out, f'{split}.jsonl')
        stats[split] = _write(images, [phrase(n) for n in names], out_file,
                              max_negatives, seed)
    return stats


def _write(images: List[Tuple[GroundingImage, List[str]]],
           categories: List[str], out_file: str,
           max_negatives: Optional[int], seed: int) -> dict:
    """Write ODVG lines; each image's excluded phrases are no negatives."""
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(seed)
    stats = {'images': 0, 'boxes': 0, 'samples': 0, 'negatives': 0}
    with open(out_file + '.tmp', 'w', encoding='utf-8') as f:
        for image, excluded in images:
            cats = [c for c in categories if c not in excluded]
            rec = grounding_record(image, cats, out_dir, max_negatives, rng)
            f.write(json.dumps(rec) + '\n')
            g = rec['grounding']
            stats['images'] += 1
            stats['boxes'] += len(g['regions'])
            stats['negatives'] += len(g['negatives'])
            stats['samples'] += len({r['phrase'] for r in g['regions']}) + \
                len(g['negatives'])
    os.replace(out_file + '.tmp', out_file)
    return stats


def _read_ids(path: str) -> List[str]:
    with open(path, encoding='utf-8') as f:
        # Main/<split>.txt: one id a line; the per-class lists add " 1".
        return [line.split()[0] for line in f if line.strip()]
