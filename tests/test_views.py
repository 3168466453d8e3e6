"""Every view of a stored run reads the same numbers from the store and writes nothing:
one comparable time per case, the stored definitions and FLOPs, any stored format."""

import hashlib
import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from runs import case, store_run, training_round

from bench import cli, report
from bench.analysis import compare
from bench.analysis.tables import tidy_tables
from bench.records import CaseRecord
from bench.report import plots
from bench.report.format import fmt_seconds
from bench.scenarios import SCENARIOS, scenario_to_json
from bench.store import RunStore

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
# Stored by the harness at 659e55e (run format 1): three scenarios, a capped case.
FORMAT_1_RUN = FIXTURES / "20261201-210058-smoke"


def _capped_run(root: Path) -> RunStore:
    """dlfs-mlp's only case: three rounds capped at 6 s after 1 of their 100 steps, so its
    comparable time is 600 s (10 min) while 6 s was measured."""
    rounds = [training_round(0, 7.0, warmup=True, steps=1, planned_steps=100, capped=True)]
    rounds += [
        training_round(i, 6.0, steps=1, planned_steps=100, capped=True, test_examples=500)
        for i in (1, 2, 3)
    ]
    record = CaseRecord(case("dlfs-mlp", "numpy-vectorized"), "ok", rounds=tuple(rounds))
    return store_run(root, [record])


def test_every_view_reports_the_same_comparable_time_for_a_capped_case(tmp_path, capsys):
    store = _capped_run(tmp_path / "results")
    ten_minutes = fmt_seconds(600.0)
    assert ten_minutes == "10\xa0min"
    context = report.build([store])
    (section,) = context["sections"]
    (row,) = section["rows"]
    assert (row.time["median"], row.wall["median"], row.extrapolated) == (600.0, 6.0, True)
    # the scenario's table: the comparable time, saying it is extrapolated from what
    (cells,) = [r["cells"] for r in section["table"].rows]
    assert cells[1].main == ten_minutes
    assert "extrapolated · measured 6\xa0s" in cells[1].detail
    # the bars
    (bar,) = section["bars"].arguments[0]
    assert bar.median == 600.0 and "capped" in bar.label
    assert "10 min" in plots.draw(section["bars"])
    # at a glance, and the articles' "time" rows
    (glance,) = context["glance"]
    assert glance["time"] == f"{ten_minutes} (extrapolated)"
    (articles,) = context["articles"]
    (time,) = [
        p["here"]
        for p in articles["published"]
        if (p["implementation"], p["metric"]) == ("numpy-vectorized", "train time")
    ]
    assert time["text"] == f"{ten_minutes} (extrapolated)"
    quick_steps = SCENARIOS["dlfs-mlp"].budget("quick").steps
    assert time["differs"] == f"quick profile: {quick_steps:,} steps; the article: 10,000 steps"
    # the Markdown summary: the glance line and the case's line
    markdown = report.render_markdown(context)
    assert markdown.count(f"{ten_minutes} (extrapolated)") == 2
    # bench compare, in Python and in the terminal
    (compared,) = compare.compare_runs(store, store).cases
    assert compared.baseline_median == compared.candidate_median == 600.0
    assert compared.baseline_extrapolated and compared.candidate_extrapolated
    results = str(tmp_path / "results")
    assert cli.main(["compare", store.run_id, store.run_id, "--results-dir", results]) == 0
    terminal = " ".join(capsys.readouterr().out.split())
    assert terminal.count("10 min (extrapolated)") == 2
    # the terminal summary of `bench show`
    assert cli.main(["show", "--results-dir", results]) == 0
    terminal = " ".join(capsys.readouterr().out.split())
    assert "10 min" in terminal and "extrapolated" in terminal
    assert "6 s" not in terminal  # the measured time is not passed off as the case's


def _snapshot(folder: Path) -> dict[str, tuple]:
    return {
        str(path.relative_to(folder)): (
            path.stat().st_size,
            path.stat().st_mtime_ns,
            stat.S_IMODE(path.stat().st_mode),
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None,
        )
        for path in sorted(folder.rglob("*"))
    }


def _read_only_copy(source: Path, root: Path) -> Path:
    copy = root / source.name
    shutil.copytree(source, copy)
    for path in [copy, *copy.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return copy


def test_show_report_and_compare_leave_a_read_only_copy_of_a_run_unchanged(tmp_path, capsys):
    run = _read_only_copy(FORMAT_1_RUN, tmp_path / "results")
    before = _snapshot(run)
    results, reports = str(tmp_path / "results"), str(tmp_path / "reports")
    commands = [
        ["show", run.name],
        ["report", run.name, "--reports-dir", reports],
        ["report", run.name, "--format", "md", "--reports-dir", reports],
        ["report", run.name, "--baseline", run.name, "--reports-dir", reports],
        ["compare", run.name, run.name],
    ]
    for command in commands:
        assert cli.main([*command, "--results-dir", results]) == 0, command
    capsys.readouterr()
    # Root may write to a read-only folder anyway: the contents are what is compared.
    assert _snapshot(run) == before
    assert {p.name for p in Path(reports).iterdir()} == {
        f"{run.name}.html",
        f"{run.name}.md",
        "latest.html",
        "latest.md",
    }
    for path in [run, *run.rglob("*")]:
        os.chmod(path, path.stat().st_mode | stat.S_IWUSR)


def test_a_run_stored_by_an_earlier_version_still_loads_and_reports(tmp_path):
    store = RunStore.open(FIXTURES, FORMAT_1_RUN.name)
    assert store.meta.format == 1 and not store.meta.scenarios
    records = {r.case.id: r for r in store.cases()}
    capped = records["dlfs-mlp--numpy-vectorized--t2--cpu"]
    assert capped.capped_rounds == 2
    # its FLOPs were not stored then: derived from the definition, as that version did
    steps = capped.measured_rounds[0].steps
    assert capped.measured_rounds[0].flops == SCENARIOS["dlfs-mlp"].flops_per_step() * steps
    html = report.render_html(report.build([store]))
    assert "capped: 2 of 2 rounds, accuracy on 200 test images" in html
    assert "scikit-learn has no convolutional layers" in html  # the unsupported case


def test_gflops_come_from_the_stored_rounds_not_from_todays_catalogue(tmp_path):
    rounds = tuple(training_round(i, 2.0, warmup=i == 0, flops=8e9) for i in range(4))
    record = CaseRecord(case("dlfs-mlp", "numpy-pure"), "ok", rounds=rounds)
    # a definition unlike the catalogue's: had it been consulted, GFLOP/s would differ
    altered = scenario_to_json(replace(SCENARIOS["dlfs-mlp"], batch_size=1))
    store = store_run(tmp_path, [record], scenarios={"dlfs-mlp": altered})
    summary = tidy_tables(store.cases(), store.meta, store.scenarios())["summary"]
    assert summary.loc[0, "gflops_median"] == pytest.approx(4.0)
    assert store.scenarios()["dlfs-mlp"].batch_size == 1


def test_a_stored_scenario_missing_from_the_catalogue_is_still_reported(tmp_path):
    mine = replace(SCENARIOS["dlfs-mlp"], name="my-mlp", title="My own MLP, from a user file")
    rounds = tuple(training_round(i, 1.0, warmup=i == 0) for i in range(4))
    record = CaseRecord(case("my-mlp", "numpy-vectorized", model="mlp"), "ok", rounds=rounds)
    store = store_run(tmp_path, [record], scenarios={"my-mlp": scenario_to_json(mine)})
    context = report.build([store])
    (section,) = context["sections"]
    assert (section["name"], section["title"]) == ("my-mlp", "My own MLP, from a user file")
    assert not section["empty"]
    assert "My own MLP, from a user file" in report.render_html(context)


def test_a_format_1_scenario_gone_from_the_catalogue_keeps_its_stored_name(tmp_path):
    rounds = tuple(training_round(i, 1.0, warmup=i == 0) for i in range(4))
    record = CaseRecord(case("retired-mlp", "numpy-vectorized", model="mlp"), "ok", rounds=rounds)
    store = store_run(tmp_path, [record], scenarios={})
    store.update_meta(format=1)
    (section,) = report.build([store])["sections"]
    assert section["name"] == "retired-mlp"
    assert "not in this version's catalogue" in section["title"]
    assert [r.implementation for r in section["rows"]] == ["numpy-vectorized"]


def test_articles_vs_here_answers_with_the_harness_numbers_and_says_how_they_differ(tmp_path):
    from runs import quick_like_run

    context = report.build([quick_like_run(tmp_path)])
    published = {
        (a["name"], p["implementation"], p["metric"]): p["here"]
        for a in context["articles"]
        for p in a["published"]
    }
    # Nielsen's network.py is numpy-pure: its accuracy is measured here, after a quick budget
    book = published["nielsen-mlp", "book (Nielsen)", "test accuracy"]
    assert book["text"] == "90.30\xa0%"
    quick_steps = SCENARIOS["nielsen-mlp"].budget("quick").steps
    assert book["differs"] == f"quick profile: {quick_steps:,} steps; the article: 30 epochs"
    assert "fallback data: mnist-5k" in book["flags"]
    # the K-Means fit: 100 000 points here against the article's 1 000 000, said so
    sklearn = published["linfa-kmeans", "sklearn", "fit time (1M points)"]
    assert sklearn["differs"] == "quick profile: 100,000 points; the article: 1,000,000 points"
    # a ratio is answered with the ratio measured here, or with what is missing
    rust = published["tch-mlp", "Rust+LibTorch", "time vs torch"]
    assert rust["text"] == "not measured here: no tch-store case in this run"
    assert not rust["differs"]  # nothing was measured, so nothing differs
    vs_ndarray = published["nielsen-mlp", "numpy-pure", "time vs Rust ndarray"]
    assert vs_ndarray["text"] == "not measured here: no ndarray case in this run"
    answers = [here["text"] for here in published.values()]
    assert "reference" not in answers and "no such implementation here" not in answers
    # the fallback data is flagged once per scenario, not after every implementation
    (nielsen,) = [a for a in context["articles"] if a["name"] == "nielsen-mlp"]
    assert all("fallback data: mnist-5k" not in s["flags"] for s in nielsen["speeds"])
    assert "Data: mnist-5k here, mnist in the article." in nielsen["run_notes"]


def test_the_markdown_summary_keeps_units_whole_and_capped_cases_apart(tmp_path):
    from runs import quick_like_run

    store = quick_like_run(tmp_path / "results")
    html = report.write([store], tmp_path / "reports")
    markdown = report.write([store], tmp_path / "reports", fmt="md").read_text()
    assert f"`{html}`" in markdown  # where the full report is
    assert "2.1\xa0s" in markdown and "2.1 s" not in markdown  # "13.5 s" never wraps
    unfinished = markdown.split("### Cases that did not finish cleanly")[1].split("###")[0]
    assert "numpy-pure" not in unfinished  # capped, but finished
    assert "### Capped cases" in markdown
    assert "| Implementation | Time | IQR | 95 % CI | n (processes) |" in markdown
    (fallback,) = [line for line in markdown.splitlines() if "Fallback dataset" in line]
    assert len(fallback) < 400  # what happened, in a sentence; the fix on a line of its own


def test_every_element_id_of_the_report_is_unique(tmp_path):
    import collections
    import re

    from runs import quick_like_run

    page = report.render_html(report.build([quick_like_run(tmp_path)]))
    ids = collections.Counter(re.findall(r'\bid="([^"]+)"', page))
    assert len(ids) > 500  # the figures' elements are there
    assert [i for i, n in ids.items() if n > 1] == []
    # every internal reference still points at an element
    references = set(re.findall(r'(?:href="#|url\(#)([^")]+)', page))
    assert references and references <= set(ids)


def test_the_terminal_summary_reads_at_100_columns_without_breaking_a_word(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from bench.cli import terminal

    long_reason = (
        "tensorflow is not installed: pip install 'bench[tensorflow]' "
        + "(and a long explanation of why this matters) " * 5
    )
    slow = [training_round(0, 130.0, warmup=True)]
    slow += [
        training_round(i, 125.0 + i, capped=True, steps=5, planned_steps=10, test_examples=500)
        for i in (1, 2, 3)
    ]
    records = [
        CaseRecord(case("dlfs-mlp", "numpy-pure"), "ok", rounds=tuple(slow)),
        CaseRecord(
            case("dlfs-mlp", "numpy-vectorized"),
            "ok",
            rounds=tuple(
                training_round(i, 1.5 + i / 100, peak_rss_bytes=1234 * 2**20, warmup=i == 0)
                for i in range(4)
            ),
        ),
        CaseRecord(case("dlfs-mlp", "keras"), "skipped", reason=long_reason),
        CaseRecord(
            case("linfa-kmeans", "sklearn", model="kmeans"),
            "ok",
            rounds=tuple(training_round(i, 0.25, warmup=i == 0) for i in range(4)),
        ),
    ]
    store = store_run(tmp_path / "results", records)
    screen = Console(width=100, record=True, file=io.StringIO())
    monkeypatch.setattr(terminal, "console", screen)
    terminal.print_run(store)
    lines = screen.export_text().splitlines()
    assert max(map(len, lines)) <= 100
    # every name and number whole, on one line
    for token in ("numpy-vectorized", "numpy-pure", "linfa-kmeans", "1.52\xa0s", "1.2\xa0GiB"):
        assert any(token in line for line in lines), token
    # by scenario, then by time; the fastest marked; flags in a few words
    order = [next(i for i, line in enumerate(lines) if name in line) for name in (
        "numpy-vectorized", "numpy-pure", "keras", "linfa-kmeans")]  # fmt: skip
    assert order == sorted(order)
    assert "fastest" in lines[order[0]] and "fastest" not in lines[order[1]]
    assert "extrapolated" in " ".join(lines[order[1] : order[2]])
    # the long reason under the table, whole; the table says only where to find it
    assert "skipped [1]" in lines[order[2]]
    below = " ".join(" ".join(lines[order[3] + 1 :]).split())
    assert "[1] keras (dlfs-mlp): skipped: " + " ".join(long_reason.split()) in below
