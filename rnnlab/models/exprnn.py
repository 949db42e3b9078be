"""expRNN (Lezcano-Casado & Martinez-Rubio, ICML 2019, "Cheap Orthogonal Constraints in Neural
Networks"): the recurrent matrix is the exponential of a skew-symmetric one, so it is orthogonal
at every step of training, and the state's norm neither explodes nor vanishes through it.

    rnnlab train configs/copy_exprnn.yaml
    rnnlab compare lstm exprnn --task copy --seq-len 1000

    A   = S - S^T                    S: the H (H - 1) / 2 entries above the diagonal, the parameters
    W   = exp(A)                     orthogonal: W^T W = I (torch.linalg.matrix_exp, once a forward)
    h_t = modrelu(V x_t + W h_{t-1}, b),   modrelu(z, b) = sign(z) * relu(|z| + b)

Initialisation: the paper's "Henaff" init, 2 x 2 rotation blocks of angles ~ U(-pi, pi) on the
diagonal of A. The paper trains with RMSprop, lr 1e-4 on S and 1e-3 elsewhere (copy task); here
one learning rate serves all (configs/copy_exprnn.yaml). Parameters: H F + H (H - 1) / 2 + H.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .scan import ModernRecurrent

__all__ = ["ExpRNN"]


class ExpRNN(ModernRecurrent):
    def __init__(self, input_size: int, hidden_size: int, *, parallel: bool = True):
        super().__init__(input_size, hidden_size, parallel=parallel)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(H, input_size))
        nn.init.kaiming_normal_(self.weight_ih, nonlinearity="relu")
        rows, cols = torch.triu_indices(H, H, offset=1)
        self.register_buffer("_rows", rows, persistent=False)
        self.register_buffer("_cols", cols, persistent=False)
        skew = torch.zeros(rows.numel())
        pairs = (rows % 2 == 0) & (cols == rows + 1)  # the 2 x 2 blocks (0,1), (2,3), ...
        skew[pairs] = torch.empty(int(pairs.sum())).uniform_(-math.pi, math.pi)
        self.skew = nn.Parameter(skew)
        self.bias = nn.Parameter(torch.empty(H).uniform_(-0.01, 0.01))  # modrelu's

    def recurrent_matrix(self) -> torch.Tensor:
        H = self.hidden_size
        S = self.skew.new_zeros(H, H).index_put((self._rows, self._cols), self.skew)
        return torch.linalg.matrix_exp(S - S.t())  # (H, H), orthogonal

    def _run(self, x: torch.Tensor, h0: torch.Tensor) -> dict[str, torch.Tensor]:
        W = self.recurrent_matrix().to(x.dtype)
        xw = F.linear(x, self.weight_ih)
        out, h = [], h0
        for xw_t in xw.unbind(0):  # unbind: one gradient tensor for xw, not one per step
            z = xw_t + h @ W.t()
            h = torch.sign(z) * torch.relu(z.abs() + self.bias)  # modrelu
            out.append(h)
        return {"hidden": torch.stack(out, 0)}
