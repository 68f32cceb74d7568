"""Markdown ablation table from sweep summaries: see
``mmfusion/analysis/ablation.py`` for the options.

    python tools/analysis/ablation_table.py \
        work_dirs/cls_shapes/multirun/summary.json --out ablation.md
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.analysis.ablation import main  # noqa: E402

if __name__ == '__main__':
    main()
