"""Train an mmfusion model: see ``mmfusion/cli/train.py`` for the options.

Launch commands::

    python tools/train.py configs/experiment/cls_shapes.yaml [OVERRIDES]
    bash tools/dist_train.sh configs/experiment/cls_shapes.yaml 8
    NNODES=2 NODE_RANK=0 MASTER_ADDR=HOST bash tools/dist_train.sh CONFIG 8
    GPUS=16 bash tools/slurm_train.sh PARTITION JOB CONFIG
    python tools/train.py cls_shapes -m model/fusion=concat,film,cross_attention
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmfusion.cli.train import main  # noqa: E402

if __name__ == '__main__':
    main()
