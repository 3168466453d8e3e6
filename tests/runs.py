"""Stored runs built by hand from typed records, for the tests of the views."""

from __future__ import annotations

from pathlib import Path

from bench.records import Case, CaseRecord, CurvePoint, DatasetResolution, RoundRecord, RunMeta
from bench.scenarios import SCENARIOS, scenario_to_json
from bench.store import RunStore

MNIST = DatasetResolution("mnist", "mnist", "/data/mnist")


def training_round(index: int, wall: float, *, warmup=False, **changes) -> RoundRecord:
    values = dict(
        round=index,
        warmup=warmup,
        wall_seconds=wall,
        cpu_seconds=wall * 1.5,
        effective_cores=1.5,
        utilisation=0.75,
        peak_rss_bytes=2**20,
        samples=1000,
        samples_per_second=1000 / wall,
        flops=1e9 * wall,
        steps=10,
        planned_steps=10,
        capped=False,
        loss=0.3,
        train_accuracy=0.92,
        test_accuracy=0.9,
        test_examples=10_000,
        curve=(CurvePoint(train_seconds=wall, steps=10, loss=0.3, test_accuracy=0.9),),
    )
    return RoundRecord(**{**values, **changes})


def case(scenario: str, implementation: str, **changes) -> Case:
    values = dict(
        scenario=scenario,
        implementation=implementation,
        model=SCENARIOS[scenario].model if scenario in SCENARIOS else "mlp",
        framework="numpy",
        source="path:test",
        threads=2,
        device="cpu",
        profile="quick",
        rounds=3,
        warmup_rounds=1,
        timeout_s=60,
        seed=0,
        dataset=MNIST,
    )
    return Case(**{**values, **changes})


def store_run(root: Path, records: list[CaseRecord], run_id="20260101-000000-quick", **meta):
    """A run stored as `bench run` stores it: its plan, definitions and case records."""
    plan = tuple(r.case for r in records)
    names = {c.scenario for c in plan}
    defaults = dict(
        profile="quick",
        command="bench run",
        datasets={name: MNIST for name in names},
        environment={"cpu_model": "Test CPU", "cores_allowed": 2, "python_version": "3.x"},
        plan=plan,
        scenarios={n: scenario_to_json(SCENARIOS[n]) for n in names if n in SCENARIOS},
    )
    store = RunStore.create(root, RunMeta(run_id, **{**defaults, **meta}))
    for record in records:
        store.save_case(record)
    return store
