"""Plots people would rather look at than read: training curves, and shared line-plot helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
# rnnlab's figures show what users wrote (run names, config values, review words) as written: with
# math text on, "$5 and $10" or "$x^{$" is parsed as markup, drawn wrong or raising on save.
matplotlib.rcParams["text.parse_math"] = False
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

__all__ = ["plot_training_curves", "line_plot", "ACCURACY_YLIM"]

_STYLES = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", (0, (5, 1))), ("P", (0, (3, 1, 1, 1)))]
ACCURACY_YLIM = (-0.02, 1.02)  # accuracy plots keep 0..1, so chance-level noise does not look like a trend


def line_plot(
    path: Path,
    series: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None, Sequence[float] | None]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    logx: bool = False,
    hline: tuple[float, str] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Path:
    """One line per series `label -> (x, y, low, high)`; low/high draw a shaded band.

    Each series gets its own marker and dash pattern, so lines lying on top of each other (two
    models both at 100%) stay visible.
    """
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for i, (label, (x, y, low, high)) in enumerate(series.items()):
        style = _STYLES[i % len(_STYLES)]
        sparse = len(x) <= 25
        (line,) = ax.plot(x, y, label=label, linestyle=style[1], marker=style[0] if sparse else None,
                          markersize=6 - 1.2 * (i % 3), linewidth=1.6, alpha=0.9)
        if low is not None and high is not None:
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.18, linewidth=0)
    if hline is not None:
        ax.axhline(hline[0], color="grey", linestyle=":", linewidth=1, label=hline[1])
    if logy:
        ax.set_yscale("log")
        # Plain "1e-12" labels: with math text off (above) the default log labels print as raw markup.
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.0e}"))
    if logx:
        ax.set_xscale("log")
        xs = sorted({float(v) for x, *_ in series.values() for v in x})
        ax.set_xticks(xs, [f"{v:,g}" for v in xs])
        ax.minorticks_off()
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_training_curves(rows: list[dict[str, Any]], plots_dir: Path, title: str, chance: float | None = None,
                         chance_label: str = "chance", baseline: tuple[float, str] | None = None) -> list[Path]:
    """plots/loss.png and plots/accuracy.png: train and validation against step, with the chance
    accuracy and the task's baseline loss as dashed lines."""
    written = []
    for metric in ("loss", "accuracy"):
        series = {}
        for split in ("train", "val"):
            pts = [(r["step"], r[metric]) for r in rows if r.get("split") == split and r.get(metric) is not None]
            if pts:
                xs, ys = zip(*pts)
                series["validation" if split == "val" else split] = (xs, ys, None, None)
        if series:
            hline = (chance, chance_label) if metric == "accuracy" and chance else (baseline if metric == "loss" else None)
            ylim = ACCURACY_YLIM if metric == "accuracy" else None
            written.append(
                line_plot(plots_dir / f"{metric}.png", series, title=f"{title}: {metric}", xlabel="step", ylabel=metric, hline=hline, ylim=ylim)
            )
    return written
