"""What is decided before a case runs: its dataset, the conformance gate's verdict, the case."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from bench import outcomes
from bench.records.common import _Flat, _known
from bench.records.names import case_id_problem


@dataclass(frozen=True)
class DatasetResolution(_Flat):
    """What a run asked for and what it loads: the same for every case of a scenario."""

    requested: str
    used: str
    location: str = ""  # the folder or file holding the verified files, or a description
    fallback_reason: str | None = None
    downloaded: bool = False
    # "built-in" (a catalogue dataset) or "file" (the user's folder of IDX files or .npz)
    kind: str = "built-in"
    # A file dataset: each file's SHA-256 by its name relative to `location`, every array's
    # {"shape", "dtype"} (x_train, y_train, x_test, y_test), and how many classes it has.
    files: dict[str, str] | None = None
    arrays: dict[str, dict] | None = None
    classes: int | None = None

    @property
    def from_file(self) -> bool:
        return self.kind == "file"


@dataclass(frozen=True)
class Conformance(_Flat):
    """The conformance gate's verdict on a case's implementation and scenario, decided before
    the case is timed: `outcomes.CONFORMING`, `NON_CONFORMING` or `UNVERIFIED` (not checked).
    `failed` lists each failed check as {"check", "detail"}."""

    verdict: str
    failed: tuple[dict, ...] = ()
    checks: int = 0  # how many checks ran (or were read from the cache)
    cached: bool = False
    seconds: float | None = None  # what checking cost this time (0 when read from the cache)

    @property
    def failed_checks(self) -> str:
        """The failed checks' names: "matches-reference, exact-steps"."""
        return ", ".join(item["check"].split("/")[-1] for item in self.failed)

    @property
    def reason(self) -> str:
        """Why a case is non-conforming, check by check."""
        details = "; ".join(f"{item['check']}: {item['detail']}" for item in self.failed)
        return f"failed the conformance check(s) {self.failed_checks} before timing: {details}"

    @classmethod
    def from_json(cls, data: dict) -> Conformance:
        known, _ = _known(cls, data)
        return cls(**{**known, "failed": tuple(known.get("failed") or ())})


@dataclass(frozen=True)
class Case:
    """One scenario x implementation x threads x device; runs in one fresh process."""

    scenario: str
    implementation: str
    model: str
    framework: str
    source: str
    threads: int
    device: str
    profile: str
    rounds: int  # measured rounds in all the case's processes, at least
    warmup_rounds: int  # in each process
    timeout_s: float
    seed: int
    round_cap_s: float | None = None
    # How many disturbed rounds may be re-run (`--retry-disturbed`), in all, for this case.
    retry_disturbed: int = 0
    processes: int = 1  # worker processes, at least
    max_rounds: int | None = None  # None: exactly `rounds`
    interval_target: float | None = None  # relative half-width of the median's interval
    budget_s: float | None = None  # no further process starts that would end after this
    dataset: DatasetResolution | None = None
    deviations: tuple[str, ...] = ()
    overrides: dict = field(default_factory=dict)  # sweep sizes, e.g. {"n_samples": 10_000}
    status: str | None = None  # set in advance for cases that will not run
    reason: str | None = None
    # The conformance gate's verdict, set before the case runs (None: not gated yet)
    conformance: Conformance | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            parts = [self.scenario, self.implementation, f"t{self.threads}", self.device]
            parts += [f"{k}={v}" for k, v in sorted(self.overrides.items())]
            for part in parts:
                if problem := case_id_problem(str(part)):
                    raise ValueError(f"a case id cannot be made of {part!r}: it {problem}")
            object.__setattr__(self, "id", "--".join(map(str, parts)))
        # Also an id read back from a stored plan: it becomes a file name when written.
        if problem := case_id_problem(self.id):
            raise ValueError(f"case id {self.id!r} {problem}")

    @property
    def will_run(self) -> bool:
        return self.status not in outcomes.NOT_RUN

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["deviations"] = list(self.deviations)
        data["dataset"] = self.dataset.to_json() if self.dataset else None
        data["conformance"] = self.conformance.to_json() if self.conformance else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> Case:
        known, _ = _known(cls, data)
        dataset, conformance = known.get("dataset"), known.get("conformance")
        return cls(
            **{
                **known,
                "deviations": tuple(known.get("deviations") or ()),
                "overrides": dict(known.get("overrides") or {}),
                "dataset": DatasetResolution.from_json(dataset) if dataset else None,
                "conformance": Conformance.from_json(conformance) if conformance else None,
            }
        )
