"""The Linear Recurrent Unit (Orvieto et al., ICML 2023, "Resurrecting Recurrent Neural Networks for
Long Sequences"): a diagonal, complex, linear recurrence with an exponential parameterisation.

    rnnlab train configs/copy_lru.yaml
    rnnlab compare lstm lru --task copy --seq-len 1000

With N = H complex state units:
    lambda_j = exp(-exp(nu_j) + i exp(theta_j))       |lambda_j| < 1 for any nu: stable by construction
    gamma_j  = exp(gamma_log_j), at init sqrt(1 - |lambda_j|^2)   keeps the state's scale at the input's
    x_t = lambda * x_{t-1} + gamma * (B u_t)          B complex (N, F): one parallel scan over t
    y_t = Re(C x_t) + D u_t                           C complex (H, N), D real (H, F)

The recurrence is linear: what makes the network nonlinear is what reads y_t (the head here; an
MLP between layers in the paper). Initialisation as the paper's: |lambda| uniform on the ring
[r_min, r_max] = [0.9, 0.999] (memories of 10 to 1,000 steps), phases in [0, pi/10].
Parameters: 2 N F (B) + 2 H N (C) + H F (D) + 3 N, complex numbers counted as two.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .scan import ModernRecurrent, linear_recurrence, linear_steps, log_scan

__all__ = ["LRU"]

R_MIN, R_MAX, MAX_PHASE = 0.9, 0.999, math.pi / 10


class LRU(ModernRecurrent):
    RECORDED = ("state_modulus", "hidden")
    PARALLEL = True

    def __init__(self, input_size: int, hidden_size: int, *, parallel: bool = True):
        super().__init__(input_size, hidden_size, parallel=parallel)
        N, H, Fi = hidden_size, hidden_size, input_size
        u1, u2 = torch.rand(N), torch.rand(N)
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(u1 * (R_MAX**2 - R_MIN**2) + R_MIN**2)))
        self.theta_log = nn.Parameter(torch.log(MAX_PHASE * u2 + 1e-8))
        modulus = torch.exp(-torch.exp(self.nu_log.detach()))
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - modulus**2)))
        # Complex matrices as (real, imaginary) pairs: optimisers and checkpoints stay real.
        self.B = nn.Parameter(torch.randn(2, N, Fi) / math.sqrt(2 * Fi))
        self.C = nn.Parameter(torch.randn(2, H, N) / math.sqrt(N))
        self.D = nn.Parameter(torch.randn(H, Fi) / math.sqrt(Fi))

    def eigenvalues(self) -> torch.Tensor:
        """lambda, (N,) complex."""
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def _run(self, x: torch.Tensor, h0: torch.Tensor) -> dict[str, torch.Tensor]:
        work = torch.float64 if x.dtype == torch.float64 else torch.float32  # bf16 has no complex type
        cdtype = torch.complex128 if work == torch.float64 else torch.complex64
        xw = x.to(work)
        B = torch.complex(self.B[0], self.B[1]).to(cdtype) * torch.exp(self.gamma_log).to(cdtype).unsqueeze(1)
        bu = xw.to(cdtype) @ B.t()  # (T, B, N): gamma * (B u_t)
        if self.parallel and x.device.type == "cpu" and not self.log_space:  # the loop of in-place kernels (models/scan.py)
            lam = self.eigenvalues().to(cdtype)
            state = linear_recurrence(lam.expand_as(bu), bu, bu.new_zeros(bu.shape[1:]))
        elif self.parallel:
            # lambda^(t-k) = r^(t-k) e^(i theta (t-k)): turn each b_k back by theta k, scan its real and
            # imaginary parts with the real decay r, turn the states forward by theta t.
            T = x.size(0)
            angle = torch.arange(T, dtype=torch.float64, device=x.device).unsqueeze(1) * torch.exp(self.theta_log).double()
            turn = torch.polar(torch.ones_like(angle), angle).to(cdtype).unsqueeze(1)  # (T, 1, N): e^(i theta t)
            b = bu * turn.conj()
            log_r = (-torch.exp(self.nu_log)).to(work).expand_as(b.real)
            zero = b.real.new_zeros(b.shape[1:])
            state = torch.complex(log_scan(log_r, b.real, zero), log_scan(log_r, b.imag, zero)) * turn
        else:
            lam = self.eigenvalues().to(cdtype)
            state = linear_steps(lam.expand_as(bu), bu, bu.new_zeros(bu.shape[1:]))  # x_t = lambda x_{t-1} + b_t
        C = torch.complex(self.C[0], self.C[1]).to(cdtype)
        y = (state @ C.t()).real + F.linear(xw, self.D.to(work))  # y_t = Re(C x_t) + D u_t
        return {"state_modulus": state.abs().to(x.dtype), "hidden": y.to(x.dtype)}
