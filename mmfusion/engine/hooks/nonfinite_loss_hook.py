"""Stop (or skip the step) when the loss is NaN or Inf."""
from __future__ import annotations

import math
from typing import Dict

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmfusion.registry import HOOKS


class NonFiniteLossError(RuntimeError):
    """The training loss is NaN or Inf."""


def _value(v) -> float:
    if torch.is_tensor(v):
        return float(v.detach().float().mean()) if v.numel() else 0.0
    return float(v)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check every training loss before the optimizer sees it.

    The model's ``parse_losses`` is wrapped (in ``before_train``): when the
    total loss or any term is NaN or Inf,

    - ``action='raise'`` (default) stops the run with
      :class:`NonFiniteLossError`, naming the iteration and every loss term
      with its value; the weights never took that step, and the checkpoints
      written so far are intact;
    - ``action='skip'`` drops the step: the loss is replaced by a zero that
      touches every parameter (so distributed ranks stay in step), the
      optimizer step is skipped on every rank, and the skip is logged; more
      than ``max_skips`` skips in a run stop it as ``raise`` would.

    Whatever the action, the runner refuses to write a checkpoint whose
    weights are not finite (:class:`~mmfusion.engine.runner.
    NonFiniteWeightsError`).
    """

    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'raise', max_skips: int = 100) -> None:
        if action not in ('raise', 'skip'):
            raise ValueError(f"NonFiniteLossHook action must be 'raise' or "
                             f"'skip', got {action!r}")
        self.action = action
        self.max_skips = int(max_skips)
        self.skipped = 0
        self._skip_next_step = False

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        if getattr(model.parse_losses, '_mmfusion_checked', False):
            return
        original = model.parse_losses
        hook = self

        def checked(losses):
            loss, log_vars = original(losses)
            bad = not bool(torch.isfinite(loss.detach()).all())
            if get_world_size() > 1 and hook.action == 'skip':
                flag = torch.tensor([float(bad)], device=loss.device)
                all_reduce(flag)
                bad = bool(flag.item() > 0)
            if not bad:
                return loss, log_vars
            return hook._handle(runner, model, loss, log_vars)

        checked._mmfusion_checked = True
        model.parse_losses = checked
        wrapper = runner.optim_wrapper
        if not getattr(wrapper.step, '_mmfusion_checked', False):
            step = wrapper.step

            def guarded_step(*args, **kwargs):
                if hook._skip_next_step:
                    hook._skip_next_step = False
                    return None
                return step(*args, **kwargs)

            guarded_step._mmfusion_checked = True
            wrapper.step = guarded_step

    def _terms(self, log_vars: Dict) -> str:
        parts = []
        for key, value in log_vars.items():
            try:
                v = _value(value)
            except (TypeError, ValueError):
                continue
            mark = '' if math.isfinite(v) else ' <- not finite'
            parts.append(f'{key}={v:.6g}{mark}')
        return ', '.join(parts)

    def _handle(self, runner, model, loss, log_vars):
        iteration = runner.iter + 1
        terms = self._terms(log_vars)
        if self.action == 'skip' and self.skipped < self.max_skips:
            self.skipped += 1
            self._skip_next_step = True
            runner.logger.warning(
                f'NonFiniteLossHook: non-finite loss at iteration '
                f'{iteration} ({terms}); step skipped ({self.skipped} '
                f'skipped so far, at most {self.max_skips}).')
            zero = sum((p.sum() * 0.0 for p in model.parameters()
                        if p.requires_grad), loss.new_zeros(()))
            return zero, log_vars  # the logs show the non-finite values
        extra = (f' after {self.skipped} skipped steps (max_skips='
                 f'{self.max_skips})' if self.action == 'skip' else '')
        raise NonFiniteLossError(
            f'non-finite loss at iteration {iteration}{extra}: {terms}. '
            'The step was not taken and no checkpoint holds these values. '
            'Lower the learning rate, clip gradients (optim_wrapper.'
            'clip_grad), check the data, or set NonFiniteLossHook '
            "action='skip' in custom_hooks.")

    def after_train(self, runner) -> None:
        if self.skipped:
            runner.logger.warning(f'NonFiniteLossHook: {self.skipped} '
                                  'training steps were skipped for a '
                                  'non-finite loss.')
