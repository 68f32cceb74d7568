"""Test a checkpoint: see ``mmfusion/cli/test.py`` for the options.

Usage::

    python tools/test.py CONFIG CHECKPOINT [OVERRIDES] [--json-out FILE]
    bash tools/dist_test.sh CONFIG CHECKPOINT 8 --json-out FILE
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmfusion.cli.test import main  # noqa: E402

if __name__ == '__main__':
    main()
