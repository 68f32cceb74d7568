"""tools/benchmark.py --quick runs and prints every figure the issue names.

Speed goals are not asserted here (they live in docs/benchmarks.md): this
only checks that the benchmark runs end to end and that each figure is a
finite, sensible number.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Exact names, and patterns for the families of names.
REQUIRED = [
    'ddp_scaling',
    *[f'{family}/{task}' for task in ('cls', 'det', 'seg')
      for family in ('overhead', 'data/wait_fraction', 'data/samples_per_s',
                     'model/samples_per_s', 'roof_fraction')],
    *[f'infer/{task}/{bs}' for task in ('cls', 'det', 'seg')
      for bs in ('bs1', 'bs32')],
]
PATTERNS = [
    r'scaling/[a-z_]+/batch=\d+/ms_per_sample',
    r'scaling/[a-z_]+/image=\d+/ms_per_iter',
    r'scaling/[a-z_]+/tokens=\d+/peak_mem_mb',
    r'scaling/[a-z_]+/tokens/mem_exponent',
    r'scaling/[a-z_]+/batch/time_per_sample_exponent',
]


def test_quick_benchmark_prints_every_figure(tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'benchmark.py'), '--quick',
         '--data-root', str(tmp_path / 'data'), '--json-out', str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    printed = {}
    for line in proc.stdout.splitlines():
        m = re.fullmatch(r'([\w/=.@-]+): (\S+)', line.strip())
        if m:
            printed[m.group(1)] = float(m.group(2))
    missing = [name for name in REQUIRED if name not in printed]
    assert not missing, f'not printed: {missing}\n{proc.stdout[-3000:]}'
    for pattern in PATTERNS:
        assert any(re.fullmatch(pattern, name) for name in printed), \
            f'no figure matches {pattern}'
    for name in REQUIRED:
        value = printed[name]
        assert math.isfinite(value) and value > 0, (name, value)
    for task in ('cls', 'det', 'seg'):
        assert 0 <= printed[f'data/wait_fraction/{task}'] < 1
        # Not a hardware bound (docs/benchmarks.md: Winograd convolutions
        # can beat matmul), and the suite shares the cores with the
        # timing, so a little above 1 is allowed; the FLOP counts
        # themselves are checked exactly in tests/test_analysis.
        assert 0 < printed[f'roof_fraction/{task}'] < 1.5
    assert 0 < printed['ddp_scaling'] < 2.5
    saved = json.loads(out.read_text())
    assert saved['quick'] is True
    # Printed with 4 significant digits; the JSON keeps full precision.
    assert set(saved['figures']) == set(printed)
    for name, value in printed.items():
        assert math.isclose(saved['figures'][name], value, rel_tol=1e-3,
                            abs_tol=1e-12), name
    assert saved['non_finite'] == []
