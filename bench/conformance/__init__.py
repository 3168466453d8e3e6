"""The conformance suite behind `bench check IMPL`: the plugin contract, executable.

`run_checks(plugin_class)` exercises one implementation on tiny data for every scenario of its
model that it supports, and returns one `CheckResult` per check. Trainers (mlp, cnn):

  matches-reference  after 3 full-batch steps on 64 MNIST digits from the initial
                     parameters: the same loss and parameters as `bench.reference`
  deterministic      two fresh instances with one seed give identical results; another
                     seed gives another data order
  exact-steps        train(6) equals 6 x train(1) (data order kept between calls) and
                     differs from train(7)
  inputs-unmodified  the training data, the initial parameters and predict's input
  predict-labels     integer labels of shape (n,), the argmax of the plugin's own network
  parameter-layout   canonical names, shapes and dtype; equal to the initial parameters
                     before training
  thread-limit       in a worker-like process limited to 1 thread, every pool has 1 thread

Clusterers (kmeans): matches-reference (centroids, labels, n_iter, inertia from the same
initial centroids, for three max_iter/tol settings), deterministic, inputs-unmodified,
predict-labels, thread-limit. A scenario the plugin declares unsupported is reported as
"not supported: <reason>", which is not a failure.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from bench import plugins, reference
from bench.api import Implementation, Trainer
from bench.conformance.clusterers import CLUSTERER_CHECKS
from bench.conformance.common import CHECKS, CheckFailed, CheckResult, on_device
from bench.conformance.thread_limit import check_thread_limit, check_thread_limit_here
from bench.conformance.trainers import TRAINER_CHECKS
from bench.execution.devices import declared
from bench.scenarios import Scenario
from bench.scenarios import known as scenarios_known

__all__ = [
    "CHECKS",
    "CLUSTERER_CHECKS",
    "TRAINER_CHECKS",
    "CheckFailed",
    "CheckResult",
    "run_checks",
]


def run_checks(
    plugin_class: type[Implementation],
    scenarios: Iterable[Scenario | str] | None = None,
    *,
    only: Sequence[str] | None = None,
    limited_here: bool = False,
    device: str | None = None,
) -> list[CheckResult]:
    """Every check (or those named in `only`) for every scenario of the plugin's model. With
    `limited_here`, this process was started limited to 1 thread, and the thread-limit check
    looks at it instead of starting another. With `device` (`cuda`, `cuda:1`), the
    implementation runs there and is held to the same float64 reference; the thread-limit
    check, about CPU thread pools, still runs on the CPU."""
    if device is not None and not declared(device, plugin_class.devices):
        accepted = ", ".join(plugin_class.devices)
        return [
            CheckResult(
                "device",
                False,
                f"{plugin_class.name} declares devices = ({accepted}), not {device}: add it to "
                "`devices` if the implementation can run there",
            )
        ]
    with on_device(device):
        return _checks(plugin_class, scenarios, only, limited_here)


def _checks(
    plugin_class: type[Implementation],
    scenarios: Iterable[Scenario | str] | None,
    only: Sequence[str] | None,
    limited_here: bool,
) -> list[CheckResult]:
    missing = plugins.missing_requirements(plugin_class.requires)
    if missing:
        reason = plugins.requirements_reason(missing, plugin_class.install_hint)
        return [CheckResult("requirements", False, reason or "")]
    known = scenarios_known()
    chosen = [known[s] if isinstance(s, str) else s for s in scenarios or known.values()]
    checks = TRAINER_CHECKS if issubclass(plugin_class, Trainer) else CLUSTERER_CHECKS
    results, supported = [], []
    # A serving scenario serves a model the harness fitted: nothing of it to check here.
    fitted = (s for s in chosen if s.model == plugin_class.model and s.serving is None)
    for scenario in fitted:
        why = plugin_class.why_unsupported(scenario)
        if why:
            results.append(
                CheckResult(f"{scenario.name}/supported", True, f"not supported: {why}", True)
            )
            continue
        supported.append(scenario)
        for slug, check in checks.items():
            if only is None or slug in only:
                results.append(_run(f"{scenario.name}/{slug}", check, plugin_class, scenario))
    if supported and (only is None or "thread-limit" in only):
        scenario = supported[0]
        check = check_thread_limit_here if limited_here else check_thread_limit
        results.append(_run(f"{scenario.name}/thread-limit", check, plugin_class, scenario))
    return results


def _run(name: str, check: Callable, cls: type[Implementation], scenario: Scenario):
    try:
        return CheckResult(name, True, check(cls, scenario))
    except reference.NoReference as why:
        return CheckResult(name, True, str(why), skipped=True)
    except CheckFailed as failure:
        return CheckResult(name, False, str(failure))
    except Exception as error:
        return CheckResult(name, False, f"raised {_describe_error(error, cls)}")


def _describe_error(error: BaseException, cls: type) -> str:
    """`Type: message (file:line)`, pointing into the plugin's own code where possible."""
    frames = traceback.extract_tb(error.__traceback__)
    try:
        folder = str(Path(inspect.getfile(cls)).parent)
    except TypeError:  # defined interactively
        folder = "<none>"
    ours = [f for f in frames if f.filename.startswith(folder)] or frames
    where = f" ({ours[-1].filename}:{ours[-1].lineno})" if ours else ""
    return f"{type(error).__name__}: {error}{where}"
