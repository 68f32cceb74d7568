"""Print the composed config of an experiment, with overrides applied.

::

    python tools/print_config.py cls_shapes
    python tools/print_config.py cls_shapes model/fusion=cross_attention \
        model.fusion.num_layers=1 --no-resolve
    python tools/print_config.py work_dirs/cls_shapes --key model.fusion
    python tools/print_config.py my_experiment.yaml --save composed.yaml

Overrides are checked as in training (a typo fails with the nearest valid
names); nothing is built. ``--format py`` prints the mmengine Config the
Runner receives (tuples where modules want them).
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from .common import exit_on_user_error, split_overrides


def parse_args(argv: Sequence[str]):
    parser = argparse.ArgumentParser(
        description='Print the composed config (experiment + package configs '
        '+ overrides). Every argument with `=` is a Hydra override.',
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('config', help='experiment YAML (any folder), a '
                        'packaged experiment name, or a work dir config.yaml')
    parser.add_argument('--no-resolve', action='store_true',
                        help='keep ${...} interpolations as written')
    parser.add_argument('--format', choices=['yaml', 'py'], default='yaml',
                        help='yaml (default) or the mmengine Config as '
                        'Python')
    parser.add_argument('--key', default=None,
                        help='print only this node (e.g. model.fusion)')
    parser.add_argument('--save', default=None,
                        help='also write the output to this file')
    rest, overrides = split_overrides(argv)
    args = parser.parse_args(rest)
    args.overrides = overrides
    return args


def render(args) -> str:
    from omegaconf import OmegaConf

    from mmfusion.apis.runner_config import compose_and_check
    from mmfusion.config import ConfigKeyError, to_mmengine_config
    cfg, _ = compose_and_check(args.config, args.overrides)
    if args.key and OmegaConf.select(cfg, args.key,
                                     default='__missing__') == '__missing__':
        raise ConfigKeyError(f'the config has no key `{args.key}`; top-level '
                             f'keys: {", ".join(map(str, cfg))}')
    if args.format == 'py':
        from mmengine.config import Config
        node = to_mmengine_config(cfg).to_dict()
        for part in (args.key.split('.') if args.key else ()):
            node = node[int(part)] if isinstance(node, (list, tuple)) \
                else node[part]
        if isinstance(node, dict):
            return Config(node).pretty_text
        return f'{args.key} = {node!r}\n'
    node = OmegaConf.select(cfg, args.key) if args.key else cfg
    if OmegaConf.is_config(node):
        return OmegaConf.to_yaml(node, resolve=not args.no_resolve)
    return f'{args.key}: {node}\n'


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_user_error():
        text = render(args)
    print(text, end='' if text.endswith('\n') else '\n')
    if args.save:
        with open(args.save, 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
