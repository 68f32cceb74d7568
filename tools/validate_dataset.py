"""Check a config's datasets against their format before training: see
``mmfusion/cli/validate_dataset.py``.

Usage::

    python tools/validate_dataset.py CONFIG [OVERRIDES...] [--split train|val|test] [--decode-images]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmfusion.cli.validate_dataset import main  # noqa: E402

if __name__ == '__main__':
    main()
