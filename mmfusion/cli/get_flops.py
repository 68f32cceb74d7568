"""FLOPs and parameters of a model, from its config (no training needed).

::

    python tools/analysis/get_flops.py cls_shapes
    python tools/analysis/get_flops.py cls_shapes model/fusion=cross_attention
    python tools/analysis/get_flops.py work_dirs/cls_shapes \
        --checkpoint work_dirs/cls_shapes/iter_9000.pth --json-out flops.json

The forward pass (``mode='tensor'``: the network, without loss or
post-processing) is counted on real batches of the validation split (texts
of their real lengths), per sample; see :mod:`mmfusion.analysis.flops` for
what is counted (2 x multiply-accumulates of matrix products,
convolutions and attention). Without ``--checkpoint`` the tokenizer is
fitted on the split's texts first (the count does not depend on the
weights).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

from .common import exit_on_user_error, split_overrides


def parse_args(argv: Sequence[str]):
    parser = argparse.ArgumentParser(
        description='Count the FLOPs (per sample) and parameters of the '
        "config's model on real batches. Every argument with `=` is a Hydra "
        'override.',
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('config', help='experiment YAML (any folder), a '
                        'packaged experiment name, or a work dir config.yaml')
    parser.add_argument('--checkpoint', default=None,
                        help='load these weights and tokenizer first')
    parser.add_argument('--split', choices=('train', 'val', 'test'),
                        default='val', help='batches from this split '
                        '(default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='samples per counted batch (default: '
                        '%(default)s)')
    parser.add_argument('--num-batches', type=int, default=1,
                        help='batches counted; the result is their mean per '
                        'sample (default: %(default)s)')
    parser.add_argument('--depth', type=int, default=3,
                        help='module depth of the breakdown: 1 = the '
                        "model's parts (default: %(default)s)")
    parser.add_argument('--json-out', default=None,
                        help='write the result here as JSON')
    rest, overrides = split_overrides(argv)
    args = parser.parse_args(rest)
    args.overrides = overrides
    return args


def count(args) -> Dict:
    import copy

    from mmengine.runner import Runner

    from mmfusion.apis.runner_config import compose_and_check
    from mmfusion.config import to_mmengine_config
    from mmfusion.engine.hooks.tokenizer_hook import (dataset_texts,
                                                      get_tokenizer)
    from mmfusion.analysis.flops import model_flops
    from mmfusion.registry import MODELS

    cfg, _ = compose_and_check(args.config, args.overrides)
    mm = to_mmengine_config(cfg)
    loader_cfg = copy.deepcopy(mm.get(f'{args.split}_dataloader'))
    if not loader_cfg:
        raise KeyError(f'the config has no {args.split}_dataloader')
    loader_cfg['batch_size'] = args.batch_size
    loader_cfg['num_workers'] = 0
    loader_cfg.pop('persistent_workers', None)
    loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    loader = Runner.build_dataloader(loader_cfg)

    model = MODELS.build(mm.model)
    tokenizer = get_tokenizer(model)
    if args.checkpoint:
        from mmengine.runner.checkpoint import _load_checkpoint_to_model

        from mmfusion.apis.inferencer import (MultimodalInferencer,
                                              read_checkpoint)
        ckpt = read_checkpoint(args.checkpoint)
        _load_checkpoint_to_model(model, ckpt)
        MultimodalInferencer._restore_tokenizer(model, ckpt, args.checkpoint)
    elif tokenizer is not None and hasattr(tokenizer, 'fit') and not \
            getattr(tokenizer, 'is_fitted', True):
        tokenizer.fit(dataset_texts(loader.dataset))

    totals: List[Dict] = []
    for i, batch in enumerate(loader):
        if i >= args.num_batches:
            break
        totals.append(model_flops(model, batch, depth=args.depth))
    if not totals:
        raise ValueError(f'the {args.split} split has no samples')
    samples = sum(t['batch_size'] for t in totals)
    per_sample = sum(t['total'] for t in totals) / samples
    modules: Dict[str, float] = {}
    for t in totals:
        for k, v in t['per_module'].items():
            if k.count('.') <= args.depth:
                modules[k] = modules.get(k, 0.0) + \
                    v * t['batch_size'] / samples
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return dict(config=str(args.config), overrides=list(args.overrides),
                split=args.split, samples=samples, flops=per_sample,
                params=params, trainable_params=trainable,
                per_module=dict(sorted(modules.items())))


def format_result(result: Dict) -> str:
    from mmfusion.analysis.flops import format_count
    lines = [f'config: {result["config"]} {" ".join(result["overrides"])}'
             .rstrip(),
             f'FLOPs per sample: {format_count(result["flops"], "FLOPs")} '
             f'(forward, mean over {result["samples"]} {result["split"]} '
             'samples)',
             f'parameters: {format_count(result["params"])} '
             f'({format_count(result["trainable_params"])} trainable)']
    if result['per_module']:
        lines.append('per module (FLOPs per sample):')
        width = max(len(k) for k in result['per_module'])
        for name, v in result['per_module'].items():
            share = v / result['flops'] if result['flops'] else 0.0
            lines.append(f'  {name.ljust(width)}  '
                         f'{format_count(v).rjust(9)}  {share:6.1%}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_user_error():
        result = count(args)
    print(format_result(result))
    if args.json_out:
        os.makedirs(osp.dirname(osp.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
