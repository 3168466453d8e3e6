"""The HTML report: rendered by a real browser, self-contained, escaped, honest about
fallbacks and partial cases; and its Markdown summary."""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import bench_command, smoke_args
from PIL import Image, ImageStat

from bench import cli, report
from bench.records import CaseRecord, RunMeta
from bench.report.rows import speed_words
from bench.scenarios import SCENARIOS
from bench.store import RunStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "<script>alert('owned')</script>"

HOSTILE_PLUGIN = f'''
import numpy as np

from bench.api import Trainer, register


@register
class Hostile(Trainer):
    name, model, framework = "hostile", "mlp", "{HOSTILE}"
    deviations = {{"*": "deviates {HOSTILE}"}}

    @classmethod
    def why_unsupported(cls, scenario):
        return "cannot {HOSTILE}"

    def load(self, x_train, y_train):
        pass

    def train(self, steps):
        return 0.0

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)
'''


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One real smoke run (every scenario; numpy-vectorized, plus a plugin whose texts are
    hostile HTML) and its report, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("report")
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "hostile.py").write_text(HOSTILE_PLUGIN)
    results, reports = root / "results", root / "reports"
    done = bench_command(
        *smoke_args("--impl", "numpy-vectorized,hostile", "--plugins", str(plugins)),
        results=results,
    )
    assert done.returncode == 0, done.stderr
    written = bench_command("report", "--reports-dir", str(reports), results=results)
    assert written.returncode == 0, written.stderr
    path = Path(written.stdout.strip().splitlines()[-1])
    return {"results": results, "reports": reports, "path": path, "html": path.read_text()}


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_is_written_with_latest_beside_it(smoke):
    path = smoke["path"]
    assert path.parent == smoke["reports"] and path.suffix == ".html"
    assert path.stem == next(p.name for p in smoke["results"].iterdir())
    assert (smoke["reports"] / "latest.html").read_text() == smoke["html"]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_headless_chromium_with_every_scenario(smoke, tmp_path):
    screenshot = tmp_path / "report.png"
    shot = _chromium(
        f"--screenshot={screenshot}",
        "--window-size=1280,4000",
        smoke["path"].as_uri(),
        profile=tmp_path / "profile",
    )
    assert screenshot.is_file(), shot.stderr
    image = Image.open(screenshot).convert("L")
    assert image.size == (1280, 4000)
    assert ImageStat.Stat(image).stddev[0] > 10, "the screenshot is blank"
    dark = sum(image.histogram()[:128]) / (image.size[0] * image.size[1])
    assert dark > 0.005, "hardly any text or figure was drawn"

    dom = _chromium("--dump-dom", smoke["path"].as_uri(), profile=tmp_path / "profile").stdout
    sections = _Sections()
    sections.feed(dom)
    for name in SCENARIOS:
        assert name in sections.headings.get(f"scenario-{name}", ""), name
    for anchor in ("at-a-glance", "problems", "articles", "environment"):
        assert anchor in sections.headings
    assert dom.count("<svg") >= 4  # time bars, curves, scatters


class _Sections(HTMLParser):
    """Ids of <section> elements and the text of their first heading."""

    def __init__(self):
        super().__init__()
        self.headings, self._section, self._in_heading = {}, None, False

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self._section = dict(attrs).get("id")
            self.headings[self._section] = ""
        elif tag == "h2" and self._section:
            self._in_heading = True

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_heading = False

    def handle_data(self, data):
        if self._in_heading:
            self.headings[self._section] += data


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.references, self.tags = [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "srcset", "data"):
                self.references.append(value or "")


def test_report_is_self_contained(smoke):
    links = _Links()
    links.feed(smoke["html"])
    assert links.references, "expected in-page links"
    external = [r for r in links.references if "://" in r or r.startswith("//")]
    assert not external
    assert all(r.startswith("#") for r in links.references)
    assert not links.tags & {"script", "link", "img", "iframe", "object"}
    assert not re.search(r"url\(\s*['\"]?(?!#)", smoke["html"])  # only in-page fragments
    assert "@import" not in smoke["html"]
    assert "@media print" in smoke["html"]


def test_texts_from_plugins_are_escaped(smoke):
    html = smoke["html"]
    assert HOSTILE not in html and "<script" not in html
    escaped = "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;"
    assert f"cannot {escaped}" in html  # the unsupported reason
    assert f"deviates {escaped}" in html  # the declared deviation


def test_report_shows_what_ran_and_where(smoke):
    html = smoke["html"]
    for expected in ("numpy-vectorized", "unsupported", "Articles vs here"):
        assert expected in html
    # sklearn, the original of linfa-kmeans, did not run: the fastest stands in, and says so.
    assert "sklearn (the article&#39;s original) has no measured case here" in html
    assert "bench run --profile smoke" in html  # the command that reproduces the run
    assert "Python" in html and "numpy" in html and "CPU" in html


def test_markdown_summary(smoke, tmp_path, capsys):
    args = [
        "--format",
        "md",
        "--reports-dir",
        str(tmp_path),
        "--results-dir",
        str(smoke["results"]),
    ]
    assert cli.main(["report", *args]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.suffix == ".md" and (tmp_path / "latest.md").is_file()
    text = path.read_text()
    assert text.startswith("## Benchmark report")
    assert "| Scenario | Fastest |" in text
    for name in ("dlfs-mlp", "linfa-kmeans"):
        assert f"| {name} |" in text
    assert "<script" not in text and "&lt;script&gt;" in text
    assert "```sh\nbench run --profile smoke" in text


def test_no_run_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["report", "--results-dir", str(tmp_path / "empty")]) == 2
    assert "no runs in" in capsys.readouterr().err


# --- stored runs built by hand: fallbacks, partial cases, sweeps -------------------------


def _rounds(times, *, kmeans=False, capped=(), accuracy=0.91):
    rounds = []
    for index, seconds in enumerate([times[0] * 3, *times] if times else []):
        record = {
            "round": index,
            "warmup": index == 0,
            "wall_seconds": seconds,
            "cpu_seconds": seconds * 1.5,
            "effective_cores": 1.5,
            "utilisation": 0.75,
            "peak_rss_bytes": 80 * 2**20,
            "samples": 1000,
            "samples_per_second": 1000 / seconds,
            "capped": index in capped,
        }
        if kmeans:
            record.update(inertia=100.0 + index, adjusted_rand_index=1.0, n_iter=4)
            record["seconds_per_iteration"] = seconds / 4
        else:
            record.update(steps=5, loss=0.5, train_accuracy=0.93, test_accuracy=accuracy)
            record["planned_steps"] = 5
            if index in capped:  # stopped after 1 of its 5 steps
                record.update(steps=1, test_examples=500)
            else:
                record["test_examples"] = 10_000
            record["curve"] = [
                {"train_seconds": seconds / 2, "steps": 2, "loss": 0.7, "test_accuracy": 0.6},
                {"train_seconds": seconds, "steps": 5, "loss": 0.5, "test_accuracy": 0.91},
            ]
        rounds.append(record)
    return rounds


def _case(
    scenario, implementation, times, *, status="ok", reason=None, dataset=None, threads=2, **kw
):
    overrides = kw.pop("overrides", {})
    spec = {
        "id": f"{scenario}--{implementation}--t{threads}--cpu"
        + "".join(f"--{k}={v}" for k, v in overrides.items()),
        "scenario": scenario,
        "implementation": implementation,
        "model": SCENARIOS[scenario].model,
        "framework": "none",
        "threads": threads,
        "device": "cpu",
        "profile": "smoke",
        "source": "path:test",
        "rounds": len(times),
        "warmup_rounds": 0,
        "timeout_s": 60,
        "seed": 0,
        "dataset": dataset,
        "overrides": overrides,
        "deviations": [],
    }
    kmeans = SCENARIOS[scenario].model == "kmeans"
    rounds = _rounds(times, kmeans=kmeans, **kw)
    return {"case": spec, "status": status, "reason": reason, "rounds": rounds}


def _store(root, cases, datasets):
    """A stored run made from records in their JSON form, as an older run left them."""
    meta = {
        "run_id": "20260101-000000-smoke",
        "command": "bench run --profile smoke",
        "profile": "smoke",
        "datasets": datasets,
        "environment": {"cpu_model": "Test CPU", "cores_allowed": 2, "python_version": "3.x"},
        "plan": [case["case"] for case in cases],
    }
    store = RunStore.create(root, RunMeta.from_json(meta))
    for case in cases:
        store.save_case(CaseRecord.from_json(case))
    return store


def test_fallback_partial_and_capped_cases_are_flagged(tmp_path):
    fallback = {
        "requested": "mnist",
        "used": "mnist-5k",
        "fallback_reason": "mnist not found offline",
    }
    store = _store(
        tmp_path,
        [
            _case("dlfs-mlp", "numpy-vectorized", [0.10, 0.11, 0.12], dataset=fallback),
            _case(
                "dlfs-mlp",
                "numpy-pure",
                [1.0],
                status="timeout",
                reason="exceeded the time limit",
                dataset=fallback,
            ),
            _case("dlfs-mlp", "torch", [0.2, 0.2, 0.2], dataset=fallback, capped=(1, 2)),
            _case("dlfs-mlp", "keras", [], status="skipped", reason="tensorflow missing"),
        ],
        {"dlfs-mlp": fallback},
    )
    html = report.render_html(report.build([store]))
    assert "Fallback dataset" in html and "mnist not found offline" in html
    assert html.count("fallback data: mnist-5k") >= 4  # glance, table rows, figures
    assert (
        "partial: timeout" in html and "capped: 2 of 3 rounds, accuracy on 500 test images" in html
    )
    assert '>2 ok</span> <span class="status capped">1 of them capped<' in html
    assert "tensorflow missing" in html and "exceeded the time limit" in html
    # numpy-vectorized is the dlfs-mlp original: the reference of the speed-ups.
    assert "Speed-up vs numpy-vectorized" in html


def test_a_capped_case_is_compared_by_throughput_not_by_its_shortened_rounds(tmp_path):
    fallback = {"requested": "mnist", "used": "mnist", "fallback_reason": None}
    store = _store(
        tmp_path,
        [
            _case("dlfs-mlp", "numpy-vectorized", [1.0, 1.0, 1.0]),
            # half the time of numpy-vectorized per round, but for 1 of the 5 planned steps
            _case("dlfs-mlp", "numpy-pure", [0.5, 0.5, 0.5], capped=(1, 2, 3), accuracy=0.5),
        ],
        {"dlfs-mlp": fallback},
    )
    context = report.build([store])
    (glance,) = context["glance"]
    assert glance["fastest"] == "numpy-vectorized"
    (section,) = context["sections"]
    pure = next(r for r in section["rows"] if r.implementation == "numpy-pure")
    assert pure.wall["median"] == 0.5  # what was measured, shown beside the comparable time
    assert pure.time["median"] == 2.5  # 0.5 s for 1 step: 2.5 s for 5
    assert pure.extrapolated
    assert speed_words(pure).startswith("2.50×\xa0slower than numpy-vectorized")
    assert "from samples/s (capped)" in speed_words(pure)
    assert section["front"] == ["numpy-vectorized"]  # the capped case is never on the front


def test_a_sweep_gets_a_log_log_plot_and_its_fitted_exponent(tmp_path):
    sizes = (1_000, 10_000, 100_000)
    cases = [
        _case(
            "linfa-kmeans",
            implementation,
            [factor * n / 1e5] * 3,
            overrides={"n_samples": n},
        )
        for implementation, factor in (("sklearn", 1.0), ("numpy-vectorized", 0.5))
        for n in sizes
    ]
    blobs = {"requested": "blobs", "used": "blobs", "fallback_reason": None}
    store = _store(tmp_path, cases, {"linfa-kmeans": blobs})
    context = report.build([store])
    (section,) = context["sections"]
    (scaling,) = section["scaling"]
    assert scaling["key"] == "n_samples"
    assert {fit["exponent"] for fit in scaling["fits"]} == {"1"}
    assert section["kmeans"]["disagree"] == []  # identical inertia round by round
    html = report.render_html(context)
    assert "Scaling with n samples (log-log)" in html
    assert "numpy-vectorized · n_samples=1,000<" in html  # a table row of the sweep
    assert section["threads"] is None  # one thread count: no thread scaling to show


def test_a_thread_sweep_gets_speed_up_and_parallel_efficiency(tmp_path):
    cases = [
        _case(
            "linfa-kmeans",
            implementation,
            [seconds * n / 10_000] * 3,
            threads=threads,
            overrides={"n_samples": n},
        )
        for implementation, seconds_by_threads in (
            ("sklearn", {1: 0.4, 2: 0.25}),
            ("numpy-vectorized", {1: 0.3, 2: 0.3}),
        )
        for threads, seconds in seconds_by_threads.items()
        for n in (1_000, 10_000)
    ]
    blobs = {"requested": "blobs", "used": "blobs", "fallback_reason": None}
    context = report.build([_store(tmp_path, cases, {"linfa-kmeans": blobs})])
    (section,) = context["sections"]
    rows = {(r["label"], r["threads"]): r for r in section["threads"]["rows"]}
    assert (rows["sklearn", 2]["speedup"], rows["sklearn", 2]["efficiency"]) == ("1.60×", "80%")
    assert (rows["sklearn", 1]["speedup"], rows["sklearn", 1]["efficiency"]) == ("1.00×", "100%")
    assert rows["numpy-vectorized", 2]["efficiency"] == "50%"
    # the size-scaling fits name the thread count of each line
    (scaling,) = section["scaling"]
    assert {fit["label"] for fit in scaling["fits"]} == {
        f"{implementation} · {threads}"
        for implementation in ("sklearn", "numpy-vectorized")
        for threads in ("1 thread", "2 threads")
    }
    html = report.render_html(context)
    assert "Scaling with threads" in html and "linear speed-up" in html


def test_cli_report_accepts_run_folders_and_reports_dir_from_the_environment(
    tmp_path, monkeypatch, capsys
):
    blobs = {"requested": "blobs", "used": "blobs", "fallback_reason": None}
    store = _store(
        tmp_path / "results",
        [_case("linfa-kmeans", "sklearn", [0.1, 0.1])],
        {"linfa-kmeans": blobs},
    )
    monkeypatch.setenv("BENCH_REPORTS_DIR", str(tmp_path / "elsewhere"))
    assert cli.main(["report", str(store.directory), "--results-dir", str(tmp_path)]) == 0
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "elsewhere" / f"{store.run_id}.html"
