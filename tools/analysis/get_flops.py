"""FLOPs and parameters from a config: see ``mmfusion/cli/get_flops.py``.

Usage::

    python tools/analysis/get_flops.py CONFIG [OVERRIDES...] [--checkpoint CKPT] [--json-out FILE]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.cli.get_flops import main  # noqa: E402

if __name__ == '__main__':
    main()
