"""The built-in shapes benchmark as a dataset, generated on first use."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

from mmfusion.registry import DATASETS

from .multimodal_cls_dataset import MultimodalClsDataset
from .shapes import PHASES, SUBSETS, ann_file_name, ensure_shapes_dataset


@DATASETS.register_module()
class ShapesClsDataset(MultimodalClsDataset):
    """One split of the shapes yes/no benchmark.

    The benchmark folder for the ``generator`` settings is generated under
    ``data_root`` the first time it is needed (a few seconds to a minute, see
    :func:`ensure_shapes_dataset`) and reused afterwards; then this is a
    :class:`MultimodalClsDataset` over the split's jsonl file.

    Args:
        data_root: parent folder of generated benchmarks; relative paths are
            resolved against the current working directory.
        split: ``train``, ``val`` or ``test``.
        subset: ``main`` (questions needing both modalities),
            ``image_control`` (one fixed text: only the image helps) or
            ``text_control`` (only the text helps).
        generator: :class:`ShapesGenerator` settings (``image_size``,
            ``train_quads``, ``seed``, ...); unset ones take the defaults.
        pipeline: transforms applied to each sample.
        **kwargs: :class:`MultimodalClsDataset` / ``BaseDataset`` arguments
            (``test_mode``, ``indices``, ``serialize_data``, ...).
    """

    def __init__(self,
                 data_root: str = 'data/shapes',
                 split: str = 'train',
                 subset: str = 'main',
                 generator: Optional[dict] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 **kwargs: Any) -> None:
        if split not in PHASES:
            raise ValueError(f'ShapesClsDataset split must be one of '
                             f'{PHASES}, got {split!r}')
        if subset not in SUBSETS:
            raise ValueError(f'ShapesClsDataset subset must be one of '
                             f'{SUBSETS}, got {subset!r}')
        for key in ('ann_file', 'classes_file'):
            if key in kwargs:
                raise TypeError(f'ShapesClsDataset sets {key} itself from '
                                'split and subset; do not pass it')
        self.split = split
        self.subset = subset
        self.shapes_root = ensure_shapes_dataset(data_root,
                                                 **dict(generator or {}))
        super().__init__(ann_file=ann_file_name(subset, split),
                         data_root=str(self.shapes_root), pipeline=pipeline,
                         **kwargs)
