"""docs/benchmarks.md shows the hand-written loop that the overhead figures
compare against: the page's code must be the code that runs."""
import inspect
import re
import textwrap
from pathlib import Path

from mmfusion.benchmark.common import train_step_fn
from mmfusion.benchmark.overhead import hand_loop

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'benchmarks.md'


def test_page_shows_the_loop_that_is_measured():
    text = DOC.read_text()
    section = text.split('## The hand-written loop', 1)[1]
    found = re.search(r'```python\n(.*?)```', section, re.S)
    assert found, 'no python block in "The hand-written loop"'
    shown = found.group(1)
    for fn in (train_step_fn, hand_loop):
        source = textwrap.dedent(inspect.getsource(fn))
        assert source in shown, (
            f'docs/benchmarks.md does not show the current {fn.__name__}; '
            'paste its source into the page')


def test_page_names_every_figure_family():
    text = DOC.read_text()
    for name in ('overhead/cls', 'data/wait_fraction/', 'scaling/',
                 'ddp_scaling', 'infer/cls/bs1', 'roof_fraction/'):
        assert name in text, name
