"""The built-in shapes benchmark: scenes, renderer, generator, cache."""
from .ensure import ensure_shapes_dataset, shapes_folder_name
from .renderer import render_scene, render_scene_image
from .scene import COLOURS, RELATIONS, SHAPES, SIZES, ShapeObject, holds
from .shapes_generator import (CLASSES, PHASES, QUESTION_TYPES, SUBSETS,
                               ShapesGenerator, ann_file_name, split_name)

__all__ = [
    'CLASSES', 'COLOURS', 'PHASES', 'QUESTION_TYPES', 'RELATIONS', 'SHAPES',
    'SIZES', 'SUBSETS', 'ShapeObject', 'ShapesGenerator', 'ann_file_name',
    'ensure_shapes_dataset', 'holds', 'render_scene', 'render_scene_image',
    'shapes_folder_name', 'split_name'
]
