"""Benchmark mmfusion against a hand-written loop and the machine: see
``mmfusion/cli/benchmark.py`` and ``docs/benchmarks.md``.

Usage::

    python tools/benchmark.py [--quick] [--json-out FILE] [--sections ...]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from mmfusion.cli.benchmark import main  # noqa: E402

if __name__ == '__main__':
    main()
