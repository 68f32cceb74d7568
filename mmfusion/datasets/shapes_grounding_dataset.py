"""The shapes grounding benchmark as a dataset, generated on first use."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

from mmfusion.registry import DATASETS

from .grounding_dataset import GroundingDataset
from .shapes import (GROUNDING_SUBSETS, PHASES, SHAPES,
                     ensure_shapes_dataset, grounding_ann_file_name)


@DATASETS.register_module()
class ShapesGroundingDataset(GroundingDataset):
    """One split of the shapes grounding (text-conditioned detection)
    benchmark.

    The benchmark folder for the ``generator`` settings
    (``data_root/det-<hash>``) is generated the first time it is needed and
    reused afterwards; then this is a :class:`GroundingDataset` over the
    split's ODVG file. With ``class_mode='category'`` the classes are the
    four shapes.

    Args:
        data_root: parent folder of generated benchmarks; relative paths are
            resolved against the current working directory.
        split: ``train``, ``val`` or ``test``.
        subset: ``main`` (phrases over colour, shape, size and position) or
            ``control`` (``every shape``: the text adds nothing).
        generator: :class:`ShapesGroundingGenerator` settings; unset ones
            take the defaults.
        class_mode: ``'match'`` or ``'category'`` (see
            :class:`GroundingDataset`).
        pipeline: transforms applied to each sample.
        **kwargs: :class:`GroundingDataset` / ``BaseDataset`` arguments.
    """

    def __init__(self,
                 data_root: str = 'data/shapes',
                 split: str = 'train',
                 subset: str = 'main',
                 generator: Optional[dict] = None,
                 class_mode: str = 'match',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 **kwargs: Any) -> None:
        if split not in PHASES:
            raise ValueError(f'ShapesGroundingDataset split must be one of '
                             f'{PHASES}, got {split!r}')
        if subset not in GROUNDING_SUBSETS:
            raise ValueError(f'ShapesGroundingDataset subset must be one of '
                             f'{GROUNDING_SUBSETS}, got {subset!r}')
        for key in ('ann_file', 'classes_file', 'data_prefix'):
            if key in kwargs:
                raise TypeError(f'ShapesGroundingDataset sets {key} itself '
                                'from split and subset; do not pass it')
        self.split = split
        self.subset = subset
        self.shapes_root = ensure_shapes_dataset(
            data_root, task='det', **dict(generator or {}))
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        if class_mode == 'category':
            metainfo.setdefault('classes', SHAPES)
        super().__init__(ann_file=grounding_ann_file_name(subset, split),
                         class_mode=class_mode,
                         data_root=str(self.shapes_root), pipeline=pipeline,
                         metainfo=metainfo, **kwargs)
