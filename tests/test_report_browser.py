"""The report as a reader sees it: rendered by headless Chromium at 1400 and 1024 px and
printed to PDF, from a stored run shaped like a quick run of the whole matrix."""

import html
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from runs import quick_like_run

from bench import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = Path(__file__).parent / "browser" / "probe.js"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run)")


def _chromium(*args: str, profile: Path) -> str:
    done = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", *args,
        ],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return done.stdout


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    store = quick_like_run(root / "results")
    path = report.write([store], root / "reports")
    probed = root / "probed.html"
    probed.write_text(
        path.read_text().replace("</body>", f"<script>{PROBE.read_text()}</script></body>")
    )
    return {"root": root, "path": path, "probed": probed, "context": report.build([store])}


def _measure(rendered, width: int) -> dict:
    dom = _chromium(
        f"--window-size={width},1200", "--dump-dom", rendered["probed"].as_uri(),
        profile=rendered["root"] / f"profile-{width}",
    )  # fmt: skip
    found = re.findall(r'<pre id="probe-result">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run"
    return json.loads(html.unescape(found[-1]))


def _every_flag(context) -> set[str]:
    return {flag for s in context["sections"] for row in s["rows"] for flag in row.flags}


@pytest.mark.parametrize("width", [1400, 1024])
def test_every_flag_of_every_case_is_on_screen(rendered, width):
    measured = _measure(rendered, width)
    assert measured["scrollWidth"] <= width, "the page is wider than the window"
    # A table wider than the page is cut at the window's edge (the glance table's last column
    # was, at 1024 px, when a flag could not wrap).
    cut = [t["caption"] for t in measured["tables"] if t["right"] > width]
    assert not cut, f"tables past the window's right edge in sections {cut}"
    visible = [f["shown"] and f["left"] >= 0 and f["right"] <= width for f in measured["flags"]]
    shown = {f["text"] for f, seen in zip(measured["flags"], visible, strict=True) if seen}
    hidden = [f for f, seen in zip(measured["flags"], visible, strict=True) if not seen]
    assert not hidden, hidden[:3]
    assert _every_flag(rendered["context"]) <= shown


def test_every_flag_of_every_case_is_in_the_printed_pdf(rendered):
    from pypdf import PdfReader

    pdf = rendered["root"] / "report.pdf"
    _chromium(
        f"--print-to-pdf={pdf}", "--no-pdf-header-footer", rendered["path"].as_uri(),
        profile=rendered["root"] / "profile-print",
    )  # fmt: skip
    text = " ".join(page.extract_text() or "" for page in PdfReader(pdf).pages)
    text = " ".join(text.replace("\xa0", " ").split())
    missing = [flag for flag in _every_flag(rendered["context"]) if flag not in text]
    assert not missing, missing


def _centre(box) -> tuple[float, float]:
    return ((box["left"] + box["right"]) / 2, (box["top"] + box["bottom"]) / 2)


def _distance_to_box(point, box) -> float:
    x, y = point
    dx = max(box["left"] - x, 0, x - box["right"])
    dy = max(box["top"] - y, 0, y - box["bottom"])
    return math.hypot(dx, dy)


def _figure(element_id: str) -> str:
    return element_id.rsplit("-", 2)[0]


def test_every_scatter_label_sits_by_its_own_point(rendered):
    measured = _measure(rendered, 1400)
    points = {p["id"]: p for p in measured["points"]}
    leaders = {line["id"].replace("-leader-", "-label-"): line for line in measured["leaders"]}
    assert measured["labels"], "no scatter was drawn"
    for label in measured["labels"]:
        point = points[label["id"].replace("-label-", "-point-")]
        centre = _centre(point)
        if label["id"] in leaders:  # tied to its point by a leader line
            ends = [leaders[label["id"]]["start"], leaders[label["id"]]["end"]]
            at_point = min(ends, key=lambda end: math.dist(end, centre))
            (at_label,) = [end for end in ends if end is not at_point]
            assert math.dist(at_point, centre) <= 4, label["id"]
            assert _distance_to_box(at_label, label) <= 4, label["id"]
        else:
            assert _distance_to_box(centre, label) <= 12, label["id"]
        others = [
            _centre(p)
            for p in measured["points"]
            if _figure(p["id"]) == _figure(label["id"]) and p["id"] != point["id"]
        ]
        assert all(_distance_to_box(c, label) > 0 for c in others), label["id"]


def test_no_legend_covers_a_data_mark(rendered):
    measured = _measure(rendered, 1400)
    assert measured["legends"]
    for legend in measured["legends"]:
        figure = legend["id"].removesuffix("-legend")
        marks = [m for m in measured["marks"] if m["id"].startswith(f"{figure}-data-")]
        assert marks, legend["id"]
        inside = [
            (m["id"], p) for m in marks for p in m["points"] if _distance_to_box(p, legend) == 0
        ]
        assert not inside, inside[:3]


def test_bar_lengths_are_in_the_ratio_of_the_times(rendered):
    measured = _measure(rendered, 1400)
    by_figure: dict[str, list] = {}
    for bar in measured["bars"]:
        by_figure.setdefault(_figure(bar["id"]), []).append(bar)
    sections = {f"{s['anchor']}-bars": s for s in rendered["context"]["sections"] if s["bars"]}
    assert set(by_figure) == set(sections)
    for figure, bars in by_figure.items():
        medians = [b.median for b in sections[figure]["bars"].arguments[0]]
        bars.sort(key=lambda b: int(b["id"].rsplit("-", 1)[1]))
        widths = [b["right"] - b["left"] for b in bars]
        longest = max(range(len(widths)), key=widths.__getitem__)
        for width, median in zip(widths, medians, strict=True):
            expected = widths[longest] * median / medians[longest]
            assert abs(width - expected) <= 1.0, (figure, width, expected)
