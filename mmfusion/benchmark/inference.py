"""Benchmark section: inference throughput of :class:`MultimodalInferencer`.

For each task the default experiment's model is built (tokenizer fitted on
the training texts, weights as initialised), saved as a checkpoint the way
``MMFusionRunner.save_checkpoint`` writes one, and its resolved config is
written as ``WORK_DIR/config.yaml`` as ``tools/train.py`` does. The
inferencer is then built from that work dir and checkpoint exactly as a
user would build it (``MultimodalInferencer(work_dir, ckpt)``), and timed on
real (image path, text) pairs of the task's test split, at batch size 1 and
32, with nothing drawn or written.

Figures (samples per second, higher is better):

- ``infer/<task>/bs1``: one sample per forward pass.
- ``infer/<task>/bs32``: 32 samples per forward pass.

The time of a call covers everything the inferencer does per call: reading
the images from disk, the test pipeline, collation, preprocessing
(tokenisation, normalisation), the forward pass and turning the data samples
into prediction dicts. Building the inferencer is not timed.

The weights are untrained: the speed of classification and segmentation
does not depend on them; detection's post-processing (NMS over the boxes
above the score threshold) may differ somewhat from a trained model's.
"""
from __future__ import annotations

import os
import os.path as osp
import tempfile
import time
from typing import (TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import torch
from mmengine.config import Config
from torch import nn

from .common import TASKS, build_task_parts, experiment_path, median

if TYPE_CHECKING:
    from mmfusion.apis import MultimodalInferencer

#: An inferencer input: (image path, text).
Pair = Tuple[str, Optional[str]]

#: The batch sizes measured (names ``infer/<task>/bs<N>``).
BATCH_SIZES: Tuple[int, ...] = (1, 32)


def _prepare_work_dir(task: str, overrides: Sequence[str],
                      work_dir: str) -> Config:
    """Compose ``task``'s experiment as ``tools/train.py`` does, write the
    resolved ``WORK_DIR/config.yaml`` and return the Runner-ready Config.

    The same steps as :func:`mmfusion.benchmark.common.task_config`, kept
    here because the YAML is written from the composed (OmegaConf) config,
    which ``task_config`` does not return.
    """
    from omegaconf import OmegaConf

    from mmfusion.apis.runner_config import (build_mmengine_cfg,
                                             compose_and_check, prepare_cfg)
    from mmfusion.config.convert import dump_resolved_yaml
    cfg, path = compose_and_check(str(experiment_path(task)),
                                  list(overrides))
    cfg = prepare_cfg(cfg, path, work_dir=work_dir)
    # As tools/train.py writes it: resolved, and reloadable as a plain
    # config by any tool (the inferencer composes it again).
    dumped = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    dumped.resume = False
    dumped.launcher = 'none'
    dump_resolved_yaml(dumped, osp.join(work_dir, 'config.yaml'))
    return build_mmengine_cfg(cfg, path)


def save_task_checkpoint(model: nn.Module, cfg: Config,
                         dataset_meta: Mapping, path: str) -> str:
    """Write ``model`` to ``path`` as ``MMFusionRunner.save_checkpoint``
    does: CPU weights, and a plain-data ``meta`` holding the config text,
    the dataset meta (class names) and the fitted tokenizer (what
    :class:`~mmfusion.engine.hooks.TokenizerHook` stores), so that the safe
    loader reads it and the inferencer restores the vocabulary."""
    from mmengine.runner.checkpoint import weights_to_cpu

    from mmfusion.engine.hooks.tokenizer_hook import get_tokenizer
    from mmfusion.engine.runner import make_plain
    from mmfusion.utils.checkpoint import atomic_save
    meta = dict(epoch=0, iter=0, cfg=cfg.pretty_text,
                time=time.strftime('%Y%m%d_%H%M%S'),
                dataset_meta=dict(dataset_meta))
    tokenizer = get_tokenizer(model)
    if tokenizer is not None and getattr(tokenizer, 'is_fitted', True):
        meta['tokenizer'] = tokenizer.state_dict()
    checkpoint = {'meta': meta,
                  'state_dict': weights_to_cpu(model.state_dict()),
                  'message_hub': {}}
    # numpy scalars / tuples-of-numpy in the dataset meta become plain
    # Python, as PlainCheckpointHook does, so weights_only loading works.
    make_plain(checkpoint)
    atomic_save(checkpoint, path)
    return path


def split_pairs(cfg: Config, limit: Optional[int] = None) -> List[Pair]:
    """(image path, text) of the samples of ``cfg``'s test split, in order
    (the first ``limit`` of them when given)."""
    import copy

    from mmfusion.registry import DATASETS
    dataset = DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))
    n = len(dataset) if limit is None else min(limit, len(dataset))
    pairs = []
    for i in range(n):
        info = dataset.get_data_info(i)
        pairs.append((info['img_path'], info.get('text')))
    return pairs


def _repeat_to(pairs: Sequence[Pair], n: int) -> List[Pair]:
    """``n`` pairs, cycling through ``pairs`` (tiny splits have < 32)."""
    if not pairs:
        raise ValueError('the test split is empty: nothing to infer on')
    return [pairs[i % len(pairs)] for i in range(n)]


def build_task_inferencer(task: str, overrides: Sequence[str] = (),
                          work_dir: Optional[str] = None,
                          device: Optional[str] = None
                          ) -> Tuple['MultimodalInferencer', List[Pair]]:
    """``(inferencer, test pairs)`` of ``task``: its model saved to
    ``WORK_DIR/bench_infer.pth`` with its config in
    ``WORK_DIR/config.yaml``, and the inferencer built from both as a user
    builds it."""
    from mmfusion.apis import MultimodalInferencer
    work_dir = work_dir or tempfile.mkdtemp(prefix=f'mmfusion_infer_{task}_')
    os.makedirs(work_dir, exist_ok=True)
    cfg = _prepare_work_dir(task, overrides, work_dir)
    parts = build_task_parts(cfg)
    ckpt = save_task_checkpoint(parts.model, cfg,
                                parts.loader.dataset.metainfo,
                                osp.join(work_dir, 'bench_infer.pth'))
    # Only the model was needed: free the training dataset before timing.
    del parts
    inferencer = MultimodalInferencer(work_dir, ckpt, device=device)
    return inferencer, split_pairs(cfg)


def time_inferencer(inferencer: 'MultimodalInferencer',
                    pairs: Sequence[Pair], batch_size: int, repeats: int,
                    warmup: int = 1) -> float:
    """Samples per second of ``inferencer(pairs, batch_size=...)``: the
    median over ``repeats`` calls (after ``warmup`` untimed ones) of
    ``len(pairs)`` / the call's wall time."""
    pairs = list(pairs)

    def call() -> None:
        # No out_dir, no return_vis: nothing is drawn or written.
        inferencer(pairs, batch_size=batch_size, return_vis=False)

    for _ in range(warmup):
        call()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        rates.append(len(pairs) / (time.perf_counter() - start))
    return median(rates)


def run_inference(tasks: Sequence[str] = TASKS, quick: bool = False,
                  overrides_by_task: Optional[Mapping[str,
                                                      Sequence[str]]] = None,
                  data_root: Optional[str] = None,
                  work_dir: Optional[str] = None,
                  device: Optional[str] = None,
                  num_threads: Optional[int] = None) -> Dict[str, float]:
    """Inference throughput of each task's inferencer.

    Args:
        tasks: which of ``'cls'``, ``'det'``, ``'seg'``.
        quick: 2 samples at batch size 1 and one batch of 32 (test pairs
            repeated if the split is smaller), one timed call each after one
            warm-up; meant for tiny data (pass the tiny-dataset overrides).
            Otherwise 32 samples at batch size 1 and 64 at batch size 32
            (two batches), median of 3 calls.
        overrides_by_task: Hydra overrides per task (``{'cls': [...]}``).
        data_root: where the shapes data lives (``data_root=`` override).
        work_dir: one sub-folder per task (``<work_dir>/infer_<task>``)
            receives the config and checkpoint; default: a temp folder.
        device: the inferencer's device (default: CUDA when present).
        num_threads: torch intra-op threads while timing (default: the
            caller's ``torch.get_num_threads()``); restored afterwards.

    Returns:
        ``{'infer/<task>/bs1': samples/s, 'infer/<task>/bs32': samples/s}``
        for every task.
    """
    overrides_by_task = dict(overrides_by_task or {})
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f'unknown tasks {unknown}; expected some of {TASKS}')
    base_dir = work_dir or tempfile.mkdtemp(prefix='mmfusion_infer_')
    # (samples per call, timed calls) at each batch size.
    plan = {1: (2, 1), 32: (32, 1)} if quick else {1: (32, 3), 32: (64, 3)}
    threads_before = torch.get_num_threads()
    threads = num_threads or threads_before
    results: Dict[str, float] = {}
    try:
        for task in tasks:
            results.update(_run_task(task, overrides_by_task, data_root,
                                     osp.join(base_dir, f'infer_{task}'),
                                     device, threads, plan))
    finally:
        torch.set_num_threads(threads_before)
    return results


def _run_task(task: str, overrides_by_task: Mapping[str, Sequence[str]],
              data_root: Optional[str], work_dir: str,
              device: Optional[str], threads: int,
              plan: Mapping[int, Tuple[int, int]]) -> Dict[str, float]:
    """The figures of one task (see :func:`run_inference`); ``plan`` maps
    a batch size to (samples per call, timed calls)."""
    import torch
    overrides = list(overrides_by_task.get(task, ()))
    if data_root is not None:
        overrides.append(f'data_root={data_root}')
    inferencer, pairs = build_task_inferencer(task, overrides, work_dir,
                                              device)
    # Timed at the thread count asked for (not the config's
    # env_cfg.torch_num_threads), whatever ran before in this process.
    torch.set_num_threads(threads)
    results: Dict[str, float] = {}
    for bs in BATCH_SIZES:
        n, repeats = plan[bs]
        results[f'infer/{task}/bs{bs}'] = time_inferencer(
            inferencer, _repeat_to(pairs, n), bs, repeats)
    return results
