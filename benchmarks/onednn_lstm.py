"""Why `model.implementation=fused` and `reference` LSTMs part after many steps on a CPU, and why
rnnlab keeps oneDNN on anyway: nn.LSTM's training step with PyTorch's oneDNN (mkldnn) kernels,
with them turned off (PyTorch's native kernel, whose arithmetic the reference cell repeats
operation by operation), and the reference cell itself (at the long-dependency sizes), side by side, alternating.

    OMP_NUM_THREADS=1 python benchmarks/onednn_lstm.py

One forward and backward pass of a single-layer LSTM in fp32, per shape: the long-dependency
configs' (hidden 32, one-hot input of 10, batch 32, T = 50 and 100), the copy task's (hidden 128,
batch 64, T = 120) and one direction of the IMDb flagship's (embedding 128, hidden 128, batch
256, T = 258). Each path runs `--reps` passes per round, `--rounds` rounds alternate the paths,
and the medians are reported. Also the largest difference between oneDNN's and the native
kernel's outputs: the rounding that 1,500 Adam steps amplify. Last line: `native_over_onednn=`
at the long-dependency size.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnlab.models.cells import ReferenceRecurrent

SHAPES = [  # (label, input, hidden, T, batch)
    ("long dependency, T = 50", 10, 32, 50, 32),
    ("long dependency, T = 100", 10, 32, 100, 32),
    ("copy task, T = 100", 10, 128, 120, 64),
    ("IMDb flagship, one direction", 128, 128, 258, 256),
]


def _step(module: torch.nn.Module, x: torch.Tensor) -> None:
    out, _ = module(x)
    out.sum().backward()


def _ms(module: torch.nn.Module, x: torch.Tensor, reps: int, onednn: bool) -> float:
    with torch.backends.mkldnn.flags(enabled=onednn):
        _step(module, x)  # warm-up: kernel selection, first allocation
        start = time.perf_counter()
        for _ in range(reps):
            _step(module, x)
        return (time.perf_counter() - start) / reps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=10, help="passes per path and round (a tenth for the IMDb shape)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); ms per forward+backward pass, median of {args.rounds} rounds")
    print(f"{'shape':32} {'oneDNN':>8} {'native':>8} {'reference':>10} {'native/oneDNN':>14} {'max |diff|':>11}")
    first_ratio = None
    for label, inp, hidden, steps, batch in SHAPES:
        fused = torch.nn.LSTM(inp, hidden)
        reference = ReferenceRecurrent("lstm", inp, hidden, batch_first=False)
        reference.load_state_dict(fused.state_dict())
        x = torch.randn(steps, batch, inp)
        reps = max(1, args.reps // 10) if batch * steps > 20_000 else args.reps
        times: dict[str, list[float]] = {"onednn": [], "native": [], "reference": []}
        for _ in range(args.rounds):
            times["onednn"].append(_ms(fused, x, reps, True))
            times["native"].append(_ms(fused, x, reps, False))
            if label.startswith("long dependency"):  # elsewhere the step-by-step cell takes minutes
                times["reference"].append(_ms(reference, x, reps, True))
        with torch.no_grad():
            with torch.backends.mkldnn.flags(enabled=True):
                a, _ = fused(x)
            with torch.backends.mkldnn.flags(enabled=False):
                b, _ = fused(x)
        med = {k: statistics.median(v) for k, v in times.items() if v}
        ratio = med["native"] / med["onednn"]
        first_ratio = first_ratio or ratio
        print(f"{label:32} {med['onednn']:8.2f} {med['native']:8.2f} {med.get('reference', float('nan')):10.2f} {ratio:14.2f} {(a - b).abs().max().item():11.1e}")
    print(f"native_over_onednn={first_ratio:.2f}")


if __name__ == "__main__":
    main()
