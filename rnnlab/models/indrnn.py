"""IndRNN (Li et al., CVPR 2018, "Independently Recurrent Neural Network"): every unit keeps its own
state, so the recurrence is element-wise and a ReLU does not explode or vanish it.

    rnnlab train configs/copy_indrnn.yaml
    rnnlab compare rnn indrnn --task adding --seq-len 1000

    h_t = relu(W x_t + u * h_{t-1} + b)         u (H,): one recurrent weight per unit

The gradient through T steps of one unit is the product of u and of the ReLU's 0/1 slopes, so a
unit with u near 1 carries its value, and its gradient, across long lags; the paper keeps
|u| <= 2^(1/T) for that, and initialises u ~ U(0, 1). Parameters: H F + 2 H (the vanilla RNN:
H F + H H + 2 H). There is no parallel form: the ReLU sits inside the recurrence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .scan import ModernRecurrent

__all__ = ["IndRNN"]


class IndRNN(ModernRecurrent):
    def __init__(self, input_size: int, hidden_size: int, *, parallel: bool = True):
        super().__init__(input_size, hidden_size, parallel=parallel)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.recurrent = nn.Parameter(torch.empty(hidden_size).uniform_(0.0, 1.0))
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        nn.init.uniform_(self.weight_ih, -1.0 / math.sqrt(input_size), 1.0 / math.sqrt(input_size))

    @torch.no_grad()
    def gate_init(self, scheme: str, forget_bias: float, t_max: int) -> None:
        if scheme == "chrono":  # the paper's long-memory init: some units close to 1 (lag up to T_max)
            self.recurrent.uniform_(0.0, 2.0 ** (1.0 / max(t_max, 1)))

    def _run(self, x: torch.Tensor, h0: torch.Tensor) -> dict[str, torch.Tensor]:
        xw = F.linear(x, self.weight_ih, self.bias)  # (T, B, H): one matmul for all steps
        out, h = [], h0
        for xw_t in xw.unbind(0):  # unbind: one gradient tensor for xw, not one per step
            h = torch.relu(xw_t + self.recurrent * h)  # h_t = relu(W x_t + u * h_{t-1} + b)
            out.append(h)
        return {"hidden": torch.stack(out, 0)}
