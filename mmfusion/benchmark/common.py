"""What every benchmark section shares: configs, models, loaders, timing.

Each task's benchmark model is its default experiment
(:data:`TASK_EXPERIMENTS`), composed like ``tools/train.py`` does, so the
figures measure what users run. ``overrides`` (Hydra syntax) shrink it for
``--quick``.
"""
from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch
from mmengine.config import Config
from torch import nn

#: The experiment each task's figures are measured on.
TASK_EXPERIMENTS: Dict[str, str] = {
    'cls': 'cls_shapes', 'det': 'det_shapes', 'seg': 'seg_shapes'}
TASKS = tuple(TASK_EXPERIMENTS)


def experiment_path(task: str) -> Path:
    """The packaged experiment YAML of ``task``."""
    from mmfusion.config.paths import package_config_dir
    if task not in TASK_EXPERIMENTS:
        raise ValueError(f'unknown task {task!r}; expected one of {TASKS}')
    return Path(package_config_dir()) / 'experiment' / \
        f'{TASK_EXPERIMENTS[task]}.yaml'


def task_config(task: str, overrides: Sequence[str] = (),
                work_dir: Optional[str] = None) -> Config:
    """The Runner-ready mmengine Config of ``task``'s default experiment."""
    from mmfusion.apis.runner_config import (build_mmengine_cfg,
                                             compose_and_check, prepare_cfg)
    path = experiment_path(task)
    cfg, path = compose_and_check(str(path), list(overrides))
    cfg = prepare_cfg(cfg, path, work_dir=work_dir)
    return build_mmengine_cfg(cfg, path)


@dataclass
class TaskParts:
    """A task's model and training loader, built as the Runner builds them.

    Attributes:
        cfg: the task's Config.
        model: the model (train mode, tokenizer fitted on the train texts).
        loader: the training DataLoader (same sampler, batch size, workers
            and collate function as the Runner's).
    """

    cfg: Config
    model: nn.Module
    loader: torch.utils.data.DataLoader


def build_task_parts(cfg: Config, seed: int = 0) -> TaskParts:
    """Model + train loader of ``cfg``, as ``Runner.from_cfg`` would."""
    from mmengine.runner import Runner

    from mmfusion.engine.hooks.tokenizer_hook import (dataset_texts,
                                                      get_tokenizer)
    from mmfusion.models.tokenizers import adopt_text_encoder_tokenizer
    from mmfusion.registry import MODELS
    from mmfusion.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader),
                                     seed=seed)
    encoder = getattr(model, 'text_encoder', None)
    pre = getattr(model, 'data_preprocessor', None)
    if encoder is not None and pre is not None:
        adopt_text_encoder_tokenizer(pre, encoder)
    tokenizer = get_tokenizer(model)
    if tokenizer is not None and hasattr(tokenizer, 'fit') and \
            not getattr(tokenizer, 'is_fitted', False):
        tokenizer.fit(dataset_texts(loader.dataset))
    model.train()
    return TaskParts(cfg, model, loader)


def build_optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """The optimiser of ``cfg.optim_wrapper`` as a plain torch optimiser."""
    opt_cfg = dict(cfg.optim_wrapper.optimizer)
    name = opt_cfg.pop('type')
    return getattr(torch.optim, name)(model.parameters(), **opt_cfg)


def train_step_fn(model: nn.Module, optimizer: torch.optim.Optimizer,
                  max_norm: Optional[float] = None
                  ) -> Callable[[dict], float]:
    """A plain training step ``step(data_batch) -> loss`` for ``model``:
    preprocess, forward with ``mode='loss'``, sum the loss terms, backward,
    clip, step. What a user writes by hand."""

    def step(data_batch: dict) -> float:
        data = model.data_preprocessor(data_batch, True)
        losses = model(**data, mode='loss')
        loss = sum(v.mean() if isinstance(v, torch.Tensor) else sum(v)
                   for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        return float(loss.detach())

    return step


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float('nan')


def time_calls(fn: Callable[[], object], repeats: int,
               warmup: int = 1) -> List[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def next_batches(loader: torch.utils.data.DataLoader, n: int) -> List[dict]:
    """The first ``n`` batches of ``loader`` (cycling if it is shorter)."""
    batches: List[dict] = []
    while len(batches) < n:
        for batch in loader:
            batches.append(batch)
            if len(batches) == n:
                break
    return batches
