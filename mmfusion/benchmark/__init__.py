"""The sections of ``tools/benchmark.py`` (see ``docs/benchmarks.md``):
``overhead`` (Runner vs a hand-written loop, data wait and rates),
``scaling``, ``ddp``, ``inference`` and ``roofline``; ``common`` holds what
they share."""
