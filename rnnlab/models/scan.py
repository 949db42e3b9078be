"""The linear recurrence h_t = a_t * h_{t-1} + b_t, step by step and as a parallel scan, and what
every cell that came after the chapter's shares.

    rnnlab train configs/copy_mingru.yaml                                  # the scan (implementation: fused)
    rnnlab train configs/copy_mingru.yaml model.implementation=reference   # step by step, gates recorded

minGRU, minLSTM and the LRU compute their gates from the input alone, so the only thing that links
step t to step t-1 is an element-wise linear map, and the states have a closed form:

    h_t = A_t h_0 + sum_{k <= t} (A_t / A_k) b_k,        A_t = a_1 a_2 ... a_t

In logs, L_t = log A_t is one cumulative sum, and the sum over k is one cumulative log-sum-exp
(Heinsen 2023, "Efficient parallelization of a ubiquitous sequential computation"), the way
Feng et al. train minGRU: two whole-sequence operations instead of T small steps. b_k may be
negative, so its positive and negative parts are summed apart (each plus the same tiny constant,
which keeps every logarithm finite and cancels in the difference). The sums run in float64: with
strongly decaying units L_t reaches -10^3 and more, where float32 would keep only ~4 digits of
L_t + log-sum.

That scan is what a GPU wants. On a CPU, log-sum-exp over a whole sequence costs more than the
recurrence itself (and autograd's backward of T indexed steps is quadratic in T), so
`implementation: fused` there runs `linear_recurrence`: the steps in a loop of in-place kernels,
with a backward written out (G_t = g_t + a_{t+1} G_{t+1}; dL/db_t = G_t, dL/da_t = G_t h_{t-1}), about
as fast per step as the arithmetic allows. tests/test_modern_cells.py checks that the scan, the
loop and the recorded steps agree to 1e-10 in float64.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["log_scan", "linear_recurrence", "linear_steps", "ModernRecurrent"]

_TINY = 1e-30  # added to both parts of b: keeps log() finite, cancels in the difference


def linear_steps(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """(T, B, H) coefficients, (B, H) start -> (T, B, H) states, one step at a time."""
    out, h = [], h0
    for a_t, b_t in zip(a.unbind(0), b.unbind(0)):  # unbind: one gradient tensor, not one per step
        h = a_t * h + b_t  # h_t = a_t * h_{t-1} + b_t
        out.append(h)
    return torch.stack(out, 0)


class _Recurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0):  # type: ignore[override]
        out = torch.empty_like(b)
        h = h0
        for t in range(b.size(0)):
            h = torch.addcmul(b[t], a[t], h, out=out[t])
        ctx.save_for_backward(a, out, h0)
        return out

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        a, out, h0 = ctx.saved_tensors
        a = a.conj()  # complex numbers (the LRU): PyTorch's gradients are conjugate-Wirtinger ones
        G = torch.empty_like(g)  # G_t: everything the loss gets through h_t
        G[-1] = g[-1]
        for t in range(g.size(0) - 2, -1, -1):
            torch.addcmul(g[t], a[t + 1], G[t + 1], out=G[t])
        before = torch.cat([h0.unsqueeze(0), out[:-1]], 0)  # h_{t-1}
        return G * before.conj(), G, G[0] * a[0]


def linear_recurrence(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """The states of `linear_steps`, from a loop of in-place kernels with a hand-written backward."""
    work = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)  # bf16 in: float32 sums; complex stays
    a, b, h0 = a.to(work).expand_as(b).contiguous(), b.to(work).contiguous(), h0.to(work).expand_as(b[0]).contiguous()
    return _Recurrence.apply(a, b, h0)


def log_scan(log_a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """The states of `linear_steps(exp(log_a), b, h0)` for real a_t > 0, in whole-sequence operations."""
    dtype = b.dtype
    L = torch.cumsum(log_a.to(torch.float64), 0)  # (T, B, H): log A_t
    b = b.to(torch.float64)
    pos = torch.logcumsumexp(torch.log(torch.relu(b) + _TINY) - L, 0)
    neg = torch.logcumsumexp(torch.log(torch.relu(-b) + _TINY) - L, 0)
    h = torch.exp(L + pos) - torch.exp(L + neg) + torch.exp(L) * h0.to(torch.float64)
    return h.to(dtype)


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
    log_space = False  # True: the log-space scan on the CPU too (what the GPU runs; the tests check both)

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

    def _linear(self, log_a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """h_t = a_t h_{t-1} + b_t with a_t = exp(log_a_t): the scan, or the steps of the reference."""
        if not self.parallel:
            return linear_steps(torch.exp(log_a), b, h0)
        if b.device.type == "cpu" and not self.log_space:
            return linear_recurrence(torch.exp(log_a), b, h0)
        return log_scan(log_a, b, h0)
