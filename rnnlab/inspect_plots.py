"""The figures of `rnnlab inspect`: heat maps of units x time, gate means and memory carriers.

    rnnlab inspect runs/<run>     # writes heatmap_<name>.png, gate_means.png, memory_carriers.png

Margins are fixed in inches (no tight_layout, which draws each figure twice); the tokens of a text
are written under the columns as plain text, never as math markup (rnnlab/plots.py turns it off).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .plots import plt

__all__ = ["heatmap", "gate_means", "memory_carriers_plot", "MAX_X_LABELS", "MAX_LINE_TOKENS"]

MAX_X_LABELS = 60  # token labels on a heat map (each costs time to draw); longer texts show every k-th token
MAX_LINE_TOKENS = 40  # a line plot names every token up to this length; beyond, it counts steps

_CMAPS = {"cell": ("RdBu_r", None), "hidden": ("RdBu_r", 1.0), "candidate": ("RdBu_r", 1.0)}


def _panel_name(panel: tuple[int, str], panels: int) -> str:
    return "" if panels == 1 else f"layer {panel[0]} {panel[1]}: "


def _x_labels(ax: Any, tokens: list[str], is_text: bool) -> str:
    """Tokens under the columns (every k-th for long texts), or a step axis; returns a note for the title."""
    from matplotlib.transforms import blended_transform_factory

    t = len(tokens)
    if is_text:
        width = ax.get_position().width * ax.figure.get_figwidth()  # inches
        step = max(1, math.ceil(t / min(MAX_X_LABELS, int(8 * width))))  # about 8 rotated labels an inch
        # Plain texts under the columns: a third of the time of as many tick labels.
        ax.set_xticks([])
        below = blended_transform_factory(ax.transData, ax.transAxes)
        size = 6 if t > 40 else 8
        for i in range(0, t, step):
            ax.text(i, -0.015, tokens[i], rotation=90, ha="center", va="top", fontsize=size, transform=below)
        return f" ({t} tokens, every {step}th shown)" if step > 1 else ""
    ax.set_xlabel("t" + (f"  ({tokens[0]} at t = 0)" if tokens and tokens[0] != "·" else ""))
    return ""


def _names_tokens(tokens: list[str], is_text: bool) -> bool:
    """Whether a line plot writes the tokens along its x axis (and so needs room below it)."""
    return is_text and len(tokens) <= MAX_LINE_TOKENS


def _step_axis(ax: Any, tokens: list[str], is_text: bool) -> None:
    """The x axis of a line plot: whole steps (a line's points are steps, never 0.5), and for a text
    short enough to read along the axis, its tokens."""
    from matplotlib.ticker import MaxNLocator

    if _names_tokens(tokens, is_text):
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("t")


def _figure(rows: int, cols: int, panel_w: float, panel_h: float, *, left: float = 0.8, right: float = 0.3,
            bottom: float = 0.6, top: float = 0.6, hspace: float = 0.45, wspace: float = 0.8) -> tuple[Any, Any]:
    """A grid of panels with margins fixed in inches: no tight_layout, which draws every figure
    twice and took half of inspect's time."""
    width = left + right + cols * panel_w + (cols - 1) * wspace
    height = bottom + top + rows * panel_h + (rows - 1) * hspace
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), dpi=100, squeeze=False)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        hspace=hspace / panel_h, wspace=wspace / panel_w)  # fmt: skip
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, pil_kwargs={"compress_level": 1})  # 3x faster to write than the default level 6
    plt.close(fig)
    return path


def heatmap(path: Path, panels: dict[tuple[int, str], np.ndarray], tokens: list[str], is_text: bool, name: str, title: str) -> Path:
    """Units (rows) x time steps (columns), one panel per layer and direction."""
    t, h = next(iter(panels.values())).shape
    cmap, bound = _CMAPS.get(name, ("viridis", None))
    fig, axes = _figure(len(panels), 1, min(16.0, max(6.0, 0.03 * t)), min(4.0, max(1.4, 0.06 * h)),
                        right=1.0, bottom=1.1 if is_text else 0.6, hspace=0.25)  # fmt: skip
    if name.endswith("_gate"):
        vmin, vmax = 0.0, 1.0
    else:  # a state: symmetric around 0, one scale for every panel
        top = bound or max(max(float(np.abs(v).max()) for v in panels.values()), 1e-6)
        vmin, vmax = -top, top
    for ax, (panel, values) in zip(axes[:, 0], panels.items()):
        image = ax.imshow(values.T, aspect="auto", interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax, origin="lower")
        ax.set_ylabel(f"{_panel_name(panel, len(panels))}unit", fontsize=8)
        if ax is not axes[-1, 0]:
            ax.set_xticks([])
    fig.colorbar(image, ax=list(axes[:, 0]), pad=0.01, fraction=0.03 if len(panels) == 1 else 0.02, aspect=10 * len(panels))
    note = _x_labels(axes[-1, 0], tokens, is_text)
    axes[0, 0].set_title(f"{title}: {name.replace('_', ' ')}{note}", fontsize=9)
    return _save(fig, path)


def gate_means(path: Path, gates: dict, tokens: list[str], is_text: bool, title: str) -> Path:
    """Each gate's mean over the units against time; one panel per layer and direction."""
    panels = list(gates)
    fig, axes = _figure(len(panels), 1, 6.5, 2.6, right=1.7, top=0.7, hspace=0.35, bottom=1.1 if _names_tokens(tokens, is_text) else 0.6)
    for ax, panel in zip(axes[:, 0], panels):
        for gate, values in gates[panel].items():
            ax.plot(values.mean(axis=1), label=gate.replace("_", " "), linewidth=1.5)
        ax.set(ylabel=f"{_panel_name(panel, len(panels))}mean", ylim=(-0.02, 1.02))
        ax.yaxis.label.set_fontsize(8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[0, 0].set_title(f"{title}: each gate's mean over the units", fontsize=9)
    for ax in axes[:, 0]:
        _step_axis(ax, tokens, is_text)
        if ax is not axes[-1, 0]:
            ax.set_xticklabels([])
            ax.set_xlabel("")
    return _save(fig, path)


def memory_carriers_plot(
    path: Path, states: dict, keeps: dict | None, carriers: dict, state: str, keep: str | None,
    tokens: list[str], is_text: bool, title: str,
) -> Path:
    """Left: the carriers' state against time; right: their keep gate."""
    cols = 2 if keeps is not None else 1
    fig, axes = _figure(len(states), cols, 5.2, 2.6, top=0.8, hspace=0.5, right=1.1, bottom=1.1 if _names_tokens(tokens, is_text) else 0.6)
    for row, (panel, values) in enumerate(states.items()):
        units = carriers[panel]
        prefix = _panel_name(panel, len(states))
        for u in units:
            axes[row, 0].plot(values[:, u], label=f"unit {u}", linewidth=1.4)
        axes[row, 0].set(title=f"{prefix}{state} state of the {len(units)} steadiest units", ylabel=state)
        if keeps is not None:
            for u in units:
                axes[row, 1].plot(keeps[panel][:, u], linewidth=1.4)
            axes[row, 1].set(title=f"{prefix}their {keep.replace('_', ' ')}", ylabel=keep, ylim=(-0.02, 1.02))
        for ax in axes[row]:
            ax.title.set_fontsize(9)
            ax.grid(alpha=0.3)
            _step_axis(ax, tokens, is_text)
            if row < len(states) - 1:
                ax.set_xticklabels([])
                ax.set_xlabel("")
        # one legend a row, outside: loc="best" would search every point of every line (slow)
        axes[row, 0].figure.legend(*axes[row, 0].get_legend_handles_labels(), fontsize=7, loc="upper left",
                                   bbox_to_anchor=(1.01, 1.0), bbox_transform=axes[row, -1].transAxes)  # fmt: skip
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)
