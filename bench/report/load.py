"""The stored runs a report is made from, read once: records, definitions, tidy tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from bench.analysis.intervals import Pool
from bench.analysis.tables import between_pool, tidy_tables
from bench.records import RUN_FILE, TABLE_NAMES, CaseRecord, RunMeta
from bench.scenarios import Scenario
from bench.store import RunStore


@dataclass
class Runs:
    """One or more stored runs, their tables concatenated with a `run_id` column."""

    stores: list[RunStore]
    metas: list[RunMeta]
    records: dict[tuple[str, str], CaseRecord]  # (run_id, case_id) -> case record
    scenarios: dict[str, Scenario]  # as the runs stored them (the first run's, if several)
    rounds: pd.DataFrame
    curves: pd.DataFrame
    summary: pd.DataFrame
    levels: pd.DataFrame  # serving cases' load levels
    # run_id -> the between-process noise of the run's cases, which its intervals include
    pools: dict[str, Pool] = field(default_factory=dict)

    @classmethod
    def load(cls, stores: Sequence[RunStore]) -> Runs:
        metas, records = [], {}
        frames: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLE_NAMES}
        scenarios: dict[str, Scenario] = {}
        pools = {}
        for store in stores:
            meta, cases, defined = store.meta, store.cases(), store.scenarios()
            metas.append(meta)
            pools[store.run_id] = between_pool(cases)
            for name, scenario in defined.items():
                scenarios.setdefault(name, scenario)
            for case in cases:
                records[(store.run_id, case.case.id)] = case
            for name, frame in tidy_tables(cases, meta, defined).items():
                frames[name].append(frame.assign(run_id=store.run_id))
        tables = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
        return cls(list(stores), metas, records, scenarios, **tables, pools=pools)

    @property
    def multiple(self) -> bool:
        return len(self.stores) > 1


def run_time(store: RunStore) -> dt.datetime:
    """When the run started (run.json), else from the run id, else the file's time."""
    started = store.meta.started_at
    if started:
        return dt.datetime.fromisoformat(started)
    try:
        return dt.datetime.strptime(store.run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return dt.datetime.fromtimestamp((store.directory / RUN_FILE).stat().st_mtime)
