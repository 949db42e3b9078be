"""Does an exported run answer as the run does? rnnlab's own float32 forward pass against
onnxruntime on the exported model, on the docs' example reviews (issue 31).

    rnnlab train configs/imdb_bilstm.yaml task.data_path=../shared/data/aclImdb_v1.tar.gz
    rnnlab export runs/imdb_bilstm --format onnx
    python benchmarks/export_check.py runs/imdb_bilstm

The texts are encoded once by the run's task (its vocabulary and truncation) and given to both.
Prints each text's label and probability from both, and ends with `same_labels=` (1 or 0) and
`max_abs_diff_probability=`. The export is float32; rnnlab's own answer here is float32 too (a run
with precision auto evaluates in bf16 where the CPU has it, which moves probabilities by ~1e-3).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

TEXTS = [
    "great movie",
    "terrible film, a waste of time",
    "a wonderful, moving film",
    "two hours I will never get back",
    "The acting was wooden and the plot made no sense, but the music was lovely.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--onnx", type=Path, help="default: RUN/export/onnx/model.onnx")
    args = parser.parse_args()
    import onnxruntime as ort

    from rnnlab.engine import load_run_model
    from rnnlab.rundir import resolve_run

    run = resolve_run(args.run)
    onnx_path = args.onnx or run / "export" / "onnx" / "model.onnx"
    cfg, task, model, _ = load_run_model(run, torch.device("cpu"))
    model = model.float().eval()
    batch, _ = task.encode_texts(TEXTS)
    with torch.no_grad():
        ours = model(batch.inputs, batch.lengths).float().softmax(-1).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"tokens": batch.inputs.numpy().astype(np.int64), "lengths": batch.lengths.numpy().astype(np.int64)})[0]
    theirs = torch.from_numpy(logits).softmax(-1).numpy()
    print(f"run {run} ({cfg.model.name}, {cfg.train.precision}); export {onnx_path}")
    print(f"{'text':60} {'rnnlab fp32':>16} {'onnxruntime':>16}")
    for text, a, b in zip(TEXTS, ours, theirs):
        la, lb = task.labels[int(a.argmax())], task.labels[int(b.argmax())]
        print(f"{text[:60]:60} {la:>5} {a.max():10.6f} {lb:>5} {b.max():10.6f}")
    print(f"same_labels={int((ours.argmax(1) == theirs.argmax(1)).all())}")
    print(f"max_abs_diff_probability={float(np.abs(ours - theirs).max()):.2e}")
    sys.exit(0 if (ours.argmax(1) == theirs.argmax(1)).all() and np.abs(ours - theirs).max() <= 1e-4 else 1)


if __name__ == "__main__":
    main()
