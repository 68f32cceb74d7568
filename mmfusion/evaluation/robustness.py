"""Robustness evaluation: the test split again with a modality removed or
the inputs corrupted.

Each *setting* is one extra pass of the Runner's test loop over the test
split, with transforms inserted into the test pipeline just before the
packing transform (``Pack*``, e.g. ``PackMultimodalInputs``):

- ``drop_<modality>``: :class:`~mmfusion.datasets.transforms.DropModality`
  marks that modality absent for every sample; the model sees it through
  its presence flags (``image_present``/``text_present`` False, zero
  features), as for a ``"text": null`` sample;
- ``<kind>@<strength>`` for the kinds of :data:`CORRUPTIONS`.

:func:`robustness_metrics` folds the results into one flat dict of numbers:
the clean metrics under their usual names, every metric of a setting under
``robust/<setting>/<metric>``, and ``robust/gain_over_best_unimodal`` =
clean accuracy - max(accuracy with the text dropped, accuracy with the image
dropped) when both drops ran. That last key is a *difference* of
accuracies, in [-1, 1], not a score in [0, 1]: negative means the
multimodal model does worse than its better unimodal use.

Nothing here is specific to classification except the default
``main_metric='accuracy'`` (the metric of the gain and of the plot).
"""
from __future__ import annotations

import copy
import math
import os
import os.path as osp
from dataclasses import dataclass
from typing import (Any, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple)


class RobustnessSpecError(ValueError):
    """A bad ``--corrupt``/``--drop-modality`` value (a user error)."""


@dataclass(frozen=True)
class CorruptionKind:
    """How a ``--corrupt`` kind maps to a transform."""
    transform: str       # registered TRANSFORMS name
    arg: str             # the transform argument the strength goes to
    high: Optional[float]  # largest strength (None: unbounded)
    seeded: bool         # whether the transform takes a ``seed``
    meaning: str         # what the strength is, for messages and docs


#: The corruption kinds of ``--corrupt KIND:S1,S2,...``.
CORRUPTIONS: Dict[str, CorruptionKind] = {
    'image_noise': CorruptionKind(
        'ImageGaussianNoise', 'std', None, True,
        'additive Gaussian noise, std = S x 255 (pixel values clipped to '
        '[0, 255]); S >= 0'),
    'image_blur': CorruptionKind(
        'ImageGaussianBlur', 'sigma', 1.0, False,
        'Gaussian blur, sigma = S x the shorter image side; 0 <= S <= 1'),
    'text_word_drop': CorruptionKind(
        'TextWordDrop', 'prob', 1.0, True,
        'each word dropped with probability S (a text left without words '
        'is absent); 0 <= S <= 1'),
    'text_shuffle': CorruptionKind(
        'TextShuffle', 'prob', 1.0, True,
        'word order shuffled with probability S per sample; 0 <= S <= 1'),
}

#: Modalities ``--drop-modality`` accepts.
DROP_MODALITIES = ('text', 'image')


@dataclass
class RobustSetting:
    """One extra evaluation: its name and the transforms it inserts."""
    name: str
    transforms: List[dict]
    kind: Optional[str] = None       # corruption kind, or None for a drop
    strength: Optional[float] = None
    modality: Optional[str] = None   # dropped modality, or None


# ------------------------------------------------------------------ parsing
def format_strength(value: float) -> str:
    """The shortest text that reads back as ``value`` (``0.1``, ``2``)."""
    short = format(value, 'g')
    return short if float(short) == value else repr(value)


def parse_corruption(spec: str) -> Tuple[str, List[float]]:
    """``'image_noise:0.1,0.5'`` -> ``('image_noise', [0.1, 0.5])``.

    Raises:
        RobustnessSpecError: no ``:``, an unknown kind (the message lists
            the valid ones), a strength that is not a number or is out of
            the kind's range, or no strength.
    """
    valid = ', '.join(CORRUPTIONS)
    if not isinstance(spec, str) or ':' not in spec:
        raise RobustnessSpecError(
            f'--corrupt expects KIND:S1,S2,... (e.g. image_noise:0.1,0.5), '
            f'got {spec!r}; kinds: {valid}')
    kind, _, values = spec.partition(':')
    kind = kind.strip()
    if kind not in CORRUPTIONS:
        raise RobustnessSpecError(
            f'unknown corruption kind {kind!r} in --corrupt {spec!r}; valid '
            f'kinds: {valid}')
    info = CORRUPTIONS[kind]
    strengths: List[float] = []
    for text in values.split(','):
        text = text.strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise RobustnessSpecError(
                f'--corrupt {spec!r}: strength {text!r} is not a number '
                f'({kind}: {info.meaning})') from None
        if (not math.isfinite(value) or value < 0
                or (info.high is not None and value > info.high)):
            upper = f'{info.high:g}]' if info.high is not None else 'inf)'
            raise RobustnessSpecError(
                f'--corrupt {spec!r}: strength {text} is out of range '
                f'[0, {upper} for {kind} ({info.meaning})')
        if value not in strengths:
            strengths.append(value)
    if not strengths:
        raise RobustnessSpecError(
            f'--corrupt {spec!r} gives no strength; write e.g. '
            f'{kind}:0.1,0.5')
    return kind, strengths


def parse_drop_modality(spec: str) -> List[str]:
    """``'text'``, ``'image'`` or ``'text,image'`` -> the list of them.

    Raises:
        RobustnessSpecError: an unknown or empty modality.
    """
    out: List[str] = []
    for name in str(spec).split(','):
        name = name.strip()
        if name not in DROP_MODALITIES:
            raise RobustnessSpecError(
                f'--drop-modality: unknown modality {name!r}; valid: '
                f'{", ".join(DROP_MODALITIES)} (repeat the flag or give '
                'text,image to run both)')
        if name not in out:
            out.append(name)
    return out


def build_settings(drop_modalities: Iterable[str] = (),
                   corruptions: Iterable[Tuple[str, Sequence[float]]] = (),
                   seed: int = 0) -> List[RobustSetting]:
    """The settings to evaluate: drops first, then each corruption kind's
    strengths in the order given (repeats are merged).

    Args:
        drop_modalities: modality names (see :data:`DROP_MODALITIES`).
        corruptions: ``(kind, strengths)`` pairs as
            :func:`parse_corruption` returns them.
        seed: seed of the random corruptions.
    """
    settings: List[RobustSetting] = []
    seen = set()
    for m in drop_modalities:
        if m not in DROP_MODALITIES:
            raise RobustnessSpecError(f'unknown modality {m!r}; valid: '
                                      f'{", ".join(DROP_MODALITIES)}')
        name = f'drop_{m}'
        if name not in seen:
            seen.add(name)
            settings.append(RobustSetting(
                name, [dict(type='DropModality', modalities=[m])],
                modality=m))
    for kind, strengths in corruptions:
        if kind not in CORRUPTIONS:
            raise RobustnessSpecError(
                f'unknown corruption kind {kind!r}; valid kinds: '
                f'{", ".join(CORRUPTIONS)}')
        info = CORRUPTIONS[kind]
        for s in strengths:
            s = float(s)
            name = f'{kind}@{format_strength(s)}'
            if name in seen:
                continue
            seen.add(name)
            t = {'type': info.transform, info.arg: s}
            if info.seeded:
                t['seed'] = int(seed)
            settings.append(RobustSetting(name, [t], kind=kind, strength=s))
    return settings


# -------------------------------------------------------------- pipelines
def _type_name(t: Any) -> str:
    kind = t.get('type') if isinstance(t, Mapping) else type(t).__name__
    if isinstance(kind, type):
        kind = kind.__name__
    return str(kind).rsplit('.', 1)[-1]


def insert_before_pack(pipeline: Sequence[Any],
                       transforms: Sequence[dict]) -> List[Any]:
    """``pipeline`` with ``transforms`` placed just before its first packing
    transform (a type whose name starts with ``Pack``).

    Raises:
        RobustnessSpecError: the pipeline has no packing transform.
    """
    pipeline = list(pipeline)
    for i, t in enumerate(pipeline):
        if _type_name(t).startswith('Pack'):
            return (pipeline[:i] + [copy.deepcopy(dict(x)) for x in transforms]
                    + pipeline[i:])
    raise RobustnessSpecError(
        'the test pipeline has no packing transform (a `Pack...` type such '
        'as PackMultimodalInputs) to insert the robustness transforms '
        f'before; its transforms: {[_type_name(t) for t in pipeline]}')


def with_transforms(dataloader_cfg: Mapping, transforms: Sequence[dict]
                    ) -> dict:
    """A deep copy of a dataloader config whose dataset pipeline(s) get
    ``transforms`` before packing (dataset wrappers such as ConcatDataset
    are followed through ``dataset``/``datasets``)."""
    cfg = copy.deepcopy(dict(dataloader_cfg))
    found = []

    def visit(ds: Any) -> None:
        if not isinstance(ds, Mapping):
            return
        if 'pipeline' in ds:
            ds['pipeline'] = insert_before_pack(ds['pipeline'], transforms)
            found.append(ds)
        inner = ds.get('dataset')
        if isinstance(inner, Mapping):
            visit(inner)
        for d in ds.get('datasets') or ():
            visit(d)

    if 'dataset' not in cfg:
        raise RobustnessSpecError('the test dataloader config has no '
                                  '`dataset`')
    visit(cfg['dataset'])
    if not found:
        raise RobustnessSpecError('the test dataset config has no '
                                  '`pipeline` to insert transforms into')
    return cfg


# -------------------------------------------------------------- running
def evaluate_settings(runner, settings: Sequence[RobustSetting],
                      dataloader_cfg: Mapping, evaluator_cfg: Any,
                      loop_cfg: Optional[Mapping] = None,
                      skip_hooks: Sequence[type] = ()
                      ) -> Dict[str, Dict[str, float]]:
    """Run the test loop once per setting on an already tested ``runner``.

    For each setting the Runner builds a fresh test loop (its dataloader
    from ``dataloader_cfg`` with the setting's transforms, a fresh evaluator
    from ``evaluator_cfg``) exactly as ``runner.test()`` would, and runs it;
    the model and its loaded weights are reused. The runner's own test loop
    is put back afterwards. Hooks that are instances of ``skip_hooks`` (e.g.
    the prediction pictures of ``--show-dir``) are left out of these runs.

    Returns:
        ``{setting name: {metric: value}}`` in the order of ``settings``.
    """
    saved = (runner._test_loop, runner._test_dataloader,
             runner._test_evaluator, runner._hooks)
    loop_cfg = copy.deepcopy(dict(loop_cfg or {}))
    results: Dict[str, Dict[str, float]] = {}
    try:
        runner._hooks = [h for h in saved[3]
                         if not isinstance(h, tuple(skip_hooks))]
        for setting in settings:
            runner.logger.info(
                f'robustness: evaluating `{setting.name}` (test pipeline + '
                f'{setting.transforms})')
            runner._test_dataloader = with_transforms(dataloader_cfg,
                                                      setting.transforms)
            runner._test_evaluator = copy.deepcopy(evaluator_cfg)
            runner._test_loop = runner.build_test_loop(loop_cfg)
            metrics = runner._test_loop.run()
            results[setting.name] = {k: float(v) for k, v in metrics.items()}
    finally:
        (runner._test_loop, runner._test_dataloader, runner._test_evaluator,
         runner._hooks) = saved
    return results


def robustness_metrics(clean: Mapping[str, float],
                       results: Mapping[str, Mapping[str, float]],
                       main_metric: str = 'accuracy') -> Dict[str, float]:
    """One flat dict: clean metrics, ``robust/<setting>/<metric>`` and
    ``robust/gain_over_best_unimodal`` (see the module docstring)."""
    out = {k: float(v) for k, v in clean.items()}
    for name, metrics in results.items():
        for key, value in metrics.items():
            out[f'robust/{name}/{key}'] = float(value)
    drops = [results.get(f'drop_{m}', {}).get(main_metric)
             for m in DROP_MODALITIES]
    if main_metric in clean and all(v is not None for v in drops):
        out['robust/gain_over_best_unimodal'] = float(
            clean[main_metric]) - max(float(v) for v in drops)
    return out


def plot_robustness(clean: Mapping[str, float],
                    results: Mapping[str, Mapping[str, float]],
                    settings: Sequence[RobustSetting], out_file: str,
                    main_metric: str = 'accuracy') -> str:
    """Write the robustness curve as a PNG; returns its path.

    One line per corruption kind: x = strength, y = ``main_metric``, with
    the clean value at strength 0; each dropped modality is a horizontal
    dashed reference line. Drawn with matplotlib's Agg canvas (no display,
    no global backend change).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    base = clean.get(main_metric)
    curves: Dict[str, List[Tuple[float, float]]] = {}
    for s in settings:
        value = results.get(s.name, {}).get(main_metric)
        if s.kind is not None and value is not None:
            curves.setdefault(s.kind, []).append((s.strength, value))
    for kind, points in curves.items():
        points = sorted(p for p in points if p[0] != 0)
        if base is not None:
            points = [(0.0, float(base))] + points
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker='o', label=kind)
    styles = {'text': 'tab:red', 'image': 'tab:purple'}
    for s in settings:
        value = results.get(s.name, {}).get(main_metric)
        if s.modality is not None and value is not None:
            ax.axhline(value, linestyle='--', color=styles.get(s.modality),
                       label=f'{s.modality} dropped ({value:.3f})')
    if base is not None:
        ax.axhline(float(base), linestyle=':', color='grey',
                   label=f'clean ({float(base):.3f})')
    values = [y for pts in curves.values() for _, y in pts] + [
        v for v in (results.get(s.name, {}).get(main_metric)
                    for s in settings) if v is not None]
    if base is not None:
        values.append(float(base))
    if values and all(0 <= v <= 1 for v in values):
        ax.set_ylim(0, 1.02)  # a score: show it on its whole range
    ax.set_xlabel('corruption strength')
    ax.set_ylabel(main_metric)
    ax.set_title(f'Robustness: test {main_metric}')
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc='best')
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file)
    return out_file
