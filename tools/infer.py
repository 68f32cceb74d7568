"""Predict with a trained model: see ``mmfusion/cli/infer.py`` for the options.

Usage::

    python tools/infer.py CONFIG CHECKPOINT --image IMG --text "..." [--out-dir DIR]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmfusion.cli.infer import main  # noqa: E402

if __name__ == '__main__':
    main()
