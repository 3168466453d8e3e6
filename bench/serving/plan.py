"""The cases of a serving scenario: every clusterer on the harness's grpcio server, and every
Rust server (`servers.RUST_SERVERS`), each with the reason it cannot run here, if any."""

from __future__ import annotations

from collections.abc import Sequence

from bench import outcomes
from bench.plugins import Registry, missing_requirements, requirements_reason
from bench.records import Case, DatasetResolution
from bench.scenarios import Scenario
from bench.serving import protocol, servers
from bench.serving.placement import server_threads


def names() -> list[str]:
    """Implementation names that only serving cases have (the Rust servers)."""
    return list(servers.RUST_SERVERS)


def serving_cases(
    registry: Registry,
    scenario: Scenario,
    *,
    implementations: Sequence[str],
    profile: str,
    thread_counts: Sequence[int],
    devices: Sequence[str],
    timeout_s: float | None,
    seed: int,
    dataset: DatasetResolution | None,
) -> list[Case]:
    """One case per server x thread count x device. A case's threads are the cores its
    server gets (the load generator has its own: `placement`)."""
    budget = scenario.budget(profile)
    hosted = [
        (p.name, f"{p.framework} on grpcio", p.source, _python_reason(p.unavailable_reason))
        for p in registry.for_model(scenario.model)
    ]
    rust = [
        (s.name, s.framework, f"program:{s.program}", servers.missing_program(s.program))
        for s in servers.RUST_SERVERS.values()
    ]
    cases = []
    for name, framework, source, missing in [*hosted, *rust]:
        if implementations and name not in implementations:
            continue
        missing = missing or servers.missing_program(servers.LOAD_GENERATOR)
        for count in sorted({server_threads(n) for n in thread_counts}):
            for device in devices:
                status, reason = (outcomes.SKIPPED, missing) if missing else (None, None)
                if device != "cpu":
                    status, reason = outcomes.UNSUPPORTED, f"servers run on cpu, not {device}"
                cases.append(
                    Case(
                        scenario=scenario.name,
                        implementation=name,
                        model=scenario.model,
                        framework=framework,
                        source=source,
                        threads=count,
                        device=device,
                        profile=profile,
                        rounds=1,
                        warmup_rounds=0,
                        timeout_s=budget.timeout_s if timeout_s is None else timeout_s,
                        seed=seed,
                        dataset=dataset,
                        status=status,
                        reason=reason,
                    )
                )
    return cases


def _python_reason(plugin_reason: str | None) -> str | None:
    """Why a clusterer cannot be served by the grpcio server here, or None."""
    if plugin_reason:
        return plugin_reason
    if missing := missing_requirements(protocol.REQUIREMENTS):
        return requirements_reason(missing, protocol.INSTALL_HINT)
    return None
