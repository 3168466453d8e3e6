"""pytest-benchmark suites the worker drives, one per kind of model.

The worker runs `pytest` in-process on one of these files with a `CaseContext` plugin that
provides the `case` fixture. Each suite times rounds with `benchmark.pedantic` (a fresh
model per round from `setup`, warm-up rounds excluded) and stores every round's metrics in
`benchmark.extra_info`, so the raw pytest-benchmark JSON carries everything.
"""
