"""The built-in shapes benchmark: scenes, renderer, generators, cache."""
from .ensure import GENERATORS, ensure_shapes_dataset, shapes_folder_name
from .grounding_generator import (CONTROL_PHRASE, GROUNDING_SUBSETS,
                                  PHRASE_TYPES, ShapesGroundingGenerator,
                                  grounding_ann_file_name,
                                  grounding_split_name)
from .phrases import SIDES, Query
from .renderer import render_scene, render_scene_image
from .scene import COLOURS, RELATIONS, SHAPES, SIZES, ShapeObject, holds
from .shapes_generator import (CLASSES, PHASES, QUESTION_TYPES, SUBSETS,
                               ShapesGenerator, ann_file_name, split_name)

__all__ = [
    'CLASSES', 'COLOURS', 'CONTROL_PHRASE', 'GENERATORS',
    'GROUNDING_SUBSETS', 'PHASES', 'PHRASE_TYPES', 'QUESTION_TYPES', 'Query',
    'RELATIONS', 'SHAPES', 'SIDES', 'SIZES', 'SUBSETS', 'ShapeObject',
    'ShapesGenerator', 'ShapesGroundingGenerator', 'ann_file_name',
    'ensure_shapes_dataset', 'grounding_ann_file_name',
    'grounding_split_name', 'holds', 'render_scene', 'render_scene_image',
    'shapes_folder_name', 'split_name'
]

# Referring segmentation split.
from .refseg_split import (REFSEG_CLASSES, REFSEG_PHASES,  # noqa: E402
                           REFSEG_SUBSETS, REFSEG_TYPES, ShapesRefSegGenerator,
                           ensure_refseg_dataset, refseg_ann_file,
                           refseg_folder_name, refseg_split_name)

__all__ += ['REFSEG_CLASSES', 'REFSEG_PHASES', 'REFSEG_SUBSETS',
            'REFSEG_TYPES', 'ShapesRefSegGenerator', 'ensure_refseg_dataset',
            'refseg_ann_file', 'refseg_folder_name', 'refseg_split_name']
