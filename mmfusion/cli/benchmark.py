"""``tools/benchmark.py``: mmfusion against a hand-written loop and the
machine, one ``name: value`` line per figure (see ``docs/benchmarks.md``).

Figures (each measured in this one run, so noise largely cancels):

- ``overhead/<task>``: Runner time per iteration / hand-written loop's;
- ``data/wait_fraction/<task>``, ``data/samples_per_s/<task>``,
  ``model/samples_per_s/<task>``;
- ``scaling/...``: time and memory against batch size, image size and text
  length for attention and tensor/bilinear fusion, with fitted exponents;
- ``ddp_scaling``: 2 gloo processes x 1 thread over 1 process x 1 thread,
  with ``ddp/no_comm_scaling`` (the same without a process group: the
  machine's ceiling), each phase's milliseconds and the all-reduce alone;
- ``infer/<task>/bs1``, ``infer/<task>/bs32``: inferencer samples/s;
- ``roof_fraction/<task>``: counted training FLOPs x iterations/s over the
  machine's ``torch.matmul`` FLOP/s.

``--quick`` runs every section on tiny data and sizes (seconds; for the
test suite): its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import time
from typing import Dict, List, Optional, Sequence

import torch

SECTIONS = ('overhead', 'scaling', 'ddp', 'infer', 'roof')
TASKS = ('cls', 'det', 'seg')

#: Generator settings of ``--quick``: a few quads per split (the same
#: ``shapes_generator`` keys serve every task's data).
QUICK_DATA = ['shapes_generator.train_quads=16', 'shapes_generator.val_quads=4',
              'shapes_generator.test_quads=8',
              'shapes_generator.control_quads=4']


#: Square matrix sides the roof is measured at (the best rate is the roof).
ROOF_SIZES = (256, 512, 1024)


#: Other settings of ``--quick``. It shares the machine with the test suite:
#: one thread keeps it from spinning against other processes; no loader
#: workers (they take a second each to stop) and no serialised data lists
#: (mmengine runs a full garbage collection to serialise each one).
QUICK_SETTINGS = ['env_cfg.torch_num_threads=1',
                  'train_dataloader.num_workers=0',
                  'train_dataloader.persistent_workers=false',
                  'train_dataloader.dataset.serialize_data=false']


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark mmfusion against a hand-written PyTorch loop '
        'and the machine; prints one "name: value" line per figure.')
    parser.add_argument('--quick', action='store_true',
                        help='tiny data and sizes, seconds (for tests)')
    parser.add_argument('--json-out', help='also write the figures here')
    parser.add_argument('--sections', nargs='+', choices=SECTIONS,
                        default=list(SECTIONS), help='sections to run')
    parser.add_argument('--tasks', nargs='+', choices=TASKS,
                        default=list(TASKS),
                        help='tasks for overhead, infer and roof')
    parser.add_argument('--data-root',
                        help='where the shapes data lives (default: each '
                        "config's data_root, data/shapes)")
    parser.add_argument('--iters', type=int,
                        help='timed training iterations per loop (default '
                        '100; 3 with --quick)')
    return parser.parse_args(argv)


def machine_info() -> Dict[str, object]:
    """What the figures were measured on."""
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {'cpu': cpu, 'cores': os.cpu_count(),
            'torch': torch.__version__, 'python': platform.python_version(),
            'threads': torch.get_num_threads()}


def task_overrides(task: str, quick: bool,
                   data_root: Optional[str]) -> List[str]:
    out = list(QUICK_DATA) + QUICK_SETTINGS if quick else []
    if data_root:
        out.append(f'data_root={data_root}')
    return out


def run(args: argparse.Namespace, emit=print) -> Dict[str, float]:
    """Run the chosen sections; ``emit`` each ``name: value`` line as soon
    as its section is done. Returns every figure."""
    from mmfusion.benchmark import overhead
    figures: Dict[str, float] = {}
    quick = args.quick
    iters = args.iters or (3 if quick else 100)
    warmup = 2 if quick else 20
    by_task = {t: task_overrides(t, quick, args.data_root) for t in TASKS}

    clock = [time.perf_counter()]

    def publish(new: Dict[str, float]) -> None:
        for name, value in new.items():
            figures[name] = float(value)
            emit(f'{name}: {value:.4g}')
        now = time.perf_counter()
        emit(f'# {len(new)} figures in {now - clock[0]:.1f} s')
        clock[0] = now

    from mmfusion.benchmark.common import task_config
    from mmfusion.benchmark.roofline import matmul_flops_per_s, roof_fraction
    task_threads = task_config('cls', by_task['cls']).env_cfg.get(
        'torch_num_threads') or torch.get_num_threads()

    def machine_peak() -> float:
        # The training threads (the config's env_cfg.torch_num_threads).
        threads = torch.get_num_threads()
        torch.set_num_threads(int(task_threads))
        try:
            # The best over sizes: at one size alone (e.g. a small one) the
            # matmul can be slower than a convolution's larger products,
            # and the "roof" would sit below what a step reaches.
            return max(matmul_flops_per_s(size, repeats=3 if quick else 10)
                       for size in ROOF_SIZES)
        finally:
            torch.set_num_threads(threads)

    # Measured before and after the training figures; the best is the
    # machine's peak (a shared host slows down now and then).
    peaks = [machine_peak()] if 'roof' in args.sections else []
    if 'overhead' in args.sections or 'roof' in args.sections:
        publish(overhead.run_overhead(args.tasks, iters, warmup, by_task,
                                      flops='roof' in args.sections,
                                      rounds=1 if quick else 2))
    if 'roof' in args.sections:
        gc.collect()  # loader workers of the runs above exit first
        peak = max(peaks + [machine_peak()])
        roof = {'machine/matmul_gflops': peak / 1e9}
        for task in args.tasks:
            roof[f'roof_fraction/{task}'] = roof_fraction(
                int(figures[f'flops/{task}/train_step']),
                figures[f'time/{task}/runner_s'], peak)
        publish(roof)
    if 'scaling' in args.sections:
        from mmfusion.benchmark.scaling import run_scaling
        if quick:
            torch.set_num_threads(1)
        publish(run_scaling(quick=quick, data_root=args.data_root))
    if 'ddp' in args.sections:
        from mmfusion.benchmark.ddp import run_ddp_scaling
        publish(run_ddp_scaling(quick=quick, overrides=by_task['cls']))
    if 'infer' in args.sections:
        from mmfusion.benchmark.inference import run_inference
        publish(run_inference(tasks=args.tasks, quick=quick,
                              overrides_by_task=by_task,
                              num_threads=1 if quick else None))
    return figures


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    from mmfusion.utils import register_all_modules
    register_all_modules()
    start = time.perf_counter()
    figures = run(args, emit=lambda line: print(line, flush=True))
    elapsed = time.perf_counter() - start
    print(f'# {len(figures)} figures in {elapsed:.0f} s on '
          f'{machine_info()["cpu"]}', flush=True)
    if args.json_out:
        bad = [k for k, v in figures.items() if not math.isfinite(v)]
        payload = {'figures': figures, 'machine': machine_info(),
                   'quick': args.quick, 'seconds': elapsed,
                   'non_finite': bad}
        with open(args.json_out, 'w') as f:
            json.dump(payload, f, indent=2)
    return figures


if __name__ == '__main__':
    main()
