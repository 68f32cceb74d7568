"""Curves from mmengine's logs: see ``mmfusion/cli/plot_curves.py``.

Usage::

    python tools/analysis/plot_curves.py WORK_DIR... [--keys loss accuracy ...] --out FILE.png
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.cli.plot_curves import main  # noqa: E402

if __name__ == '__main__':
    main()
