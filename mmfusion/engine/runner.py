"""mmfusion's Runner: safe loading, atomic saving and exact resume.

:class:`MMFusionRunner` is mmengine's ``Runner`` with these changes; the
command-line tools build it through :func:`build_runner`.

- **Loading** (``load_from``, ``resume``, testing) reads files with
  :func:`~mmfusion.utils.checkpoint.safe_load_checkpoint` and loads weights
  with :func:`~mmfusion.utils.checkpoint.load_weights`, which names missing
  and unexpected keys and shape mismatches; ``load_strict: true`` in the
  config makes any of them an error.
- **Saving** writes atomically (temporary file, fsync, rename), refuses to
  write weights that are not finite, and stores ``resume_state``: the data
  position of the train loop and every rank's random states (Python,
  numpy, torch, CUDA), as plain lists and tensors.
- **Resume**: ``--resume auto`` takes the checkpoint named by
  ``last_checkpoint`` if it is complete, else the newest complete one; the
  loop is positioned at the next batch and the random states are put back
  right before the first resumed iteration.
"""
from __future__ import annotations

import os.path as osp
import time
from typing import Callable, Optional, Union

import mmengine
import torch
from mmengine.dist import all_gather_object, get_dist_info, is_main_process
from mmengine.fileio import join_path
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import (_load_checkpoint, save_checkpoint,
                                        weights_to_cpu)
from mmengine.utils import apply_to, get_git_hash
from torch.utils.data import DataLoader

from mmfusion.registry import RUNNERS
from mmfusion.utils.checkpoint import (CheckpointSaveError, atomic_save,
                                       find_resume_checkpoint,
                                       install_mmengine_loader, load_weights,
                                       safe_load_checkpoint)
from mmfusion.utils.rng import get_rng_state
from mmfusion.utils.setup_env import set_torch_threads


class NonFiniteWeightsError(RuntimeError):
    """Weights hold NaN or Inf: no checkpoint of them is written."""


def make_plain(checkpoint: dict) -> None:
    """Message-hub buffers and numpy values to plain data, in place (what
    :class:`~mmfusion.engine.hooks.PlainCheckpointHook` does; idempotent,
    so checkpoints stay loadable with ``weights_only=True`` whether or not
    the hook is configured)."""
    from mmengine.logging import HistoryBuffer

    from mmfusion.engine.hooks.plain_checkpoint_hook import _plain
    hub = checkpoint.get('message_hub')
    if isinstance(hub, dict):
        scalars = {}
        for key, buf in hub.get('log_scalars', {}).items():
            if isinstance(buf, HistoryBuffer):
                log, count = buf.data
                buf = dict(log_history=_plain(log),
                           count_history=_plain(count),
                           max_length=int(buf.max_length))
            scalars[key] = buf
        hub['log_scalars'] = scalars
        hub['runtime_info'] = _plain(hub.get('runtime_info', {}))
    if isinstance(checkpoint.get('meta'), dict):
        checkpoint['meta'] = _plain(checkpoint['meta'])


def restore_buffers(checkpoint: dict) -> None:
    """Inverse of :func:`make_plain` for the message hub, in place."""
    from mmengine.logging import HistoryBuffer
    hub = checkpoint.get('message_hub')
    if not isinstance(hub, dict):
        return
    scalars = hub.get('log_scalars', {})
    for key, value in list(scalars.items()):
        if isinstance(value, dict) and 'log_history' in value:
            scalars[key] = HistoryBuffer(value['log_history'],
                                         value['count_history'],
                                         value['max_length'])


def nonfinite_tensors(state_dict) -> list:
    """Names of floating tensors with a NaN or an Inf."""
    return [k for k, v in state_dict.items()
            if torch.is_tensor(v) and v.is_floating_point()
            and not bool(torch.isfinite(v).all())]


@RUNNERS.register_module()
class MMFusionRunner(Runner):
    """mmengine's Runner with safe loading, atomic saving and exact resume
    (see the module docstring). Same arguments; ``cfg.load_strict`` (bool,
    default False) makes loading weights fail on any mismatch."""

    _loaded_resume_state: Optional[dict] = None

    def setup_env(self, env_cfg: dict) -> None:
        """mmengine's environment set-up, plus ``torch_num_threads``."""
        super().setup_env(env_cfg)
        set_torch_threads(env_cfg)

    # ------------------------------------------------------------ loading
    def _read_checkpoint(self, filename: str,
                         map_location: Union[str, Callable]):
        if '://' not in filename:
            return safe_load_checkpoint(filename, map_location=map_location)
        return _load_checkpoint(filename, map_location=map_location)

    def load_checkpoint(self, filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: Optional[bool] = None,
                        revise_keys: list = [(r'^module.', '')]):
        """Load weights from ``filename`` (safely; mismatches named)."""
        if strict is None:
            strict = bool(self.cfg.get('load_strict', False))
        checkpoint = self._read_checkpoint(filename, map_location)
        if not isinstance(checkpoint, dict):
            raise RuntimeError(f'no state_dict found in checkpoint file '
                               f'{filename}')
        meta = checkpoint.get('meta')
        if isinstance(meta, dict) and 'config' in meta:
            # mmengine's resume would run this string as a Python config
            # (Config.fromstring(..., '.py')), which can execute code;
            # mmfusion never writes it (its config is meta['cfg']).
            meta.pop('config')
            self.logger.warning(f'{filename}: ignored meta["config"] (a '
                                'Python config mmengine would execute).')
        restore_buffers(checkpoint)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        state = checkpoint.get('state_dict', checkpoint)
        model = self.model.module if is_model_wrapper(self.model) \
            else self.model
        load_weights(model, state, strict=strict, source=filename,
                     revise_keys=[(p, r) for p, r in revise_keys],
                     logger=self.logger)
        self._loaded_resume_state = checkpoint.get('resume_state')
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def load_or_resume(self) -> None:
        if self._has_loaded:
            return None
        resume_from = None
        if self._resume and self._load_from is None:
            resume_from = find_resume_checkpoint(self.work_dir)
            if resume_from is None:
                self.logger.warning(
                    f'--resume auto: no complete checkpoint in '
                    f'{self.work_dir}; training starts from the beginning.')
            else:
                self.logger.info(
                    f'Auto resumed from the latest checkpoint {resume_from}.')
        elif self._resume and self._load_from is not None:
            resume_from = self._load_from
        if resume_from is not None:
            self.resume(resume_from)
            self._has_loaded = True
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)
            self._has_loaded = True

    def resume(self, filename: str, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        self._loaded_resume_state = None
        super().resume(filename, resume_optimizer, resume_param_scheduler,
                       map_location)
        state = self._loaded_resume_state or {}
        loop = self.train_loop
        if hasattr(loop, 'load_resume_state'):
            loop.load_resume_state(state.get('loop'))
        rngs = state.get('rng')
        if rngs and hasattr(loop, 'set_pending_rng_state'):
            rank, world_size = get_dist_info()
            if len(rngs) != world_size:
                self.logger.warning(
                    f'the checkpoint holds random states of {len(rngs)} '
                    f'processes, this run has {world_size}: the resumed run '
                    'cannot repeat the interrupted one exactly.')
            loop.set_pending_rng_state(rngs[rank % len(rngs)])
        elif not rngs:
            self.logger.warning(
                f'{filename} holds no random state (not written by '
                'mmfusion): training resumes, but not bit-exactly.')

    # ------------------------------------------------------------- saving
    def _training_rng_state(self) -> dict:
        loop = self._train_loop
        getter = getattr(loop, 'training_rng_state', None)
        state = getter() if callable(getter) else None
        return state if state is not None else get_rng_state()

    def save_checkpoint(self, out_dir: str, filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None, by_epoch: bool = True,
                        backend_args: Optional[dict] = None):
        """mmengine's ``save_checkpoint`` plus ``resume_state``, a finite
        weights check, and an atomic write for local paths."""
        # Every rank takes part in gathering the random states.
        rng = self._training_rng_state()
        _, world_size = get_dist_info()
        rngs = all_gather_object(rng) if world_size > 1 else [rng]
        if not is_main_process():
            return
        model = self.model.module if is_model_wrapper(self.model) \
            else self.model
        state_dict = weights_to_cpu(model.state_dict())
        bad = nonfinite_tensors(state_dict)
        if bad:
            shown = ', '.join(bad[:10]) + (' ...' if len(bad) > 10 else '')
            raise NonFiniteWeightsError(
                f'not writing checkpoint {filename}: {len(bad)} weight '
                f'tensors hold NaN or Inf ({shown}) at iteration '
                f'{self.iter + 1}. Lower the learning rate, clip gradients '
                '(optim_wrapper.clip_grad) or check the data; earlier '
                'checkpoints are kept.')
        if meta is None:
            meta = {}
        elif not isinstance(meta, dict):
            raise TypeError(
                f'meta should be a dict or None, but got {type(meta)}')
        if by_epoch:
            meta.setdefault('epoch', self.epoch + 1)
            meta.setdefault('iter', self.iter)
        else:
            meta.setdefault('epoch', self.epoch)
            meta.setdefault('iter', self.iter + 1)
        if file_client_args is not None:
            from mmengine.fileio import FileClient
            file_client = FileClient.infer_client(file_client_args, out_dir)
            filepath = file_client.join_path(out_dir, filename)
        else:
            filepath = join_path(out_dir, filename, backend_args=backend_args)
        rank, _ = get_dist_info()
        meta.update(
            written_by_rank=rank, world_size=world_size,
            cfg=self.cfg.pretty_text, seed=self.seed,
            experiment_name=self.experiment_name,
            time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
            mmengine_version=mmengine.__version__ + get_git_hash())
        train_loader = getattr(self._train_loop, 'dataloader', None) \
            if not isinstance(self._train_loop, dict) else None
        if train_loader is None and isinstance(self._train_dataloader,
                                               DataLoader):
            train_loader = self._train_dataloader
        if hasattr(getattr(train_loader, 'dataset', None), 'metainfo'):
            meta.update(dataset_meta=train_loader.dataset.metainfo)
        checkpoint = {
            'meta': meta,
            'state_dict': state_dict,
            'message_hub': apply_to(self.message_hub.state_dict(),
                                    lambda x: hasattr(x, 'cpu'),
                                    lambda x: x.cpu()),
        }
        if save_optimizer:
            if isinstance(self.optim_wrapper, OptimWrapper):
                checkpoint['optimizer'] = apply_to(
                    self.optim_wrapper.state_dict(),
                    lambda x: hasattr(x, 'cpu'), lambda x: x.cpu())
            else:
                raise TypeError(
                    'self.optim_wrapper should be an `OptimWrapper` '
                    'or `OptimWrapperDict` instance, but got '
                    f'{self.optim_wrapper}')
        if save_param_scheduler and self.param_schedulers is None:
            save_param_scheduler = False
        if save_param_scheduler:
            if isinstance(self.param_schedulers, dict):
                checkpoint['param_schedulers'] = {
                    name: [s.state_dict() for s in schedulers]
                    for name, schedulers in self.param_schedulers.items()}
            else:
                checkpoint['param_schedulers'] = [
                    s.state_dict() for s in self.param_schedulers]
        loop = self._train_loop
        checkpoint['resume_state'] = {
            'loop': loop.resume_state() if hasattr(loop, 'resume_state')
            else None,
            'rng': rngs,
        }
        self.call_hook('before_save_checkpoint', checkpoint=checkpoint)
        make_plain(checkpoint)
        if '://' in filepath or file_client_args or backend_args:
            save_checkpoint(checkpoint, filepath,
                            file_client_args=file_client_args,
                            backend_args=backend_args)
        else:
            try:
                atomic_save(checkpoint, filepath)
            except CheckpointSaveError as exc:
                raise CheckpointSaveError(
                    f'{exc}. Training stops here; the checkpoints written '
                    f'before are intact in {osp.dirname(filepath)}.') from \
                    exc.__cause__


def build_runner(cfg) -> Runner:
    """The Runner for a config: ``cfg.runner_type`` (default
    :class:`MMFusionRunner`), built from the config."""
    from mmfusion.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    runner_type = cfg.get('runner_type') or 'MMFusionRunner'
    cls = RUNNERS.get(runner_type) if isinstance(runner_type, str) \
        else runner_type
    if cls is None:
        raise KeyError(f'runner_type {runner_type!r} is not registered')
    return cls.from_cfg(cfg)


# mmengine's own loaders (Runner of other types, init_cfg=Pretrained,
# mmengine.runner.load_checkpoint) read files through the safe loader too.
install_mmengine_loader()

__all__ = ['MMFusionRunner', 'NonFiniteWeightsError', 'build_runner',
           'nonfinite_tensors']
