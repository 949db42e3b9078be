"""minGRU and minLSTM (Feng et al., 2024, "Were RNNs All We Needed?"): the chapter's gates, computed
from the input alone, so that the whole sequence is one parallel scan.

    rnnlab train configs/copy_mingru.yaml
    rnnlab compare lstm mingru minlstm --task copy --seq-len 100

minGRU (the GRU without its reset gate, and without h_{t-1} inside the gates):
    z_t  = sigma(W_z x_t + b_z)                  update gate
    h~_t = W_h x_t + b_h                         candidate (no tanh: the recurrence stays linear)
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t      = a_t * h_{t-1} + b_t,  a_t = 1 - z_t,  b_t = z_t h~_t

minLSTM (the LSTM without its output gate and cell/hidden split; forget and input normalised so
that the state stays on the scale of the candidates):
    f_t  = sigma(W_f x_t + b_f),  i_t = sigma(W_i x_t + b_i)
    f'_t = f_t / (f_t + i_t),     i'_t = i_t / (f_t + i_t)
    h~_t = W_h x_t + b_h
    h_t  = f'_t * h_{t-1} + i'_t * h~_t

Parameters: minGRU 2 H (F + 1), minLSTM 3 H (F + 1): no H x H matrix at all, against the GRU's
3 H (F + H) + 6 H. model.init=chrono sets the keep gates' biases so that the memories start spread
over 1..T_max steps, as Tallec & Ollivier's chrono init does for the LSTM.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .scan import ModernRecurrent

__all__ = ["MinGRU", "MinLSTM"]


def _rows(blocks: int, input_size: int, hidden_size: int) -> tuple[nn.Parameter, nn.Parameter]:
    """`blocks` stacked (H, F) input matrices and their biases, ~ U(-1/sqrt(H), 1/sqrt(H)) as PyTorch's cells."""
    bound = 1.0 / math.sqrt(hidden_size)
    weight = nn.Parameter(torch.empty(blocks * hidden_size, input_size).uniform_(-bound, bound))
    bias = nn.Parameter(torch.empty(blocks * hidden_size).uniform_(-bound, bound))
    return weight, bias


def _memory_lengths(hidden_size: int, t_max: int) -> torch.Tensor:
    """Chrono's tau per unit, ~ U(1, T_max - 1) + 1: the keep gate is then 1 - 1/tau."""
    return torch.empty(hidden_size).uniform_(1.0, max(float(t_max) - 1.0, 1.0 + 1e-6)) + 1.0


class MinGRU(ModernRecurrent):
    RECORDED = ("update_gate", "candidate", "hidden")
    PARALLEL = True

    def __init__(self, input_size: int, hidden_size: int, *, parallel: bool = True):
        super().__init__(input_size, hidden_size, parallel=parallel)
        self.weight, self.bias = _rows(2, input_size, hidden_size)  # rows: z, h~

    @torch.no_grad()
    def gate_init(self, scheme: str, forget_bias: float, t_max: int) -> None:
        H = self.hidden_size
        if scheme == "forget_bias":  # keep = 1 - z: a positive keep bias is a negative z bias
            self.bias[:H] = -forget_bias
        elif scheme == "chrono":  # keep ~ 1 - 1/tau, tau ~ U(1, T_max): z = 1/tau
            tau = _memory_lengths(H, t_max)
            self.bias[:H] = -torch.log(tau - 1.0)

    def _run(self, x: torch.Tensor, h0: torch.Tensor) -> dict[str, torch.Tensor]:
        z_pre, h_tilde = F.linear(x, self.weight, self.bias).chunk(2, dim=-1)  # (T, B, H) each
        z = torch.sigmoid(z_pre)
        h = self._linear(F.logsigmoid(-z_pre), z * h_tilde, h0)  # log(1 - z_t), exact where z_t rounds to 1
        return {"update_gate": z, "candidate": h_tilde, "hidden": h}


class MinLSTM(ModernRecurrent):
    RECORDED = ("forget_gate", "input_gate", "candidate", "hidden")
    PARALLEL = True

    def __init__(self, input_size: int, hidden_size: int, *, parallel: bool = True):
        super().__init__(input_size, hidden_size, parallel=parallel)
        self.weight, self.bias = _rows(3, input_size, hidden_size)  # rows: f, i, h~

    @torch.no_grad()
    def gate_init(self, scheme: str, forget_bias: float, t_max: int) -> None:
        H = self.hidden_size
        if scheme == "forget_bias":
            self.bias[:H] = forget_bias
        elif scheme == "chrono":  # f' = sigma(b)/(sigma(b) + sigma(-b)) = 1 - 1/tau with b = log(tau - 1)
            tau = _memory_lengths(H, t_max)
            self.bias[:H] = torch.log(tau - 1.0)
            self.bias[H : 2 * H] = -torch.log(tau - 1.0)

    def _run(self, x: torch.Tensor, h0: torch.Tensor) -> dict[str, torch.Tensor]:
        f_pre, i_pre, h_tilde = F.linear(x, self.weight, self.bias).chunk(3, dim=-1)
        log_f, log_i = F.logsigmoid(f_pre), F.logsigmoid(i_pre)
        log_total = torch.logaddexp(log_f, log_i)
        f, i = torch.exp(log_f - log_total), torch.exp(log_i - log_total)  # f' and i'
        h = self._linear(log_f - log_total, i * h_tilde, h0)
        return {"forget_gate": f, "input_gate": i, "candidate": h_tilde, "hidden": h}
