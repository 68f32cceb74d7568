#!/usr/bin/env bash
# The fusion ablation on the shapes classification benchmark, in one
# command: every fusion block and the two unimodal baselines, SEEDS seeds
# each, at the short schedule (configs/schedule/cls_short.yaml), then the
# markdown table (mean ± std over seeds, accuracy per question type,
# parameters, FLOPs per sample, time per iteration).
#
#   bash tools/analysis/run_ablation.sh [EXTRA_OVERRIDES...]
#   SEEDS=0,1,2,3,4 OUT=work_dirs/my_ablation bash tools/analysis/run_ablation.sh
#   SCHEDULE=cls_default bash tools/analysis/run_ablation.sh   # the full schedule
#
# Two sweeps of configs/experiment/cls_shapes_ablation.yaml, merged into one
# table: the blocks that fuse after the image encoder share one image trunk
# (model/image_encoder=small_cnn_deep); FiLM (film, film_objects) and the
# unimodal baselines (FiLM with the text or the image removed) keep the
# shallow stem, since their FiLM blocks are the trunk (the same three
# convs, modulated).
# Jobs run one after another, each in its own process. BLOCKS and
# FILM_OPTIONS (comma lists) choose a subset.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-0,1,2}
OUT=${OUT:-work_dirs/ablation}
SCHEDULE=${SCHEDULE:-cls_short}
BLOCKS=${BLOCKS:-concat,sum,mean,weighted,gated,bilinear,tensor,low_rank,late,cross_attention,cross_attention_objects,co_attention,single_stream}
FILM_OPTIONS=${FILM_OPTIONS:-film,film_objects,image_only,text_only}

"$PYTHON" tools/train.py cls_shapes_ablation -m "model/fusion=$BLOCKS" \
    "randomness.seed=$SEEDS" "schedule=$SCHEDULE" --work-dir "$OUT/blocks" "$@"
"$PYTHON" tools/train.py cls_shapes_ablation -m model/image_encoder=small_cnn \
    "model/fusion=$FILM_OPTIONS" "randomness.seed=$SEEDS" "schedule=$SCHEDULE" \
    --work-dir "$OUT/film" "$@"
"$PYTHON" tools/analysis/ablation_table.py "$OUT/blocks/multirun" \
    "$OUT/film/multirun" --out "$OUT/ablation.md"
