"""The shapes referring-segmentation splits as a dataset, made on first use."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

from mmfusion.registry import DATASETS

from .refseg_dataset import RefSegDataset
from .shapes.refseg_split import (REFSEG_PHASES, REFSEG_SUBSETS,
                                  ensure_refseg_dataset, refseg_ann_file)


@DATASETS.register_module()
class ShapesRefSegDataset(RefSegDataset):
    """One split of the shapes referring-segmentation benchmark.

    The folder for the ``generator`` settings (``data_root/seg-<hash>``) is
    generated the first time it is needed (:func:`ensure_refseg_dataset`),
    then this is a :class:`RefSegDataset` over the split's jsonl file with
    the binary classes (``background``, ``referred``).

    Args:
        data_root: parent folder of generated benchmarks.
        split: ``train``, ``val`` or ``test``.
        subset: ``main`` (phrases decide the mask) or ``all_shapes`` (the
            "every shape" control).
        generator: :class:`ShapesRefSegGenerator` settings.
        with_label: read each line's ``label`` (the number of referred
            objects) as the classification target, with the classes of
            ``count_classes.txt`` (multi-task experiments).
        pipeline: transforms applied to each sample.
        **kwargs: :class:`RefSegDataset` arguments.
    """

    def __init__(self,
                 data_root: str = 'data/shapes',
                 split: str = 'train',
                 subset: str = 'main',
                 generator: Optional[dict] = None,
                 with_label: bool = False,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 **kwargs: Any) -> None:
        if split not in REFSEG_PHASES:
            raise ValueError(f'ShapesRefSegDataset split must be one of '
                             f'{REFSEG_PHASES}, got {split!r}')
        if subset not in REFSEG_SUBSETS:
            raise ValueError(f'ShapesRefSegDataset subset must be one of '
                             f'{REFSEG_SUBSETS}, got {subset!r}')
        for key in ('ann_file', 'classes', 'label_classes'):
            if key in kwargs:
                raise TypeError(f'ShapesRefSegDataset sets {key} itself; do '
                                'not pass it')
        self.split = split
        self.subset = subset
        self.shapes_root = ensure_refseg_dataset(data_root,
                                                 **dict(generator or {}))
        super().__init__(
            ann_file=refseg_ann_file(subset, split),
            data_root=str(self.shapes_root),
            label_classes='count_classes.txt' if with_label else None,
            pipeline=pipeline, **kwargs)
