"""How much of the symbol shown at t = 0 is still in the state at step t: the largest difference,
over the units, between the states of two test examples with different symbols (8 and 7), read
from the gates.npz files that `rnnlab inspect RUN --example 0` and `--example 1` wrote into each run.

    python docs/results/inspect_symbol_imprint/plot.py RUN_LSTM_CHRONO RUN_LSTM_DEFAULT RUN_GRU

Writes docs/img/inspect_symbol_imprint.png and prints the curves at a few steps as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "img" / "inspect_symbol_imprint.png"
LINES = (("LSTM, chrono init (cell state)", "cell"), ("LSTM, default init (cell state)", "cell"),
         ("GRU, update-gate bias 3 (hidden state)", "hidden"))  # fmt: skip


def imprint(run: Path, state: str) -> np.ndarray:
    ex0, ex1 = (sorted((run / "inspect").glob(f"*-test-example{i}"))[-1] for i in (0, 1))
    a, b = np.load(ex0 / "gates.npz"), np.load(ex1 / "gates.npz")
    key = f"layer0.forward.{state}"
    return np.abs(a[key] - b[key]).max(axis=1)  # (T,)


def main() -> None:
    runs = [Path(r) for r in sys.argv[1:]]
    if len(runs) != len(LINES):
        sys.exit(__doc__)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    rows = {}
    for (label, state), run in zip(LINES, runs):
        diff = imprint(run, state)
        rows[label] = {"run": str(run), **{f"t={t}": float(diff[t]) for t in (0, 1, 5, 10, 20, 50, len(diff) - 1)}}
        ax.plot(np.maximum(diff, 1e-12), label=label, linewidth=1.6)
    ax.set_yscale("log")
    ax.set(title="the symbol's imprint: max over units of |state(symbol 8) - state(symbol 7)|", xlabel="t", ylabel="difference")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
