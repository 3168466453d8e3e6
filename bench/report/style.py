"""How the report's figures look: colours, fonts and matplotlib's settings, shared by the
plots and their labels."""

from __future__ import annotations

import logging

INK = "#1f2933"
LABEL_SIZE = 7.5
MUTED = "#6b7280"
GRID = "#e5e7eb"
FONT_STACK = ["system-ui", "Segoe UI", "Helvetica Neue", "Arial", "DejaVu Sans"]
STYLE = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": FONT_STACK,
    "font.size": 9,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "legend.fontsize": 8,
}
# Only the first fonts of the stack exist in the browser; matplotlib measures with the last.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


def plain_text(label: str) -> str:
    """Plain text for matplotlib: a `$` would start mathtext."""
    return label.replace("$", r"\$")
