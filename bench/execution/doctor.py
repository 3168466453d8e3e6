"""`bench doctor`'s checks: is this machine fit to measure on, and what to change if not.

In the spirit of pyperf's `system show`: each check reads what it can (load, the other
processes' CPU, CPU frequency governor and turbo, SMT, OpenBLAS's core type, the thread
variables, the cores allotted against those asked for, steal time) and gives a `Finding` with
a level and advice. Nothing here changes the machine. A check that cannot read what it needs
(a VM without cpufreq, a container) says so at level "note" and never fails.

`bench run` calls `examine` with a short sample and prints one line when a finding is
serious: then rounds will very likely be disturbed (docs/measurement.md, "Contention").
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from bench.execution import contention, environment, threads

OK, NOTE, WARNING, SERIOUS = "ok", "note", "warning", "serious"
LEVELS = (OK, NOTE, WARNING, SERIOUS)
SYSTEM_CPU = Path("/sys/devices/system/cpu")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Other processes' CPU, as a share of the cores this process may use, above which a run is
# busy: a quarter of the cores (half a core on 2) disturbs every case that uses them all.
BUSY_SHARE = 0.25
# Above this share the others are worth naming, not yet alarming.
NOTICEABLE_SHARE = 0.05
# A process is named among the busy ones from this share of one core over the sample.
BUSY_PROCESS_CORES = 0.10
COMMAND_CHARS = 48
# Steal (the hypervisor running other guests on our CPUs), as a share of the sample's CPU time.
STEAL_SERIOUS, STEAL_WARNING = 0.05, 0.01
# OpenBLAS's generic kernels, chosen when it does not recognise the CPU (often in a VM).
GENERIC_OPENBLAS_CORES = {"prescott", "katmai", "coppermine", "northwood", "banias", "atom"}


@dataclass(frozen=True)
class Finding:
    check: str  # what was checked, e.g. "load"
    level: str  # ok, note, warning or serious
    seen: str  # what was found
    advice: str = ""  # what to do about it, when something is to be done

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BusyProcess:
    pid: int
    name: str
    cores: float  # CPU over the sample, in cores (1.0 = one core all the time)


def examine(requested_threads: Sequence[int] = (), sample_s: float = 1.0) -> list[Finding]:
    """Every check, in a fixed order. `requested_threads`: the counts a run asks for (none:
    every allotted core). Takes about `sample_s` to watch the other processes."""
    cores = threads.available_cores()
    requested = max(requested_threads, default=cores)
    return [
        *_activity(cores, sample_s),
        _load(cores),
        _cores(cores, requested),
        _smt(requested),
        _governor(),
        _turbo(),
        _openblas_coretype(),
        _thread_variables(),
    ]


def serious(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == SERIOUS]


def busy_processes(sample_s: float) -> tuple[list[BusyProcess], float, float, float]:
    """The other processes using the CPU over `sample_s` seconds, busiest first; with the
    CPU seconds of every other process together, the steal seconds and the wall seconds."""
    watched = []
    for process in psutil.process_iter(["pid", "name", "cmdline"]):
        if process.pid == os.getpid():
            continue
        try:
            process.cpu_percent(None)  # starts its count
            watched.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    busy_before, steal_before = contention.system_times()
    own_before = contention.usage()[0]
    started = time.perf_counter()
    time.sleep(sample_s)
    busy_after, steal_after = contention.system_times()
    own_after = contention.usage()[0]
    elapsed = time.perf_counter() - started
    found = []
    for process in watched:
        try:
            share = process.cpu_percent(None) / 100
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if share >= BUSY_PROCESS_CORES:
            found.append(BusyProcess(process.pid, _command(process.info), share))
    others = max(0.0, (busy_after - busy_before) - (own_after - own_before))
    steal = max(0.0, steal_after - steal_before)
    return sorted(found, key=lambda p: -p.cores), others, steal, elapsed


def _command(info: dict) -> str:
    """A process's command line, short enough for one line: "python -m pytest tests/…"."""
    argv = list(info.get("cmdline") or ())
    if argv:
        argv[0] = Path(argv[0]).name
    words = " ".join(" ".join(argv).split()) or info.get("name") or "?"
    return words if len(words) <= COMMAND_CHARS else words[: COMMAND_CHARS - 1] + "…"


def _activity(cores: int, sample_s: float) -> list[Finding]:
    processes, others, steal, elapsed = busy_processes(sample_s)
    used = others / elapsed if elapsed > 0 else 0.0
    named = "; ".join(f"{p.name} (pid {p.pid}, {p.cores:.1f} cores)" for p in processes[:5])
    seen = (
        f"other processes used {used:.2f} of the {cores} core(s) allotted here over {elapsed:.1f} s"
    )
    seen += f": {named}" if named else ""
    if used >= BUSY_SHARE * cores:
        level = SERIOUS
        advice = (
            "the machine is busy: rounds will wait for a CPU and be flagged disturbed. Stop or "
            "pause these processes, or run when they are done; `--retry-disturbed N` re-runs "
            "disturbed rounds"
        )
    elif used >= NOTICEABLE_SHARE * cores:
        level, advice = WARNING, "some rounds may be disturbed; their flags will say so"
    else:
        level, advice = OK, ""
    found = [Finding("other processes", level, seen, advice)]
    logical = psutil.cpu_count() or cores
    stolen = steal / (elapsed * logical) if elapsed > 0 else 0.0
    steal_seen = f"{stolen:.1%} of the CPU time was stolen by the hypervisor"
    if stolen >= STEAL_SERIOUS:
        advice = "a virtual machine sharing its host's CPUs: times vary with the neighbours; "
        advice += "use dedicated CPUs (a dedicated instance type, or bare metal) to measure"
        found.append(Finding("steal time", SERIOUS, steal_seen, advice))
    elif stolen >= STEAL_WARNING:
        found.append(Finding("steal time", WARNING, steal_seen, "times may vary with the host"))
    else:
        found.append(Finding("steal time", OK, steal_seen))
    return found


def _load(cores: int) -> Finding:
    one, five, fifteen = os.getloadavg()
    seen = f"load average {one:.2f} (1 min), {five:.2f} (5 min), {fifteen:.2f} (15 min)"
    seen += f" on {cores} core(s)"
    if one > cores:
        advice = (
            "more runnable tasks than cores over the last minute (it lags: a job that just ended "
            "still counts); wait for it to fall below the number of cores"
        )
        return Finding("load", WARNING, seen, advice)
    return Finding("load", OK, seen)


def _cgroup_cores() -> float | None:
    """The cores' worth of CPU time this process's cgroup (v2) may use, or None if unlimited
    or not readable."""
    try:
        line = Path("/proc/self/cgroup").read_text().splitlines()[0]
        limit = (CGROUP_ROOT / line.split("::", 1)[1].lstrip("/") / "cpu.max").read_text()
    except (OSError, IndexError):
        return None
    quota, _, period = limit.strip().partition(" ")
    if quota == "max" or not period:
        return None
    return int(quota) / int(period)


def _cores(cores: int, requested: int) -> Finding:
    logical = psutil.cpu_count() or cores
    seen = f"{cores} of the machine's {logical} logical cores allotted to this process"
    quota = _cgroup_cores()
    if quota is not None:
        seen += f"; its cgroup may use {quota:g} cores' worth of CPU time"
    seen += f"; {requested} thread(s) asked for"
    if requested > cores:
        advice = (
            f"more threads than allotted cores: the case's threads take turns and its rounds "
            f"wait for a CPU by design; ask for at most {cores} (--threads)"
        )
        return Finding("cores", SERIOUS, seen, advice)
    if quota is not None and requested > quota:
        advice = (
            f"the cgroup's CPU quota ({quota:g} cores) throttles {requested} busy threads; "
            f"ask for at most {int(quota) or 1} (--threads) or raise the quota"
        )
        return Finding("cores", SERIOUS, seen, advice)
    return Finding("cores", OK, seen)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _smt(requested: int) -> Finding:
    active = _read(SYSTEM_CPU / "smt" / "active")
    physical = psutil.cpu_count(logical=False)
    if active is None:
        return Finding("SMT", NOTE, "not readable here", "")
    if active != "1":
        return Finding("SMT", OK, "off (or not supported): one thread per physical core")
    seen = f"on: {physical or '?'} physical cores run two threads each"
    if physical and requested > physical:
        advice = (
            f"{requested} threads share {physical} physical cores, two to a core, and run "
            f"slower than on separate cores; compare thread counts up to {physical}, or turn "
            "SMT off (echo off | sudo tee /sys/devices/system/cpu/smt/control)"
        )
        return Finding("SMT", WARNING, seen, advice)
    return Finding("SMT", NOTE, seen, "two threads of a case may share a physical core")


def _governor() -> Finding:
    governors = {_read(path) for path in SYSTEM_CPU.glob("cpu[0-9]*/cpufreq/scaling_governor")} - {
        None
    }
    if not governors:
        return Finding(
            "CPU frequency governor",
            NOTE,
            "not readable here (no cpufreq: often a VM or container, where the host decides)",
        )
    seen = ", ".join(sorted(governors))
    if governors != {"performance"}:
        advice = (
            "the clock speed follows the load, so a round's speed depends on what ran before; "
            "for steady numbers: sudo cpupower frequency-set -g performance"
        )
        return Finding("CPU frequency governor", WARNING, seen, advice)
    return Finding("CPU frequency governor", OK, seen)


def _turbo() -> Finding:
    no_turbo = _read(SYSTEM_CPU / "intel_pstate" / "no_turbo")
    boost = _read(SYSTEM_CPU / "cpufreq" / "boost")
    if no_turbo is None and boost is None:
        return Finding("turbo", NOTE, "not readable here")
    on = no_turbo == "0" if no_turbo is not None else boost == "1"
    if on:
        advice = (
            "turbo speeds depend on temperature and on how many cores are busy; to compare "
            "runs closely, turn it off (echo 1 | sudo tee "
            "/sys/devices/system/cpu/intel_pstate/no_turbo, or write 0 to cpufreq/boost)"
        )
        return Finding("turbo", WARNING, "on", advice)
    return Finding("turbo", OK, "off")


def _openblas_coretype() -> Finding:
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if forced:
        return Finding(
            "OPENBLAS_CORETYPE",
            NOTE,
            f"set to {forced}: OpenBLAS uses that CPU's kernels, whatever this CPU is",
            "compare only with runs that set it the same (the run records it)",
        )
    detected = _openblas_architecture()
    if detected and detected.lower() in GENERIC_OPENBLAS_CORES:
        advice = (
            f"OpenBLAS did not recognise this CPU and uses its generic {detected} kernels, "
            "much slower; set OPENBLAS_CORETYPE to the CPU's family (e.g. Haswell, SkylakeX, "
            "Zen) before running"
        )
        return Finding("OPENBLAS_CORETYPE", WARNING, f"not set; detected {detected}", advice)
    seen = "not set: OpenBLAS picks kernels for this CPU"
    return Finding("OPENBLAS_CORETYPE", OK, seen + (f" ({detected})" if detected else ""))


def _openblas_architecture() -> str | None:
    """The kernels OpenBLAS chose for this CPU, as NumPy loads it here (threadpoolctl)."""
    try:
        libraries = environment.blas_libraries()
    except ImportError:
        return None
    for library in libraries:
        if library.get("internal_api") == "openblas" and library.get("architecture"):
            return str(library["architecture"])
    return None


def _thread_variables() -> Finding:
    given = {n: os.environ[n] for n in threads.THREAD_VARIABLES if os.environ.get(n)}
    if not given:
        return Finding("thread variables", OK, "none set")
    seen = ", ".join(f"{name}={value}" for name, value in given.items())
    advice = (
        "bench sets these itself in every case's process, from --threads; your values do not "
        "reach the cases"
    )
    return Finding("thread variables", NOTE, seen, advice)
