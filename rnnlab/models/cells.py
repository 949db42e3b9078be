"""Readable vanilla RNN, LSTM and GRU, written one time step at a time, equal to PyTorch's kernels.

    rnnlab train configs/long_dependency_lstm.yaml model.implementation=reference

`ReferenceRecurrent(mode, input_size, hidden_size)` is a drop-in replacement for a single-layer,
single-direction `nn.RNN(nonlinearity="tanh")`, `nn.LSTM` or `nn.GRU` (batch_first, or time-major
with `batch_first=False` as RecurrentNet builds both kinds): same parameter
names, shapes and gate layout (so state dicts load both ways), same initial weights from the same
seed, same outputs and gradients (tests/test_cells.py checks all of it to 1e-10 in float64). In
float32 it does PyTorch's own CPU arithmetic in the same order, so results agree to the last bit or
nearly; nn.LSTM runs on oneDNN on the CPU by default, whose rounding differs (~1e-7), and over a
whole training run such differences grow (docs/cells.md: "Training on the reference cells").

The chapter writes each gate with one matrix on the concatenation [h_{t-1}, x_t] and one bias:
    f_t = sigma(W_f [h_{t-1}, x_t] + b_f)
PyTorch splits that matrix in two, W_f [h, x] = W_if x + W_hf h, and keeps two biases (b_if + b_hf,
only their sum matters), and stacks the gates' rows into one matrix:
    weight_ih_l0 (G*H, F), weight_hh_l0 (G*H, H), bias_ih_l0 (G*H,), bias_hh_l0 (G*H,)
with G gate blocks in this row order: rnn 1 (h); lstm 4 (i, f, g = C~, o); gru 3 (r, z, n = h~).

Recording: set `module.record = True` (or pass `record=True` to the constructor); every forward then
fills `module.recorded` with one detached (B, T, H) tensor per activation (batch first whatever the
input's layout), named in `RECORDED`.
A forward with recording off leaves `module.recorded` empty, so it never holds stale steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BLOCK_NAMES", "GATE_BLOCKS", "RECORDED", "ReferenceRecurrent", "gate_blocks", "param_count"]

# The row blocks of weight_ih_l0 / weight_hh_l0 / the biases, in PyTorch's order.
BLOCK_NAMES: dict[str, tuple[str, ...]] = {
    "rnn": ("hidden",),
    "lstm": ("input_gate", "forget_gate", "candidate", "output_gate"),
    "gru": ("reset_gate", "update_gate", "candidate"),
}
GATE_BLOCKS: dict[str, int] = {mode: len(names) for mode, names in BLOCK_NAMES.items()}

RECORDED: dict[str, tuple[str, ...]] = {
    "rnn": ("hidden",),
    "lstm": ("input_gate", "forget_gate", "candidate", "cell", "output_gate", "hidden"),
    "gru": ("reset_gate", "update_gate", "candidate", "hidden"),
}


def gate_blocks(mode: str) -> int:
    """How many (H, F + H) blocks a cell's weights hold: rnn 1, lstm 4, gru 3."""
    if mode not in GATE_BLOCKS:
        raise ValueError(f"mode must be one of {sorted(GATE_BLOCKS)}, got {mode!r}")
    return GATE_BLOCKS[mode]


def param_count(mode: str, input_size: int, hidden_size: int, bias: bool = True) -> int:
    """G * H * (F + H) weights, plus 2 * G * H biases (PyTorch keeps b_ih and b_hh).

    So a GRU has exactly 3/4 of an LSTM's parameters, the chapter's "about 75%".
    """
    g, h = gate_blocks(mode), hidden_size
    return g * h * (input_size + h) + (2 * g * h if bias else 0)


# One step of each cell. `xw` = W_ih x_t + b_ih (precomputed for all steps), `hw` = W_hh h_{t-1} + b_hh,
# both (B, G*H). Each returns its named activations; "hidden" (and "cell") are the new state.


def _rnn_step(xw: torch.Tensor, hw: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None) -> dict:
    # h_t = tanh(W [h_{t-1}, x_t] + b)
    return {"hidden": torch.tanh(xw + hw)}


def _lstm_step(xw: torch.Tensor, hw: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None) -> dict:
    i_x, f_x, g_x, o_x = xw.chunk(4, dim=1)  # PyTorch's row order: i, f, g, o
    i_h, f_h, g_h, o_h = hw.chunk(4, dim=1)
    f_t = torch.sigmoid(f_x + f_h)  # f_t = sigma(W_f [h_{t-1}, x_t] + b_f)   forget gate
    i_t = torch.sigmoid(i_x + i_h)  # i_t = sigma(W_i [h_{t-1}, x_t] + b_i)   input gate
    C_tilde = torch.tanh(g_x + g_h)  # C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)   candidate
    C_t = f_t * c + i_t * C_tilde  # C_t = f_t * C_{t-1} + i_t * C~_t   the additive path gradients survive on
    o_t = torch.sigmoid(o_x + o_h)  # o_t = sigma(W_o [h_{t-1}, x_t] + b_o)   output gate
    h_t = o_t * torch.tanh(C_t)  # h_t = o_t * tanh(C_t)
    return {
        "input_gate": i_t, "forget_gate": f_t, "candidate": C_tilde, "cell": C_t, "output_gate": o_t, "hidden": h_t
    }


def _gru_step(xw: torch.Tensor, hw: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None) -> dict:
    r_x, z_x, n_x = xw.chunk(3, dim=1)  # PyTorch's row order: r, z, n
    r_h, z_h, n_h = hw.chunk(3, dim=1)
    r_t = torch.sigmoid(r_x + r_h)  # r_t = sigma(W_r [h_{t-1}, x_t] + b_r)   reset gate
    z_t = torch.sigmoid(z_x + z_h)  # z_t = sigma(W_z [h_{t-1}, x_t] + b_z)   update gate
    # The chapter resets before the matrix, h~_t = tanh(W_h [r_t * h_{t-1}, x_t] + b_h); PyTorch (and
    # cuDNN) reset after it, so that W_hh h_{t-1} stays one matmul for all three gates:
    h_tilde = torch.tanh(n_x + r_t * n_h)  # h~_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    # The chapter's z_t weights the new state, h_t = (1 - z_t) h_{t-1} + z_t h~_t; PyTorch's z_t weights
    # the old one (its z_t is the chapter's 1 - z_t). We follow PyTorch, so that weights load as they are.
    # h_t = (1 - z_t) * h~_t + z_t * h_{t-1}, in the order PyTorch's CPU kernel computes it (same rounding):
    h_t = h_tilde + z_t * (h - h_tilde)
    return {"reset_gate": r_t, "update_gate": z_t, "candidate": h_tilde, "hidden": h_t}


_STEPS = {"rnn": _rnn_step, "lstm": _lstm_step, "gru": _gru_step}


class ReferenceRecurrent(nn.Module):
    """A single-layer nn.RNN (tanh) / nn.LSTM / nn.GRU in plain tensor operations.

    forward(x, hx=None) returns, exactly like the nn module, with x (B, T, F) (batch_first, the
    default) or (T, B, F) (batch_first=False), and output in the same layout:
        rnn, gru: (output, h_n (1, B, H));  hx = h_0 (1, B, H)
        lstm:     (output, (h_n, c_n));     hx = (h_0, c_0)
    A missing hx means zeros, as in PyTorch.
    """

    # Read by code written for nn.RNNBase; only this one configuration is implemented.
    num_layers = 1
    bidirectional = False
    dropout = 0.0
    proj_size = 0

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        record: bool = False,
        batch_first: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        gates = gate_blocks(mode)
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        self.mode, self.input_size, self.hidden_size, self.bias = mode, input_size, hidden_size, bias
        self.batch_first = batch_first
        if mode == "rnn":
            self.nonlinearity = "tanh"
        self.record = record
        self.recorded: dict[str, torch.Tensor] = {}
        kw = {"device": device, "dtype": dtype}
        # Registered in nn.RNNBase's order, so reset_parameters() draws the same numbers from the same seed.
        self.weight_ih_l0 = nn.Parameter(torch.empty(gates * hidden_size, input_size, **kw))
        self.weight_hh_l0 = nn.Parameter(torch.empty(gates * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih_l0 = nn.Parameter(torch.empty(gates * hidden_size, **kw))
            self.bias_hh_l0 = nn.Parameter(torch.empty(gates * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih_l0", None)
            self.register_parameter("bias_hh_l0", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.mode}, {self.input_size}, {self.hidden_size}, bias={self.bias}, batch_first={self.batch_first}"

    def _initial_state(self, x: torch.Tensor, hx) -> tuple[torch.Tensor, torch.Tensor | None]:
        shape = (1, x.size(0 if self.batch_first else 1), self.hidden_size)
        if hx is None:
            zeros = x.new_zeros(shape[1:])
            return zeros, (zeros if self.mode == "lstm" else None)
        if self.mode == "lstm" and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise RuntimeError("lstm: hx must be a tuple (h_0, c_0)")
        states = tuple(hx) if self.mode == "lstm" else (hx,)
        for s in states:
            if tuple(s.shape) != shape:
                raise RuntimeError(f"Expected hidden size {shape}, got {tuple(s.shape)}")
        return states[0][0], (states[1][0] if self.mode == "lstm" else None)

    def forward(self, x: torch.Tensor, hx=None):
        layout = "(B, T, F)" if self.batch_first else "(T, B, F)"
        if x.dim() != 3:
            raise ValueError(f"{self.mode}: expected input {layout}, got shape {tuple(x.shape)}")
        if x.size(-1) != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size {self.input_size}, got {x.size(-1)}")
        if x.size(1 if self.batch_first else 0) == 0:
            raise ValueError(f"{self.mode}: the sequence needs at least one time step")
        h, c = self._initial_state(x, hx)
        step = _STEPS[self.mode]
        # W_ih x_t + b_ih does not depend on h_{t-1}: one matmul for all steps instead of T small ones,
        # time-major as PyTorch's own CPU kernel lays it out, so that the gradients are summed in its order too.
        xw = F.linear(x.transpose(0, 1) if self.batch_first else x, self.weight_ih_l0, self.bias_ih_l0)  # (T, B, G*H)
        outputs: list[torch.Tensor] = []
        steps: dict[str, list[torch.Tensor]] = {name: [] for name in RECORDED[self.mode]} if self.record else {}
        for t in range(xw.size(0)):
            hw = F.linear(h, self.weight_hh_l0, self.bias_hh_l0)  # (B, G*H); the only recurrent matmul
            acts = step(xw[t], hw, h, c)
            h, c = acts["hidden"], acts.get("cell")
            outputs.append(h)
            for name, values in steps.items():
                values.append(acts[name].detach())
        self.recorded = {name: torch.stack(values, dim=1) for name, values in steps.items()}
        output = torch.stack(outputs, dim=1 if self.batch_first else 0)  # (B, T, H) or (T, B, H)
        if self.mode == "lstm":
            return output, (h.unsqueeze(0), c.unsqueeze(0))
        return output, h.unsqueeze(0)
