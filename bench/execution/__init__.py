"""Turning a plan into measurements: which cases run (plan), where (runner and its
executors), and how one case runs in a fresh process (worker, suites, measure, threads,
weights), with the machine's limits (peak) and facts (environment) recorded beside.

Nothing here draws or summarises: the runner hands typed records (bench.records) to the
store, and the analysis and views take it from there.
"""
