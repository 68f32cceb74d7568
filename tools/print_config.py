"""Print the composed config: see ``mmfusion/cli/print_config.py``.

Usage::

    python tools/print_config.py CONFIG [OVERRIDES...] [--no-resolve] [--format yaml|py]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmfusion.cli.print_config import main  # noqa: E402

if __name__ == '__main__':
    main()
