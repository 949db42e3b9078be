"""The linear recurrence h_t = a_t * h_{t-1} + b_t, step by step and as a parallel scan, and what
every cell that came after the chapter's shares.

    rnnlab train configs/copy_mingru.yaml                              # the scan (implementation: fused)
    rnnlab train configs/copy_mingru.yaml model.implementation=reference   # step by step, gates recorded

minGRU, minLSTM and the LRU compute their gates from the input alone, so the only thing that links
step t to step t-1 is an element-wise linear map. Its T steps then compose like matrices do:
(a2, b2) after (a1, b1) is (a2 a1, a2 b1 + b2). That composition is associative, so all prefixes
come out of log2(T) rounds in which every step combines with the one 1, 2, 4, ... places before it
(Hillis & Steele 1986; Blelloch 1990). Each round is a whole-tensor operation, which is why these
cells train in parallel over time where the LSTM must walk its steps one by one. Complex a_t and b_t
(the LRU) work the same way. tests/test_modern_cells.py checks scan = steps to 1e-10 in float64.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["linear_scan", "linear_steps", "ModernRecurrent"]


def linear_steps(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """(T, B, H) coefficients, (B, H) start -> (T, B, H) states, one step at a time."""
    out, h = [], h0
    for t in range(a.size(0)):
        h = a[t] * h + b[t]  # h_t = a_t * h_{t-1} + b_t
        out.append(h)
    return torch.stack(out, 0)


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """The same states as `linear_steps`, in ceil(log2 T) whole-sequence rounds."""
    b = torch.cat([(a[0] * h0 + b[0]).unsqueeze(0), b[1:]], 0)  # fold h_0 into the first step
    a = torch.cat([torch.zeros_like(a[:1]), a[1:]], 0)  # ... after which nothing comes before it
    d, T = 1, a.size(0)
    while d < T:
        # Step t takes in the composition ending d steps before it: (a_t, b_t) o (a_{t-d}, b_{t-d}).
        b = torch.cat([b[:d], a[d:] * b[:-d] + b[d:]], 0)
        a = torch.cat([a[:d], a[d:] * a[:-d]], 0)
        d *= 2
    return b


class ModernRecurrent(nn.Module):
    """A single-layer, single-direction, time-major recurrent layer, shaped like the nn.RNN
    modules RecurrentNet builds: forward(x (T, B, F)) -> (output (T, B, H), h_n (1, B, H)).

    `parallel` picks the scan (implementation: fused) or the step-by-step form (reference), which
    alone records its activations: `record = True`, then `recorded[name]` is (B, T, H) after a
    forward, for `rnnlab inspect`. Subclasses name them in RECORDED and implement `_run`.
    """

    num_layers = 1
    bidirectional = False
    proj_size = 0
    RECORDED: tuple[str, ...] = ("hidden",)
    PARALLEL = False  # whether the cell has a scan form at all

    def __init__(self, input_size: int, hidden_size: int, *, parallel: bool = True):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.parallel = parallel and self.PARALLEL
        self.record = False
        self.recorded: dict[str, torch.Tensor] = {}

    def param_count(self) -> int:
        """Free parameters, the chapter's way: every weight and bias once."""
        return sum(p.numel() * (2 if p.is_complex() else 1) for p in self.parameters())

    def gate_init(self, scheme: str, forget_bias: float, t_max: int) -> None:
        """model.init for this cell; cells without a gate to bias ignore it."""

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None):
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected (T, B, {self.input_size}), got {tuple(x.shape)}")
        h0 = x.new_zeros(x.size(1), self.hidden_size) if hx is None else hx[0]
        acts = self._run(x, h0)
        self.recorded = {n: acts[n].detach().transpose(0, 1) for n in self.RECORDED} if self.record else {}
        out = acts["hidden"]
        return out, out[-1].unsqueeze(0)

    def _run(self, x: torch.Tensor, h0: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _linear(self, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        return linear_scan(a, b, h0) if self.parallel else linear_steps(a, b, h0)
