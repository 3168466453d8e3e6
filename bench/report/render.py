"""The report's context rendered by its templates: one self-contained HTML file, or a
Markdown summary to paste into a pull request.

Both are Jinja templates over the same context. HTML autoescapes every value; the Markdown
template passes every value through the `md` filter, which keeps a table cell one line of
literal text. Figures are drawn here, when the HTML template asks for one; the stylesheet
is inlined, so the file fetches nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import jinja2
from markupsafe import Markup

TEMPLATES = "bench.report"  # package whose templates/ folder holds the report's files

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@functools.cache
def _environment(autoescape: bool) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATES, "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["md"] = md
    environment.filters["md_row"] = md_row
    return environment


def render_html(context: dict) -> str:
    from bench.report import plots  # matplotlib loads only for the figures of a page

    environment = _environment(True)
    css = environment.loader.get_source(environment, "report.css")[0]
    template = environment.get_template("report.html.j2")
    return template.render(**context, css=Markup(css), figure=lambda f: Markup(plots.draw(f)))


def render_markdown(context: dict) -> str:
    return _environment(False).get_template("report.md.j2").render(**context)


def md(text: object) -> str:
    """Literal text in a GitHub Markdown table cell: no markup, no HTML, one line. Its
    non-breaking spaces stay: "13.5 s" must not wrap between the number and its unit."""
    text = re.sub(r"[ \t\r\n\f\v]+", " ", str(text)).strip()
    text = re.sub("[&<>]", lambda m: _HTML_SPECIAL[m.group()], text)
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_row(cells: Sequence[object]) -> str:
    """One row of a GitHub table, every cell literal text."""
    return "| " + " | ".join(md(cell) for cell in cells) + " |"
