"""Dataset converters: other formats -> mmfusion's task formats.

One rule for every task: the logic lives here, the command is
``tools/dataset_converters/<source>_to_<task>.py IN OUT``.
"""
from .coco_to_grounding import coco_to_grounding
from .odvg_writer import (GroundingImage, clip_box, grounding_record,
                          write_grounding_jsonl)
from .yolo_to_grounding import (parse_label_line, read_class_names,
                                yolo_to_grounding)

__all__ = [
    'GroundingImage', 'clip_box', 'coco_to_grounding', 'grounding_record',
    'parse_label_line', 'read_class_names', 'write_grounding_jsonl',
    'yolo_to_grounding'
]

# Referring segmentation.
from .coco_to_refseg import annotation_mask, coco_to_refseg  # noqa: E402
from .labelmap_to_refseg import labelmap_to_refseg  # noqa: E402
from .refseg_writer import RefSegImage, write_refseg  # noqa: E402
from .yolo_to_refseg import (parse_polygon_line,  # noqa: E402
                             rasterize_polygon, yolo_to_refseg)

__all__ += [
    'RefSegImage', 'annotation_mask', 'coco_to_refseg', 'labelmap_to_refseg',
    'parse_polygon_line', 'rasterize_polygon', 'write_refseg',
    'yolo_to_refseg'
]

# Classification from other formats, and Pascal VOC grounding.
from .cls_writer import ClsSample, split_groups, write_cls_dataset  # noqa: E402,E501
from .coco_captions_to_cls import coco_captions_to_cls  # noqa: E402
from .csv_to_cls import csv_to_cls  # noqa: E402
from .hateful_memes_to_cls import hateful_memes_to_cls  # noqa: E402
from .voc_to_grounding import parse_voc_xml, voc_to_grounding  # noqa: E402
from .yolo_to_cls import yolo_to_cls  # noqa: E402

__all__ += [
    'ClsSample', 'coco_captions_to_cls', 'csv_to_cls', 'hateful_memes_to_cls',
    'parse_voc_xml', 'split_groups', 'voc_to_grounding', 'write_cls_dataset',
    'yolo_to_cls'
]
