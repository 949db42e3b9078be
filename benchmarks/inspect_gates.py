"""What the gates do on long_dependency at T = 100: the chrono LSTM, the default-init LSTM and the GRU,
each trained by `rnnlab train` and read by `rnnlab inspect` on two test examples with different
symbols (examples 0 and 1). The experiment `inspect_gates` (docs/cells.md) runs it.

    python benchmarks/inspect_gates.py [--out DIR]

Prints ROW.KEY=value per model (ROW: lstm_chrono, lstm_default, gru):
  test_accuracy            the run's test accuracy
  keep_gate_mean           the keep gate (LSTM forget gate, GRU update gate) over units and steps, example 0
  keep_share_above_0_9     the share of (unit, step) values above 0.9
  units_keep_above_0_9     units whose keep gate stays above 0.9 at every step after t = 0
  carriers_keep_gate_mean  the keep gate of the 4 steadiest units (inspect's memory carriers)
  imprint_tN               how much of the symbol is left at step N: the largest difference, over the
                           units, between the two examples' states (LSTM: cell, GRU: hidden)
and writes the heat maps, the memory-carrier plots and imprint.png into --out (default
$RNNLAB_ARTIFACT_DIR, which `rnnlab reproduce` sets to the artifact's files/).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# row -> (label, config and overrides, state, keep gate)
MODELS = {
    "lstm_chrono": ("LSTM, chrono init (cell state)", ["configs/long_dependency_lstm.yaml"], "cell", "forget_gate"),
    "lstm_default": ("LSTM, default init (cell state)", ["configs/long_dependency_lstm.yaml", "model.init=default"], "cell", "forget_gate"),
    "gru": ("GRU, update-gate bias 3 (hidden state)", ["configs/long_dependency_gru.yaml"], "hidden", "update_gate"),
}  # fmt: skip
SEQ_LEN = 100
IMPRINT_STEPS = (0, 10, 20, 50, SEQ_LEN - 1)


def rnnlab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "rnnlab", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def train_and_inspect(row: str, spec: list[str], runs: Path) -> tuple[dict, list[Path]]:
    rnnlab("train", *spec, f"task.seq_len={SEQ_LEN}", f"name={row}", "--runs-dir", str(runs), "--no-progress")
    run = sorted(runs.glob(f"*-{row}"))[-1]
    for example in (0, 1):
        rnnlab("inspect", str(run), "--split", "test", "--example", str(example))
    outs = [sorted((run / "inspect").glob(f"*-test-example{i}"))[-1] for i in (0, 1)]
    return json.loads((run / "summary.json").read_text()), outs


def figures(row: str, summary: dict, outs: list[Path], state: str, keep: str) -> tuple[dict[str, float], np.ndarray]:
    inspected = json.loads((outs[0] / "summary.json").read_text())
    with np.load(outs[0] / "gates.npz") as a, np.load(outs[1] / "gates.npz") as b:
        gate = a[f"layer0.forward.{keep}"]
        imprint = np.abs(a[f"layer0.forward.{state}"] - b[f"layer0.forward.{state}"]).max(axis=1)
    carriers = inspected["memory_carriers"]["layer0.forward"]
    found = {
        "test_accuracy": summary["test"]["accuracy"],
        "keep_gate_mean": inspected["gates"][f"layer0.forward.{keep}"]["mean"],
        "keep_share_above_0_9": inspected["gates"][f"layer0.forward.{keep}"]["above_0.9"],
        "units_keep_above_0_9": int((gate[1:] > 0.9).all(axis=0).sum()),
        "carriers_keep_gate_mean": float(np.mean(carriers["keep_gate_mean"])),
        **{f"imprint_t{t}": float(imprint[t]) for t in IMPRINT_STEPS},
    }
    return {f"{row}.{k}": float(v) for k, v in found.items()}, imprint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=os.environ.get("RNNLAB_ARTIFACT_DIR"), help="where the plots go")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="inspect_gates-"))
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    with tempfile.TemporaryDirectory(prefix="inspect_gates-runs-") as tmp:
        for row, (label, spec, state, keep) in MODELS.items():
            summary, outs = train_and_inspect(row, spec, Path(tmp))
            found, imprint = figures(row, summary, outs, state, keep)
            for key, value in found.items():
                print(f"{key}={value:.6g}")
            for plot in (f"heatmap_{keep}.png", f"heatmap_{state}.png", "memory_carriers.png"):
                shutil.copyfile(outs[0] / plot, out / f"{row}_{plot}")
            ax.plot(np.maximum(imprint, 1e-12), label=label, linewidth=1.6)
    ax.set_yscale("log")
    ax.set(title="the symbol's imprint: max over units of |state(example 0) - state(example 1)|", xlabel="t", ylabel="difference")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "imprint.png")
    print(f"plots in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
