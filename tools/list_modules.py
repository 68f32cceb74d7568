"""List registered modules: see ``mmfusion/cli/list_modules.py``.

Usage::

    python tools/list_modules.py [--registry model ...] [--all] [--json]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmfusion.cli.list_modules import main  # noqa: E402

if __name__ == '__main__':
    main()
