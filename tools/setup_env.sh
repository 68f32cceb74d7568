#!/usr/bin/env bash
# Create or update the environment in .venv/ at the repo root.
# Idempotent: seconds when nothing changed (a stamp holds the hash of the
# requirements and packaging files); reinstalls what changed otherwise.
# mmcv 2.1.0 is built from source with its compiled ops (about 15 minutes on
# 2 cores the first time on a machine; pip's wheel cache makes it seconds
# afterwards). GPU users: see README "Installing on a GPU machine".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.mmfusion-setup-stamp
HASH=$(cat requirements.txt setup.py pyproject.toml tools/setup_env.sh | sha256sum | cut -d' ' -f1)

if [[ -f $STAMP && "$(cat "$STAMP")" == "$HASH" ]] && \
   $VENV/bin/python -c "import mmfusion, mmcv.ops, mmdet, mmseg, hydra" 2>/dev/null; then
  echo "[setup] .venv is up to date"
  exit 0
fi

echo "[setup] creating/updating $VENV (requirements changed or first run)"
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
pin() { grep -E "^$1([=<>]|$)" requirements.txt; }
# 1. build tools and torch (a setuptools that still ships pkg_resources)
$PIP install -q $(pin setuptools) $(pin wheel) $(pin numpy) $(pin torch)
# 2. mmcv with compiled ops, built against the torch just installed
if ! $VENV/bin/python -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  echo "[setup] building mmcv with ops (about 15 minutes on 2 cores, once)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} $PIP install -q --no-build-isolation $(pin mmcv)
fi
# 3. everything else, then mmfusion itself (editable)
$PIP install -q -r requirements.txt
$PIP install -q --no-build-isolation --no-deps -e .
$VENV/bin/python -c "import mmfusion, mmcv.ops, mmdet, mmseg, hydra"
echo "$HASH" > "$STAMP"
echo "[setup] done"
