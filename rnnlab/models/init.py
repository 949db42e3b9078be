"""Gate-bias initialisations that decide whether a recurrent net can learn long dependencies.

    rnnlab train configs/long_dependency_lstm.yaml model.init=default   # fails: chance level
    rnnlab train configs/long_dependency_lstm.yaml model.init=chrono    # learns in ~200 steps

PyTorch's gate order: LSTM (input i, forget f, cell g, output o); GRU (reset r, update z, new n),
with h' = (1 - z) * n + z * h, so a large update-gate bias makes a GRU unit keep its state.
Only the sum bias_ih + bias_hh matters; the value goes in bias_ih and the bias_hh slice is zeroed.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["INIT_SCHEMES", "apply_gate_init"]

INIT_SCHEMES = ("default", "forget_bias", "chrono")


def _keep_gate(cell: str, hidden: int) -> tuple[slice, slice | None]:
    """Slice of the gate that keeps the state (LSTM forget, GRU update), and of the input gate."""
    if cell == "lstm":
        return slice(hidden, 2 * hidden), slice(0, hidden)
    return slice(hidden, 2 * hidden), None  # gru: z


@torch.no_grad()
def apply_gate_init(modules: list[nn.RNNBase], cell: str, scheme: str, forget_bias: float, t_max: int) -> None:
    if scheme == "default" or cell == "rnn":  # a vanilla RNN has no gates to bias
        return
    for module in modules:
        hidden = module.hidden_size
        for layer in range(module.num_layers):
            b_ih = getattr(module, f"bias_ih_l{layer}")
            b_hh = getattr(module, f"bias_hh_l{layer}")
            keep, inp = _keep_gate(cell, hidden)
            if scheme == "forget_bias":
                b_ih[keep] = forget_bias
                b_hh[keep] = 0.0
            elif scheme == "chrono":
                # Tallec & Ollivier (2018): b_f ~ log U(1, T_max - 1), b_i = -b_f. A GRU gets the
                # same law on its update gate z (its input weight 1 - z is tied to it already), so
                # LSTM and GRU configs can share one init rule (issue 27).
                upper = max(float(t_max) - 1.0, 1.0 + 1e-6)
                bias = torch.log(torch.empty(hidden).uniform_(1.0, upper))
                b_ih[keep] = bias
                b_hh[keep] = 0.0
                if inp is not None:
                    b_ih[inp] = -bias
                    b_hh[inp] = 0.0
            else:  # pragma: no cover - the config validator only lets known schemes through
                raise ValueError(scheme)

