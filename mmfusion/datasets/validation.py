"""Check a config's datasets against their format before training.

Each split's dataset is built the way training builds it, but with
``skip_bad_samples=True`` (where the dataset supports it, see
:class:`~mmfusion.datasets.bad_samples.BadSampleMixin`), so the dataset's
own line checks run over the whole file and every bad line is collected
instead of only the first; a dataset that fails to build at all gives one
problem with its message. The report counts the samples per split and per
label (classification labels; for grounding, samples with boxes and
negatives; for segmentation, samples with a mask), and lists every problem
with file and line.
"""
from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

SPLIT_KEYS = (('train', 'train_dataloader'), ('val', 'val_dataloader'),
              ('test', 'test_dataloader'))
#: Dataset wrappers whose inner datasets are checked.
_WRAPPER_KEYS = ('datasets', 'dataset')


@dataclass
class SplitReport:
    """What :func:`validate_dataset_cfg` found for one split."""

    split: str
    dataset_type: str = ''
    source: str = ''
    samples: int = 0
    labels: Counter = field(default_factory=Counter)
    groups: Dict[str, Counter] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)
    classes: Optional[Sequence[str]] = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _accepts(cls: Any, name: str) -> bool:
    from mmfusion.config.validate import constructor_params
    params = constructor_params(cls)
    return params is not None and name in params


def _label_name(value: Any, classes: Optional[Sequence[str]]) -> str:
    if classes is not None and isinstance(value, int) and \
            0 <= value < len(classes):
        return str(classes[value])
    return str(value)


def count_labels(dataset: Any, report: SplitReport) -> None:
    """Fill ``report``'s sample and label counts from ``dataset``."""
    classes = getattr(dataset, 'metainfo', {}).get('classes')
    report.classes = tuple(classes) if classes is not None else None
    report.samples += len(dataset)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if info.get('gt_label') is not None:
            labels = info['gt_label']
            labels = labels if isinstance(labels, (list, tuple)) else [labels]
            if not labels:
                report.labels['(no label)'] += 1
            for lab in labels:
                report.labels[_label_name(lab, classes)] += 1
        elif 'instances' in info:
            boxes = len(info['instances'])
            report.labels['with boxes' if boxes else 'negative (no box)'] \
                += 1
            report.labels['(boxes)'] += boxes
        elif 'seg_map_path' in info:
            report.labels['with mask' if info['seg_map_path'] else
                          'no mask'] += 1
        for key in ('question_type', 'phrase_type'):
            if info.get(key) is not None:
                report.groups.setdefault(key, Counter())[info[key]] += 1


def _inner(cfg: dict) -> List[dict]:
    """The datasets a wrapper config holds (itself when it is none)."""
    for key in _WRAPPER_KEYS:
        inner = cfg.get(key)
        if isinstance(inner, dict) and 'type' in inner:
            return _inner(inner)
        if isinstance(inner, (list, tuple)) and inner and all(
                isinstance(d, dict) for d in inner):
            return [d for sub in inner for d in _inner(sub)]
    return [cfg]


def validate_dataset_cfg(split: str, cfg: dict,
                         decode_images: bool = False) -> SplitReport:
    """Build the dataset of ``cfg`` (a dataset config dict) collecting its
    problems; see the module docstring."""
    from mmfusion.registry import DATASETS
    report = SplitReport(split=split, dataset_type=str(cfg.get('type')))
    sources: List[str] = []
    for part in _inner(cfg):
        part = copy.deepcopy(part)
        cls = DATASETS.get(part.get('type')) if isinstance(
            part.get('type'), str) else part.get('type')
        if cls is None:
            report.problems.append(f'{split}: dataset type '
                                   f'{part.get("type")!r} is not registered')
            continue
        part['pipeline'] = []  # annotations only; images are checked below
        part['lazy_init'] = False
        if _accepts(cls, 'skip_bad_samples'):
            part.update(skip_bad_samples=True, max_bad_fraction=1.0)
        if decode_images and _accepts(cls, 'check_images'):
            part['check_images'] = 'decode'
        try:
            dataset = DATASETS.build(part)
        except Exception as exc:  # the dataset's own message says where
            sources.append(str(part.get('ann_file') or part.get('split')
                               or ''))
            report.problems.append(f'{type(exc).__name__}: {exc}')
            continue
        sources.append(str(getattr(dataset, 'ann_file', '')))
        report.problems.extend(getattr(dataset, 'bad_samples', []))
        count_labels(dataset, report)
    report.source = ', '.join(s for s in sources if s)
    return report


def validate_config_datasets(cfg: Dict[str, Any],
                             splits: Optional[Sequence[str]] = None,
                             decode_images: bool = False
                             ) -> List[SplitReport]:
    """Reports for the train/val/test datasets of a composed config (an
    mmengine ``Config`` or a plain dict), plus config-level checks
    (``num_classes`` against the classes the datasets declare)."""
    reports = []
    for split, key in SPLIT_KEYS:
        if splits and split not in splits:
            continue
        loader = cfg.get(key)
        if not loader or not loader.get('dataset'):
            continue
        ds_cfg = loader['dataset']
        ds_cfg = ds_cfg.to_dict() if hasattr(ds_cfg, 'to_dict') else dict(
            ds_cfg)
        reports.append(validate_dataset_cfg(split, ds_cfg, decode_images))
    num_classes = cfg.get('num_classes')
    for rep in reports:
        if (isinstance(num_classes, int) and rep.classes is not None
                and rep.dataset_type.endswith('ClsDataset')
                and len(rep.classes) != num_classes):
            rep.problems.append(
                f'{rep.source}: the config has num_classes={num_classes} '
                f'but the classes file lists {len(rep.classes)} classes '
                f'{list(rep.classes)}: add num_classes={len(rep.classes)} '
                'to the command')
    return reports


def format_reports(reports: Sequence[SplitReport]) -> str:
    """The report as text: counts per split and label, then every
    problem."""
    lines = []
    for rep in reports:
        lines.append(f'[{rep.split}] {rep.dataset_type} {rep.source}: '
                     f'{rep.samples} samples')
        total = sum(v for k, v in rep.labels.items() if k != '(boxes)')
        for label, n in sorted(rep.labels.items(),
                               key=lambda kv: (-kv[1], kv[0])):
            share = f' ({100.0 * n / total:.1f}%)' if total and \
                label != '(boxes)' else ''
            lines.append(f'    {label}: {n}{share}')
        for key, counts in rep.groups.items():
            lines.append(f'  by {key}: ' + ', '.join(
                f'{k} {v}' for k, v in sorted(counts.items())))
    problems = [(rep.split, p) for rep in reports for p in rep.problems]
    if problems:
        lines.append(f'{len(problems)} problem(s):')
        lines.extend(f'  [{split}] {p}' for split, p in problems)
    else:
        lines.append('no problems found')
    return '\n'.join(lines)

