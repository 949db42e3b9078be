"""The figures README's "Inside the cell" states beyond each inspect output's summary.json, read from
the gates.npz of test examples 0 (symbol 8) and 1 (symbol 7) that `rnnlab inspect` wrote into each
run, and (the default-init LSTM's last step) from the run's checkpoints/last.pt.

    python docs/results/inspect_symbol_imprint/analysis.py RUN_LSTM_CHRONO RUN_LSTM_DEFAULT RUN_GRU
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from rnnlab.engine import load_run_model


def arrays(run: Path, example: int) -> dict[str, np.ndarray]:
    out = sorted((run / "inspect").glob(f"*-test-example{example}"))[-1]
    with np.load(out / "gates.npz") as npz:
        return {k.removeprefix("layer0.forward."): npz[k] for k in npz.files}


def keep_gate(run: Path, state: str, keep: str) -> dict:
    a, b = arrays(run, 0), arrays(run, 1)
    k = a[keep][1:]  # after t = 0: from then on the gate has something to keep
    diff = np.abs(a[state] - b[state]).max(axis=1)
    floor = diff[-1]
    return {
        "keep_gate": keep,
        "keep_min": float(a[keep].min()), "keep_max": float(a[keep].max()),
        "units_keep_above_0.9_at_every_step_after_t0": int((k > 0.9).all(axis=0).sum()), "units": int(k.shape[1]),
        "keep_mean_over_units_at_t": {t: float(a[keep][t].mean()) for t in (1, 10, 50, len(diff) - 1)},
        "imprint_shrink_per_step_t1_to_t20": [float((diff[1:21] / diff[:20]).min()), float((diff[1:21] / diff[:20]).max())],
        "imprint_first_t_at_its_final_value": int(np.argmax(diff <= floor)),
    }  # fmt: skip


def last_checkpoint_forget_mean(run: Path) -> dict:
    cfg, task, model, ckpt = load_run_model(run, torch.device("cpu"), "last")
    model.use_implementation("reference").set_recording(True)
    batch = next(iter(task.eval_batches("test")))
    with torch.no_grad():
        model(batch.inputs[:1])
    return {"step": ckpt.get("step"), "forget_gate_mean": float(model.recorded()[(0, "forward")]["forget_gate"].mean())}


def main() -> None:
    chrono, default, gru = (Path(r) for r in sys.argv[1:4])
    out = {
        "lstm_chrono": {"run": str(chrono), **keep_gate(chrono, "cell", "forget_gate")},
        "lstm_default": {"run": str(default), **keep_gate(default, "cell", "forget_gate"), "last_checkpoint": last_checkpoint_forget_mean(default)},
        "gru": {"run": str(gru), **keep_gate(gru, "hidden", "update_gate")},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
