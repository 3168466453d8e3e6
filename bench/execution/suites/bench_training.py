"""Timed training rounds for `mlp` and `cnn` scenarios.

One round: fresh trainer from the round's initial parameters, `load` (untimed), then the
budget's steps in chunks; after each chunk the clock pauses while test accuracy is measured,
which gives the accuracy-vs-time curve without charging evaluation to training. A short
warm-up (of a case's later processes) trains the first chunk only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from bench.execution import devices
from bench.execution.measure import CLOCK, PEAK_MEMORY
from bench.execution.suites.context import CaseContext, StepCost, run_rounds
from bench.execution.weights import initial_parameters
from bench.outcomes import Diverged
from bench.records import CurvePoint


def accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    labels = np.asarray(labels)
    if labels.shape != truth.shape:
        raise ValueError(f"predict returned shape {labels.shape}, expected {truth.shape}")
    return float(np.mean(labels == truth))


# Train accuracy is measured on the first training examples only (and no more than the
# profile's test examples): on all 60 000, a per-example implementation would spend longer
# evaluating than training.
TRAIN_ACCURACY_EXAMPLES = 10_000
# A round stopped by the time cap is too short for its accuracy to mean much (it is flagged
# as capped), and the implementations that hit the cap are the slow ones: numpy-pure's CNN
# needs minutes for 10 000 test images. Such a round is evaluated on the first few only.
CAPPED_EVALUATION_EXAMPLES = 100


def too_slow_for_cap(cap: float, cpu_seconds: float, threads: int, done: int, steps: int) -> bool:
    """Whether a round that has used `cpu_seconds` of CPU for `done` of its `steps` steps
    could not finish within `cap` seconds even with all its `threads` busy all the time.
    Decided from CPU time, which a busy machine hardly changes: a fast implementation slowed
    down by its neighbours is not capped, one too slow for the budget is."""
    return done > 0 and cpu_seconds / max(threads, 1) * steps / done > cap


class TrainingRound:
    def __init__(self, context: CaseContext, index: int) -> None:
        self.context, self.index = context, index
        case, scenario, data = context.case, context.scenario, context.data
        self.steps = scenario.steps_for(case.profile, len(data.x_train))
        chunks = max(1, context.budget.eval_points)
        if context.short_round(index):
            self.steps, chunks = max(1, math.ceil(self.steps / chunks)), 1
        edges = np.linspace(0, self.steps, chunks + 1).round()
        self.chunks = [int(n) for n in np.diff(edges) if n > 0]
        seed = case.seed + index
        self.trainer = context.implementation(
            scenario, initial_parameters(scenario, seed), seed, case.device
        )
        self.trainer.load(data.x_train, data.y_train)
        self.curve: list[CurvePoint] = []
        self.loss = math.nan
        PEAK_MEMORY.reset()
        self.gpu = devices.RoundWatch(case.device, devices.nvml(case.device)).start()

    def run(self) -> None:
        """The timed target: everything outside `CLOCK.paused()` counts as training."""
        data, case = self.context.data, self.context.case
        calls, checking = self._train_calls()
        start = self.start = CLOCK.start()
        start_wall, start_cpu = start
        self.done, self.capped, self.test_examples = 0, False, 0
        first_call = None  # (wall, cpu, steps) when the round's first call returned
        for chunk in self.chunks:
            for steps in calls(chunk):
                self.loss = float(self.trainer.train(steps))
                # On a GPU, wait for the queued work before any clock is read.
                devices.synchronize(self.context.case.device)
                self.done += steps
                first_call = first_call or (CLOCK() - start_wall, CLOCK.cpu() - start_cpu, steps)
                if checking and CLOCK() - start_wall >= case.round_cap_s and self._too_slow():
                    self.capped = self.done < self.steps
                    break
            if self.done >= self.allowed:
                self.capped = self.done < self.steps
            with CLOCK.paused():
                if not math.isfinite(self.loss):
                    raise Diverged(f"loss is {self.loss} after {self.done} steps")
                self.test_examples = self._evaluated(len(data.x_test))
                x_test, y_test = (
                    data.x_test[: self.test_examples],
                    data.y_test[: self.test_examples],
                )
                self.curve.append(
                    CurvePoint(
                        train_seconds=CLOCK() - start_wall,
                        steps=self.done,
                        loss=self.loss,
                        test_accuracy=accuracy(self.trainer.predict(x_test), y_test),
                    )
                )
            if self.capped:
                break
        self.wall, self.cpu = CLOCK.since(start)
        if checking:
            self.context.step_cost = self._step_cost(*first_call)

    def _evaluated(self, available: int) -> int:
        """How many of `available` examples an accuracy is measured on."""
        return min(available, CAPPED_EVALUATION_EXAMPLES) if self.capped else available

    def _train_calls(self) -> tuple[Callable[[int], Iterable[int]], bool]:
        """How each evaluation chunk is cut into `train` calls, and whether the cap is checked
        after each call. A call can cost far more than a step (a Keras `fit` costs about
        30 ms), so a round cut into many calls would time the calls, not the training.
        Without a time cap, a chunk is one call. With one, a process's first round is cut
        into calls that double in size from a hundredth of the round, so that the cap is
        noticed soon after it passes, in a few calls. What its steps cost (`StepCost`) then
        decides the process's other rounds up front: a chunk is one call, and a round that
        would be too slow for the cap (by the same rule) trains the steps that fit in the
        cap's seconds (`allowed`), the same number in each of them."""
        case, cost = self.context.case, self.context.step_cost
        cap, self.allowed = case.round_cap_s, self.steps
        if cap is not None and cost is None:
            size = max(1, math.ceil(self.steps / 100))

            def doubling(chunk: int) -> Iterator[int]:
                nonlocal size
                while chunk > 0:
                    call = min(size, chunk)
                    if self.done:  # no call planned past the cap, at the pace so far
                        elapsed = CLOCK() - self.start[0]
                        fits = math.floor((cap - elapsed) * self.done / elapsed)
                        if fits >= 1:
                            call = min(call, fits)
                        elif self._too_slow():  # not one more step fits, and it is too slow
                            self.capped = self.done < self.steps
                            return
                        # else past the cap, but slowed down by others: it runs to its end
                    yield call
                    chunk, size = chunk - call, size * 2

            return doubling, True
        if cap is not None and cost.judged_round(self.steps) > cap:
            self.allowed = min(self.steps, cost.steps_within(cap))

        def whole(chunk: int) -> list[int]:
            return [min(chunk, self.allowed - self.done)] if self.done < self.allowed else []

        return whole, False

    def _too_slow(self) -> bool:
        """Whether the round so far says it could not finish within the cap (on a GPU, where
        the CPU mostly waits and its time says nothing of the work, it could not by now)."""
        case = self.context.case
        if case.device != "cpu":
            return True
        cpu = CLOCK.cpu() - self.start[1]
        return too_slow_for_cap(case.round_cap_s, cpu, case.threads, self.done, self.steps)

    def _step_cost(self, first_wall: float, first_cpu: float, first_steps: int) -> StepCost:
        """What this round's steps cost, as the cap judges them (CPU time over the threads;
        on a GPU, where the CPU mostly waits, wall time) and in wall time."""
        threads = self.context.case.threads
        on_cpu = self.context.case.device == "cpu"
        if self.done > first_steps:
            wall, cpu, steps = self.wall - first_wall, self.cpu - first_cpu, self.done - first_steps
        else:  # one call: no steps after it to tell apart, so its own pace
            wall, cpu, steps = first_wall, first_cpu, first_steps
        later_wall, later_cpu = wall / steps, cpu / steps
        return StepCost(
            first_steps=first_steps,
            first_judged=first_cpu / threads if on_cpu else first_wall,
            first_wall=first_wall,
            judged=later_cpu / threads if on_cpu else later_wall,
            wall=later_wall,
        )

    def finish(self) -> None:
        context, scenario, data = self.context, self.context.scenario, self.context.data
        peak = PEAK_MEMORY.peak_bytes()
        gpu = self.gpu.stop()
        # A short last batch of an epoch is counted as full: off by < 1 batch per epoch.
        samples = self.done * min(scenario.batch_size, len(data.x_train))
        most = min(TRAIN_ACCURACY_EXAMPLES, context.budget.test_samples or TRAIN_ACCURACY_EXAMPLES)
        train_examples = self._evaluated(min(len(data.x_train), most))
        target = next(
            (p.train_seconds for p in self.curve if p.test_accuracy >= scenario.target), None
        )
        context.record_round(
            self.index,
            wall=self.wall,
            cpu=self.cpu,
            samples=samples,
            peak_rss=peak,
            flops=scenario.training_flops(samples),
            steps=self.done,
            planned_steps=self.steps,
            capped=self.capped,
            loss=self.loss,
            train_accuracy=accuracy(
                self.trainer.predict(data.x_train[:train_examples]),
                data.y_train[:train_examples],
            ),
            test_accuracy=self.curve[-1].test_accuracy if self.curve else math.nan,
            test_examples=self.test_examples,
            time_to_target_seconds=target,
            curve=tuple(self.curve),
            **gpu.as_metrics(),
        )


def test_training(benchmark, case: CaseContext) -> None:
    run_rounds(benchmark, case, TrainingRound)
