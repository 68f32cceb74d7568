"""Pictures of dataset samples after the pipeline: see
``mmfusion/cli/browse_dataset.py``.

Usage::

    python tools/browse_dataset.py CONFIG [OVERRIDES...] [--split train|val|test] [--out-dir DIR]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmfusion.cli.browse_dataset import main  # noqa: E402

if __name__ == '__main__':
    main()
