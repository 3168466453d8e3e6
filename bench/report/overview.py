"""The parts of the report around the scenario sections: the header with each run and its
outcomes, the banners, "at a glance", the cases that did not finish cleanly, the comparison
with a baseline run, and the environment of each run."""

from __future__ import annotations

import math

from bench import outcomes
from bench.analysis import compare
from bench.analysis.intervals import COVERAGE_LABEL
from bench.analysis.noise import RunNoise, run_noise
from bench.records import RunMeta
from bench.report.format import (
    MISSING,
    finite,
    fmt_bytes,
    fmt_change,
    fmt_cores,
    fmt_num,
    fmt_pct,
    fmt_seconds,
    fmt_time,
)
from bench.report.load import Runs, run_time
from bench.report.rows import (
    CaseRow,
    fastest_cases,
    headline,
    quality_column,
    quality_text,
    speed_words,
)
from bench.scenarios import Scenario
from bench.store import RunStore


def runs_header(runs: Runs) -> list[dict]:
    return [
        {
            "run_id": store.run_id,
            "started": run_time(store).strftime("%Y-%m-%d %H:%M"),
            "profile": meta.profile,
            "machine": machine_line(meta.environment),
            "cluster": cluster_line(meta.cluster),
            "cases": len(meta.plan),
            "datasets": sorted({d.used for d in meta.datasets.values()}),
        }
        for store, meta in zip(runs.stores, runs.metas, strict=True)
    ]


def statuses(runs: Runs) -> dict[str, int]:
    """How many cases ended in each status, in the order of `outcomes.STATUSES`; "capped"
    follows "ok": the ok cases whose rounds hit the time cap."""
    summary = runs.summary
    counts = summary["status"].value_counts().to_dict() if len(summary) else {}
    order = [*outcomes.STATUSES, *sorted(set(counts) - set(outcomes.STATUSES))]
    if len(summary) and "capped_rounds" in summary:
        counts["capped"] = int((summary["capped_rounds"].fillna(0) > 0).sum())
        order.insert(order.index(outcomes.OK) + 1, "capped")
    return {status: counts[status] for status in order if counts.get(status)}


def noise(runs: Runs) -> list[dict]:
    """Each run's noise summary (one line) and, when it ran on a busy machine, its banner."""
    found = []
    for store in runs.stores:
        cases = [r for (run_id, _), r in runs.records.items() if run_id == store.run_id]
        summary = run_noise(cases)
        found.append(
            {
                "run_id": store.run_id,
                "line": noise_line(summary),
                "banner": noise_banner(summary) if summary.busy else "",
            }
        )
    return found


def noise_line(noise: RunNoise) -> str:
    """A run's noise in one sentence: how many rounds were disturbed, and what else ran."""
    if not noise.rounds:
        return "Noise: no measured round."
    if not noise.observed:
        return "Noise: not recorded (the run was stored before bench measured contention)."
    parts = [
        f"threads waiting {fmt_pct(noise.wait_share_median)} of the time they wanted a CPU "
        f"(median), {fmt_pct(noise.wait_share_max)} at worst",
        f"other processes {fmt_cores(noise.other_cpu_cores_median)} cores (median)",
        f"load average up to {fmt_num(noise.load_average_max, 2)}",
    ]
    if finite(noise.steal_seconds) and noise.steal_seconds > 0:
        parts.append(f"steal {fmt_seconds(noise.steal_seconds)}")
    line = (
        f"Noise: {noise.disturbed} of {noise.rounds} measured rounds disturbed "
        f"(threshold: waiting {fmt_pct(noise.threshold, 0)} of the time they wanted a CPU); "
        + "; ".join(parts)
        + "."
    )
    if noise.replaced:
        line += (
            f" {noise.replaced} disturbed round(s) were re-run and kept out of the statistics "
            "(rounds.csv: counted = False)."
        )
    return line


def noise_banner(noise: RunNoise) -> str:
    """What a run on a busy machine says first, wherever it is shown."""
    return (
        f"Busy machine: {noise.disturbed} of {noise.rounds} measured rounds, in "
        f"{noise.disturbed_cases} of {noise.cases} cases, were disturbed (their threads waited "
        f"more than {fmt_pct(noise.threshold, 0)} of the time they wanted a CPU), so their "
        'times are slower than this machine can do and are flagged "disturbed". Other '
        "processes used "
        f"{fmt_cores(noise.other_cpu_cores_median)} cores (median over rounds)."
        + _own_threads(noise)
        + " Run bench doctor to see what was running and what to change, or re-run disturbed "
        "rounds with bench run --retry-disturbed N."
    )


# Below this many cores used by other processes during the disturbed rounds, the machine was
# quiet for them (the harness's own bookkeeping and the kernel's threads use a few hundredths).
QUIET_OTHER_CORES = 0.1


def _own_threads(noise: RunNoise) -> str:
    """Where nothing else ran during the disturbed rounds, their threads waited for each
    other: the reader should look at the implementation's thread pools, not the machine."""
    if not noise.other_cpu_cores_disturbed_median < QUIET_OTHER_CORES:  # NaN: not known
        return ""
    return (
        f" During the disturbed rounds other processes used "
        f"{fmt_cores(noise.other_cpu_cores_disturbed_median)} cores: those cases' own threads "
        "waited for each other (more of them busy than there are cores, e.g. TensorFlow's "
        "inter-op pool beside its intra-op pool)."
    )


def fallbacks(runs: Runs) -> list[dict]:
    found: dict[tuple, list[str]] = {}
    for meta in runs.metas:
        for scenario, dataset in meta.datasets.items():
            if dataset.fallback_reason:
                key = (dataset.requested, dataset.used, dataset.fallback_reason)
                found.setdefault(key, []).append(scenario)
    return [
        {"requested": k[0], "used": k[1], "scenarios": sorted(set(v)), **_what_and_fix(k[2])}
        for k, v in found.items()
    ]


# Where a fallback reason stops saying what happened and starts saying how to fix it (the
# datasets package ends every "not available" reason with it).
FIX_MARKER = "To provide it:"


def _what_and_fix(reason: str) -> dict[str, object]:
    """A fallback's reason in two parts: what happened, sentence by sentence, and the ways
    to provide the real data, one by one."""
    what, _, fix = reason.partition(FIX_MARKER)
    return {
        "reason": reason,
        "what": [s.strip() + "." for s in what.strip().rstrip(".").split(". ") if s.strip()],
        "fix": [way.strip().rstrip(".") for way in fix.split("; or ") if way.strip()],
    }


def problems(runs: Runs) -> list[dict]:
    found = []
    for (run_id, _), record in sorted(runs.records.items()):
        spec, measured, capped = record.case, record.measured_rounds, record.capped_rounds
        if record.status == outcomes.OK and not capped:
            continue
        reason = record.reason or ""
        if record.status == outcomes.OK:
            reason = f"{capped} of {len(measured)} measured rounds stopped at the time cap"
        found.append(
            {
                "run_id": run_id if runs.multiple else "",
                "scenario": spec.scenario,
                "implementation": spec.implementation,
                "threads": spec.threads,
                "status": record.status if record.status != outcomes.OK else "capped",
                "reason": reason,
                "kept": f"{len(record.levels)} levels" if record.levels else len(measured),
                "details": (record.log_tail or record.details or "").strip(),
            }
        )
    return found


def glance(section: dict, scenario: Scenario) -> list[dict]:
    """The lines of the first table: fastest case, its speed-up and quality; one line per
    device where the scenario ran on several, so that a GPU case is never ranked against CPU
    cases."""
    by_device: dict[str, list[CaseRow]] = {}
    for row in section["rows"]:
        by_device.setdefault(row.values["device"], []).append(row)
    if len(by_device) <= 1:
        return [_glance_line(section, scenario, section["rows"], None)]
    order = sorted(by_device, key=lambda device: (device != "cpu", device))
    return [_glance_line(section, scenario, by_device[d], d) for d in order]


def _glance_line(
    section: dict, scenario: Scenario, rows: list[CaseRow], device: str | None
) -> dict:
    ok = [r for r in headline(rows) if r.ok]
    line = {"name": section["name"], "anchor": section["anchor"], "title": section["title"]}
    line.update(fastest=None, tied=[], flags=[], best=None, device=device)
    line["cases"] = f"{sum(r.ok for r in rows)} of {len(rows)}"
    if not ok:
        return line
    fastest = min(ok, key=lambda r: r.time["median"])
    marks = fastest_cases(ok)
    best = max(ok, key=lambda r: r.get(quality_column(scenario)) or -math.inf)
    line.update(
        fastest=fastest.label,
        tied=[r.label for r in ok if r is not fastest and marks.get(r.case_id) == "tied"],
        flags=fastest.flags,
        time=fmt_time(fastest.time["median"], fastest.extrapolated),
        speedup=(
            f"reference ({fastest.reference})"
            if fastest.implementation == fastest.reference
            else speed_words(fastest)
        ),
        quality=quality_text(fastest, scenario),
        best=(
            f"{best.label}: {quality_text(best, scenario)}"
            if _better(best, fastest, quality_column(scenario))
            else None
        ),
    )
    return line


# A more accurate case is worth naming beside the fastest when it is better by more than this
# (test accuracy or adjusted Rand index): half a percentage point.
MEANINGFULLY_BETTER = 0.005


def _better(row: CaseRow, than: CaseRow, column: str) -> bool:
    mine, theirs = row.get(column), than.get(column)
    return mine is not None and theirs is not None and mine - theirs > MEANINGFULLY_BETTER


def cluster_line(cluster: dict | None) -> str:
    """Where a cluster run's cases ran, and whether they could share a machine."""
    if not cluster:
        return ""
    workers = cluster.get("workers") or {}
    hosts = sorted({w.get("host") or "?" for w in workers.values()})
    policy = (
        "cases could share a host (--cluster-parallel): times of cases that overlapped are "
        "flagged “shared machine”"
        if cluster.get("parallel")
        else "one case per host at a time"
    )
    return (
        f"Cases ran on the Dask cluster {cluster.get('scheduler')}: {len(workers)} worker(s) on "
        f"{len(hosts)} host(s) ({', '.join(hosts)}); {policy}. The run's environment is that of "
        "the machine that coordinated it; each case records the machine that ran it."
    )


def machine_line(env: dict) -> str:
    parts = [env.get("cpu_model") or "unknown CPU"]
    cores = env.get("cores_allowed") or env.get("cores_logical")
    if cores:
        parts.append(f"{cores} cores")
    memory = env.get("memory_limit_bytes") or env.get("memory_total_bytes")
    if memory:
        parts.append(fmt_bytes(memory) + " memory")
    parts.append(env.get("distribution") or env.get("os") or "unknown OS")
    parts.append(f"Python {env.get('python_version', '?')}")
    blas = _blas_text(env)
    if blas:
        parts.append(blas)
    if env.get("git_commit"):
        parts.append(f"git {env['git_commit'][:10]}{' (dirty)' if env.get('git_dirty') else ''}")
    return " · ".join(parts)


def _blas_text(env: dict) -> str:
    libraries = env.get("blas") or []
    found = dict.fromkeys(
        f"{b.get('internal_api', '?')} {b.get('version') or ''}".strip() for b in libraries
    )
    return ", ".join(found)


def environment(store: RunStore, meta: RunMeta) -> dict:
    env = meta.environment
    cores = (
        f"{env.get('cores_logical')} logical, {env.get('cores_physical')} physical, "
        f"{env.get('cores_allowed')} allowed to this run"
    )
    memory = fmt_bytes(env.get("memory_total_bytes"))
    if env.get("memory_limit_bytes"):
        memory += f" (container limit {fmt_bytes(env['memory_limit_bytes'])})"
    system = (env.get("distribution"), env.get("os"), env.get("kernel"), env.get("machine"))
    commit = (env.get("git_commit") or "unknown") + (
        " (uncommitted changes)" if env.get("git_dirty") else ""
    )
    facts = [
        ("CPU", env.get("cpu_model")),
        ("Cores", cores),
        ("Threads per case", env.get("threads")),
        ("Memory", memory),
        ("OS", " · ".join(str(v) for v in system if v)),
        ("Python", f"{env.get('python_implementation', '')} {env.get('python_version', '')}"),
        ("BLAS", _blas_text(env) or None),
        ("GPU", env.get("gpu") or "none"),
        ("Git commit", commit),
        ("Host", env.get("hostname")),
    ]
    peaks = [
        {
            "threads": threads,
            "f32": fmt_num(peak.get("gemm_gflops")),
            "f64": fmt_num(peak.get("gemm_f64_gflops")),
            "bandwidth": fmt_num(peak.get("bandwidth_gbs")),
        }
        for threads, peak in sorted((meta.machine_peak or {}).items(), key=_cpu_then_devices)
        if isinstance(peak, dict)
    ]
    return {
        "run_id": store.run_id,
        "command": meta.command,
        "results": str(store.directory),
        "facts": [(k, v) for k, v in facts if v not in (None, "")],
        "packages": [(k, v) for k, v in (env.get("packages") or {}).items() if v],
        "peaks": peaks,
        "variables": sorted((env.get("environment_variables") or {}).items()),
    }


def _cpu_then_devices(item: tuple[str, object]) -> tuple:
    """Machine peaks are stored by thread count (the CPU) or by device name (a GPU)."""
    where = item[0]
    return (not where.isdigit(), int(where) if where.isdigit() else 0, where)


def _change_interval(case: compare.CaseComparison) -> str:
    """The interval of a change, saying so when it leaves out the noise between processes."""
    if not finite(case.low):
        return MISSING
    text = f"{case.low - 1:+.1%} to {case.high - 1:+.1%}"
    return text if case.interval_label == COVERAGE_LABEL else f"{text} ({case.interval_label})"


def comparison(baseline: RunStore, candidate: RunStore) -> dict:
    result = compare.compare_runs(baseline, candidate)
    rows = []
    for case in result.cases:
        rows.append(
            {
                "scenario": case.scenario,
                "implementation": case.implementation,
                "threads": case.threads,
                "case_id": case.case_id,
                "baseline": fmt_time(case.baseline_median, case.baseline_extrapolated),
                "candidate": fmt_time(case.candidate_median, case.candidate_extrapolated),
                "change": fmt_change(case.ratio),
                "interval": _change_interval(case),
                "p": fmt_num(case.p_value, 2),
                "verdict": case.verdict,
                "note": case.note,
                "css": case.verdict.replace(" ", "-"),
            }
        )
    return {
        "baseline": result.baseline,
        "candidate": result.candidate,
        "threshold": fmt_pct(result.threshold, 0),
        "rows": rows,
        "regressions": len(result.regressions),
        "improvements": sum(c.verdict == compare.IMPROVED for c in result.cases),
        "warnings": result.warnings,
    }
