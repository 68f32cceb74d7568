"""Run a deterministic chain of transforms once per sample, then replay it."""
from __future__ import annotations

from typing import Any, Dict, Hashable, Iterable, List, Optional, Sequence

from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose
from mmengine.structures import BaseDataElement

from mmfusion.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CachedCompose(BaseTransform):
    """``transforms`` run the first time a sample is loaded; afterwards
    their result is replayed from memory.

    On the small built-in datasets the whole pipeline (decode, load the
    boxes or mask, pack into tensors and data samples) is deterministic, so
    every epoch after the first would redo the same work. Cached, a batch
    costs only collation: a loader in the main process then waits well
    under a millisecond per batch, and needs no worker process competing
    with the compute threads (on 2 cores it took 10 % of each iteration)::

        train_pipeline:
          - type: CachedCompose
            transforms:
              - {type: CachedLoadImageFromFile, prefill: true}
              - {_scope_: mmdet, type: LoadAnnotations, with_bbox: true}
              - {type: PackDetTextInputs}

    The key is the sample's index in its dataset (``sample_idx``, which
    mmengine's ``BaseDataset`` sets), so one instance serves one dataset;
    each dataloader worker has its own cache. Random transforms draw anew
    for every call and so are refused here (their draw would repeat every
    epoch): put them after the ``CachedCompose``. Every call returns fresh
    containers (dicts, lists, data samples) that share the cached tensors
    and arrays: code after it may replace fields but must not write into
    the tensors in place (mmfusion's data preprocessors do not).

    With ``prefill=True`` the dataset runs every sample through it when it
    is built (:meth:`prefill_results`), so the first epoch replays too; the
    wrapped transforms' own image caches are then emptied, the packed
    samples holding the pixels already.

    Args:
        transforms: the transforms (configs or objects), run in order.
        max_size: most samples kept; later ones run every time. None:
            no limit (budget about the packed sample's size x dataset
            length of memory).
        prefill: fill the cache when the dataset is built.
    """

    def __init__(self, transforms: Sequence[Any],
                 max_size: Optional[int] = None,
                 prefill: bool = False) -> None:
        if max_size is not None and int(max_size) < 0:
            raise ValueError(f'CachedCompose max_size must be >= 0 or None, '
                             f'got {max_size}')
        # Built in mmfusion's registry (mmengine's Compose would use the
        # root one, which finds mmfusion's transforms only while the
        # default scope is mmfusion).
        self.compose = Compose([
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in transforms])
        for t in self.compose.transforms:
            reason = _randomness(t)
            if reason:
                raise ValueError(
                    f'CachedCompose: {type(t).__name__} {reason}, so '
                    'caching its result would repeat one draw every epoch; '
                    'move it after the CachedCompose in the pipeline')
        self.max_size = None if max_size is None else int(max_size)
        self.prefill_results_on_init = bool(prefill)
        self._cache: Dict[Hashable, Any] = {}

    @property
    def transforms(self) -> List[Any]:
        """The wrapped transforms."""
        return self.compose.transforms

    # The dataset's image prefill (BadSampleMixin) looks for these.
    @property
    def prefill_on_init(self) -> bool:
        return any(getattr(t, 'prefill_on_init', False)
                   for t in self.compose.transforms)

    def prefill(self, paths: Iterable[str]) -> int:
        """Prefill the image caches of the wrapped transforms."""
        paths = list(paths)
        added = 0
        for t in self.compose.transforms:
            if getattr(t, 'prefill_on_init', False):
                added += t.prefill(paths)
        return added

    def prefill_results(self, dataset) -> int:
        """Run every sample of ``dataset`` (whose pipeline holds this
        transform) through it, by ``dataset.prepare_data``, so that bad
        samples are reported as in loading. Returns how many were added.
        When every sample is cached, the wrapped transforms' caches are
        cleared (``clear_cache()``, where they have one)."""
        before = len(self._cache)
        for idx in range(len(dataset)):
            if self.max_size is not None and len(self._cache) >= \
                    self.max_size:
                break  # the rest would run now and again when loaded
            if idx not in self._cache:
                dataset.prepare_data(idx)
        if len(self._cache) >= len(dataset):
            for t in self.compose.transforms:
                if callable(getattr(t, 'clear_cache', None)):
                    t.clear_cache()
        return len(self._cache) - before

    def __len__(self) -> int:
        return len(self._cache)

    def transform(self, results: dict) -> Optional[dict]:
        key = results.get('sample_idx')
        if key is None:
            raise KeyError(
                "CachedCompose needs results['sample_idx'] (set by "
                "mmengine's BaseDataset.get_data_info) to key its cache; "
                'this pipeline was called without it')
        out = self._cache.get(key)
        if out is None:
            out = self.compose(results)
            if out is None:  # a transform rejected the sample: not cached
                return None
            if self.max_size is None or len(self._cache) < self.max_size:
                self._cache[key] = out
        return fresh_containers(out)

    def __repr__(self) -> str:
        inner = ', '.join(type(t).__name__ for t in self.compose.transforms)
        return f'{type(self).__name__}([{inner}], max_size={self.max_size})'


def _randomness(t: Any) -> str:
    """Why ``t`` draws at random ('' if it does not)."""
    # mmcv's and mmdet's random transforms (RandomFlip, RandomResize,
    # RandomApply, RandomChoice, ...) and mmfusion's all say so by name.
    if type(t).__name__.startswith('Random'):
        return 'draws at random'
    # A probability without a seed: drawn from the global generator (the
    # corruptions seed each sample's draw by its index: deterministic).
    prob = getattr(t, 'prob', None)
    if isinstance(prob, (int, float)) and 0 < prob < 1 and \
            getattr(t, 'seed', None) is None:
        return f'applies itself with probability {prob}'
    return ''


def fresh_containers(x: Any) -> Any:
    """``x`` with new dicts, lists and data elements, sharing the leaves
    (tensors, arrays, strings, numbers)."""
    if isinstance(x, BaseDataElement):
        new = type(x)()
        for k in x.metainfo_keys():
            new.set_field(x.get(k), k, field_type='metainfo')
        for k in x.keys():
            new.set_field(fresh_containers(x.get(k)), k, field_type='data')
        return new
    if isinstance(x, dict):
        return {k: fresh_containers(v) for k, v in x.items()}
    if isinstance(x, list):
        return [fresh_containers(v) for v in x]
    return x
