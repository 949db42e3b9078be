"""One recurrent network on torch.nn.RNN/LSTM/GRU; `rnn`, `lstm`, `gru`, `bilstm`, `bigru` are thin
builders over it (models/builders.py).

    rnnlab train configs/long_dependency_lstm.yaml model.hidden_size=64
    rnnlab train configs/long_dependency_lstm.yaml model.implementation=reference

`model.implementation` picks the cells: `fused`, PyTorch's kernels, or `reference`, the readable
step-by-step cells of models/cells.py, which can record every gate (`rnnlab inspect`). Both have
the same parameter names, so a checkpoint of one loads into the other.

Exact and fast on padded batches. Sequences are padded at the end, so the forward direction's
outputs at true positions never see padding; its final state is gathered at each sequence's true
last step. The backward direction runs over each sequence reversed *within its own length*
(padding stays at the end), then is reversed back. This equals a PackedSequence run exactly,
while keeping PyTorch's fast padded kernels (packing ran ~7x slower on CPU here).

Inside, every step is time-major, (T, B, features): the layout PyTorch's recurrent kernels work
in, so that token ids are embedded straight into it and no (B, T) <-> (T, B) copy is made around
each layer (6% of the IMDb flagship's training step on CPU). The public methods take and give
batch-first tensors, (B, T, ...), as the rest of rnnlab does.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..config import MAX_SIZE, ModelConfig
from ..contract import ModelSpec
from ..errors import UserError
from .cells import ReferenceRecurrent
from .exprnn import ExpRNN
from .indrnn import IndRNN
from .init import apply_gate_init
from .lru import LRU
from .min_cells import MinGRU, MinLSTM
from .scan import ModernRecurrent

__all__ = ["RecurrentConfig", "RecurrentNet", "FastGRU", "SMALL_GRU_STEP", "reverse_padded", "CELLS", "MODERN_CELLS", "IMPLEMENTATIONS", "DIRECTIONS"]



class _GRUSequence(torch.autograd.Function):
    """One single-layer, single-direction GRU over a whole time-major sequence, with a backward
    pass written out by hand.

    Why: PyTorch's CPU GRU runs its step loop in C++ but records about ten autograd nodes per step,
    and their backward is what made the GRU train 3.45x slower per step than the LSTM (whose
    backward is one oneDNN call; oneDNN's GRU is not reachable from PyTorch: its `mkldnn_rnn_layer`
    refuses any mode but the LSTM). Here the forward is PyTorch's own (so the outputs are
    bit-identical to nn.GRU's), and the backward recomputes every gate for all steps at once
    (nothing in them depends on the step before, given the outputs), then walks back through
    time with two operations per step: one multiply for the five gate gradients and one matrix
    multiply for the gradient that flows to the step before. The weight gradients are one matrix
    multiply each over all steps. Gradients equal nn.GRU's to rounding (1e-15 in float64).
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):  # type: ignore[override]
        weights = [w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
        out, h_n = torch._VF.gru(x, h0.unsqueeze(0), weights, b_ih is not None, 1, 0.0, False, False, False)
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_ih, b_hh, out)
        return out, h_n[0]

    @staticmethod
    def backward(ctx, g_out, g_h):  # type: ignore[override]
        x, h0, w_ih, w_hh, b_ih, b_hh, out = ctx.saved_tensors
        T, B, H = out.shape
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]], 0)  # (T, B, H): h_{t-1} for every t
        xw = F.linear(x, w_ih, b_ih)  # (T, B, 3H), blocks r, z, n
        hw = F.linear(h_prev, w_hh, b_hh)
        rz = torch.sigmoid(xw[..., : 2 * H] + hw[..., : 2 * H])
        r, z, hn = rz[..., :H], rz[..., H:], hw[..., 2 * H :]
        n = torch.tanh(torch.addcmul(xw[..., 2 * H :], r, hn))
        del xw, rz
        # h_t = n + z (h_{t-1} - n), n = tanh(n_x + r hn): with a = dh_t/dn_pre, each gradient below
        # is dh_t times one of these factors. Blocks: n_pre, r_pre, z_pre, hn, and the direct path z.
        a = (1 - z) * (1 - n * n)
        k = torch.stack([a, a * hn * r * (1 - r), (h_prev - n) * z * (1 - z), a * r, z], dim=2)  # (T, B, 5, H)
        del a, n, hw
        # [d r_pre, d z_pre, d hn, dh_t z] @ [W_hh; I] = the gradient reaching h_{t-1} through step t.
        w_back = torch.cat([w_hh, torch.eye(H, dtype=w_hh.dtype, device=w_hh.device)], 0)  # (4H, H)
        g_out = torch.zeros_like(out) if g_out is None else g_out
        dh = out.new_empty(T + 1, B, 1, H)  # dh[t + 1]: the gradient at h_t; dh[0]: at h0
        torch.add(g_out[T - 1], 0 if g_h is None else g_h, out=dh[T, :, 0])
        zero = torch.zeros_like(h0)
        ks, k_back = k.unbind(0), k[:, :, 1:5].reshape(T, B, 4 * H).unbind(0)
        dhs, dh_flat, g_outs = dh.unbind(0), dh.view(T + 1, B, H).unbind(0), g_out.unbind(0)
        for t in range(T - 1, -1, -1):
            torch.mul(dhs[t + 1], ks[t], out=ks[t])  # k[t] now holds the gradients of step t
            torch.addmm(g_outs[t - 1] if t > 0 else zero, k_back[t], w_back, out=dh_flat[t])
        d_x_nrz = k[:, :, 0:3].reshape(T * B, 3 * H)  # gate gradients of W_ih x_t, blocks in the order n, r, z
        d_h = k[:, :, 1:4].reshape(T * B, 3 * H)  # of W_hh h_{t-1}, blocks r, z, n (as W_hh's rows)
        nrz = torch.cat([torch.arange(2 * H, 3 * H), torch.arange(2 * H)]).to(w_ih.device)  # W_ih's rows as n, r, z
        d_x = d_x_nrz.mm(w_ih.index_select(0, nrz)).view_as(x)
        rzn = torch.cat([torch.arange(H, 3 * H), torch.arange(H)]).to(w_ih.device)  # back to r, z, n
        d_w_ih = d_x_nrz.t().mm(x.reshape(T * B, -1)).index_select(0, rzn)
        d_w_hh = d_h.t().mm(h_prev.reshape(T * B, H))
        if b_ih is None:
            return d_x, dh_flat[0], d_w_ih, d_w_hh, None, None
        return d_x, dh_flat[0], d_w_ih, d_w_hh, d_x_nrz.sum(0).index_select(0, rzn), d_h.sum(0)


# The hand-written backward wins where per-operation overhead dominates: batch x hidden up to
# this (CPU time per forward + backward, T = 100, one thread: 1.62x nn.GRU's speed at batch 32 x
# hidden 32, 1.16x at 32 x 64; 0.91x at 64 x 64, 0.75x at 256 x 32, 0.62x at 128 x 128, where its
# whole-sequence temporaries cost more than autograd's per-step nodes).
SMALL_GRU_STEP = 2048


class FastGRU(nn.GRU):
    """nn.GRU whose training on the CPU runs through _GRUSequence when a step is small (batch x
    hidden <= SMALL_GRU_STEP; the quick-start size trains ~1.7x faster, benchmarks/train_speed.py).
    Everything else (larger steps, CUDA's cuDNN, inference, autocast, several layers, packed
    input) is nn.GRU's own forward. Same parameters, so the same state dict.

    `model.fast_gru_backward` turns it on; off (the default) this is nn.GRU. Why off: its gradients
    equal nn.GRU's only to rounding (the weight gradients are summed in another order), and over a
    training of thousands of steps those last bits grow into another trajectory, so a run no longer
    ends where the same run on the reference cells does (test loss 1.79e-4 against 1.86e-4 after
    1,500 steps of long_dependency_gru; with nn.GRU's backward both give 1.8616478517651558e-4).
    rnnlab promises that agreement for the GRU.
    """

    def __init__(self, *args, hand_written_backward: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.hand_written_backward = hand_written_backward

    def forward(self, input, hx=None):  # type: ignore[override]
        if not self._hand_written_backward_applies(input):
            return super().forward(input, hx)
        x = input.transpose(0, 1) if self.batch_first else input
        h0 = x.new_zeros(x.size(1), self.hidden_size) if hx is None else hx[0]
        b_ih, b_hh = (self.bias_ih_l0, self.bias_hh_l0) if self.bias else (None, None)
        out, h_n = _GRUSequence.apply(x, h0, self.weight_ih_l0, self.weight_hh_l0, b_ih, b_hh)
        return (out.transpose(0, 1) if self.batch_first else out), h_n.unsqueeze(0)

    def _hand_written_backward_applies(self, input) -> bool:
        return (
            self.hand_written_backward
            and isinstance(input, torch.Tensor)
            and input.dim() == 3
            and input.size(0 if self.batch_first else 1) * self.hidden_size <= SMALL_GRU_STEP
            and input.device.type == "cpu"
            and input.dtype in (torch.float32, torch.float64)
            and self.weight_hh_l0.dtype == input.dtype
            and torch.is_grad_enabled()
            and (input.requires_grad or self.weight_hh_l0.requires_grad)
            and not torch.is_autocast_enabled("cpu")
            and self.num_layers == 1
            and not self.bidirectional
            and self.proj_size == 0
        )


CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": FastGRU}
# The cells that came after the chapter's, one file each. implementation: fused runs the parallel
# ones (mingru, minlstm, lru) as a scan, reference step by step (and records their activations).
MODERN_CELLS: dict[str, type[ModernRecurrent]] = {
    "mingru": MinGRU, "minlstm": MinLSTM, "lru": LRU, "indrnn": IndRNN, "exprnn": ExpRNN,
}  # fmt: skip
IMPLEMENTATIONS = ("fused", "reference")
DIRECTIONS = ("forward", "backward")


class RecurrentConfig(ModelConfig):
    hidden_size: int = Field(128, ge=1, le=65_536)
    num_layers: int = Field(1, ge=1, le=32)
    dropout: float = Field(0.0, ge=0, lt=1, description="on embeddings, between layers and before the head")
    bidirectional: bool = False
    input: Literal["one_hot", "embedding"] = Field("one_hot", description="how token ids enter the network")
    embedding_dim: int = Field(64, ge=1, le=65_536)
    pooling: Literal["last", "max", "mean", "attention"] = Field(
        "last", description="sequence tasks: final states, or pooled over true (unpadded) steps"
    )
    init: Literal["default", "forget_bias", "chrono"] = Field(
        "default", description="gate biases: PyTorch's, forget/update gate = forget_bias, or chrono"
    )
    forget_bias: float = Field(1.0, ge=-100, le=100)
    chrono_max: int | None = Field(None, ge=3, le=MAX_SIZE, description="T_max for chrono; default the task's length")
    implementation: Literal["fused", "reference"] = Field(
        "fused", description="fused: PyTorch's kernels; reference: the readable step-by-step cells (slower; same weights)"
    )
    orthogonal_lr_scale: float = Field(
        1.0, gt=0, le=1000, description="expRNN: the learning rate of its skew-symmetric (orthogonal) part, times train.lr; the paper's copy runs: 0.5"
    )
    fast_gru_backward: bool = Field(
        False, description="the GRU trains through rnnlab's hand-written backward where a step is small (CPU, batch x hidden "
        "<= 2,048): ~1.6x the steps/s; equal to nn.GRU's gradients only to rounding, so long runs drift from the reference cells'",
    )  # fmt: skip


def _recurrent_module(implementation: str, cell: str, input_size: int, hidden: int, fast_gru_backward: bool = False) -> nn.Module:
    """One single-layer, single-direction, time-major module; both kinds draw the same initial
    weights from the same random state."""
    if cell in MODERN_CELLS:
        return MODERN_CELLS[cell](input_size, hidden, parallel=implementation == "fused")
    if implementation == "reference":
        return ReferenceRecurrent(cell, input_size, hidden, batch_first=False)
    extra = {"nonlinearity": "tanh"} if cell == "rnn" else {"hand_written_backward": fast_gru_backward} if cell == "gru" else {}
    return CELLS[cell](input_size, hidden, **extra)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor | None, time_dim: int = 1) -> torch.Tensor:
    """Reverse each sequence of (B, T, F) (time_dim 1) or (T, B, F) (time_dim 0) within its true
    length; padding stays at the end.

    Its own inverse, so the same call maps the backward direction's outputs back.
    """
    if lengths is None:
        return x.flip(time_dim)
    t, b = x.size(time_dim), x.size(1 - time_dim)
    steps = torch.arange(t, device=x.device)
    src = lengths.to(x.device).unsqueeze(1) - 1 - steps.unsqueeze(0)  # (B, T)
    src = torch.where(src >= 0, src, steps.unsqueeze(0))
    batch = torch.arange(b, device=x.device).unsqueeze(1)
    rows = src + batch * t if time_dim == 1 else src * b + batch  # the row of (B*T | T*B, F) to read
    rows = rows if time_dim == 1 else rows.t()  # listed in x's own order
    # Whole rows of F features through index_select: 1.5x faster than gather with an expanded
    # (B, T, F) index, forward and backward, on CPU (benchmarks/train_speed.py).
    return x.reshape(b * t, -1).index_select(0, rows.reshape(-1)).view_as(x)


class FastDropout(nn.Module):
    """nn.Dropout's semantics (zero with probability p, scale the rest by 1/(1-p), identity in
    eval) with a cheaper mask. On CPU the mask is cut from 64-bit random integers, four 16-bit
    lanes each, so p is rounded to a multiple of 1/65,536 (the scale uses that exact p): drawing
    one float per element was 8% of the IMDb flagship's training step; this is 5x faster."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        # Of the 65,536 values of a 16-bit lane, this many drop; at least one keeps (p < 1 may round up).
        self._level = min(round(p * 65536), 65535)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type == "cpu":
            n = x.numel()
            lanes = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None).view(torch.int16)
            keep = lanes[:n].view(x.shape) >= self._level - 32768
            return x * keep * (65536 / (65536 - self._level))
        keep = torch.empty(x.shape, device=x.device).uniform_() >= self.p
        return x * keep * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _MaxOverSteps(torch.autograd.Function):
    """(T, B, D) -> (B, D): the maximum over the steps where `mask` (T, B, 1) holds. The forward
    runs through amax, 3x faster than max (which also finds the indices) on CPU; the gradient goes
    to the step that holds the maximum, shared equally among ties as amax's own gradient is."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        filled = x.masked_fill(~mask, float("-inf"))
        values = filled.amax(dim=0)
        ctx.save_for_backward(filled, values)
        return values

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        filled, values = ctx.saved_tensors
        winners = filled == values  # padding holds -inf: never a winner, since every length is >= 1
        return winners * (grad / winners.sum(dim=0)), None


class RecurrentNet(nn.Module):
    def __init__(self, cfg: RecurrentConfig, spec: ModelSpec, cell: str):
        super().__init__()
        if spec.causal and cfg.bidirectional:
            raise UserError(
                f"model '{cfg.name}' is bidirectional: it would read the very token it must predict. "
                "This task is causal; use a one-directional model (rnn, lstm, gru)"
            )
        self.cfg, self.spec, self.cell = cfg, spec, cell
        if spec.vocab_size is not None:
            if cfg.input == "embedding":
                self.embedding = nn.Embedding(spec.vocab_size, cfg.embedding_dim, padding_idx=spec.pad_id)
                in_size = cfg.embedding_dim
            else:
                in_size = spec.vocab_size  # one column per token; <pad> is the all-zero vector
        else:
            assert spec.input_size is not None, "a ModelSpec needs vocab_size or input_size"
            in_size = spec.input_size
        self.input_size = in_size
        hidden, dirs = cfg.hidden_size, 2 if cfg.bidirectional else 1
        # One single-direction, single-layer, time-major module per (layer, direction): the backward
        # direction needs its own within-length reversal, which a fused bidirectional module cannot do.
        self.layers = nn.ModuleList(
            nn.ModuleList(
                _recurrent_module(cfg.implementation, cell, in_size if i == 0 else hidden * dirs, hidden, cfg.fast_gru_backward)
                for _ in range(dirs)
            )
            for i in range(cfg.num_layers)
        )
        self.drop = FastDropout(cfg.dropout)
        out_size = hidden * dirs
        self.attention = nn.Linear(out_size, 1) if cfg.pooling == "attention" and not spec.per_step else None
        self.head = nn.Linear(out_size, spec.num_outputs)
        t_max = cfg.chrono_max or spec.max_len
        if cell in MODERN_CELLS:
            for m in self.recurrent_modules():
                m.gate_init(cfg.init, cfg.forget_bias, t_max)
        else:
            apply_gate_init(self.recurrent_modules(), cell, cfg.init, cfg.forget_bias, t_max)

    def lr_scales(self) -> dict[str, float]:
        """Parameters that train at another rate than train.lr (the engine's parameter groups)."""
        scale = self.cfg.orthogonal_lr_scale
        return {name: scale for name, _ in self.named_parameters() if name.endswith(".skew")} if scale != 1.0 else {}

    def recurrent_modules(self) -> list[nn.RNNBase | ReferenceRecurrent]:
        return [m for layer in self.layers for m in layer]

    def use_implementation(self, implementation: str) -> "RecurrentNet":
        """Swap every recurrent module for the other implementation in place, weights, device and
        dtype kept; returns self. (Equal to building with that `model.implementation` and loading
        this model's state dict.)"""
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
        for directions in self.layers:
            for d, old in enumerate(directions):
                with torch.random.fork_rng(devices=[]):  # its throwaway initial weights draw no numbers of ours
                    new = _recurrent_module(implementation, self.cell, old.input_size, old.hidden_size, self.cfg.fast_gru_backward)
                new.load_state_dict(old.state_dict())  # copies values into the new module's tensors
                like = next(old.parameters())
                directions[d] = new.to(device=like.device, dtype=like.dtype).train(old.training)
        self.cfg = self.cfg.model_copy(update={"implementation": implementation})
        return self

    def set_recording(self, on: bool) -> None:
        """Reference cells only: keep every step's gates of the next forwards (see `recorded`)."""
        if on and self.cfg.implementation != "reference":
            raise ValueError("only the reference cells record their gates: build with implementation='reference'")
        for m in self.recurrent_modules():
            if isinstance(m, (ReferenceRecurrent, ModernRecurrent)):
                m.record = on

    def recorded(self, lengths: torch.Tensor | None = None) -> dict[tuple[int, str], dict[str, torch.Tensor]]:
        """What the last forward recorded: (layer, "forward"/"backward") -> name -> (B, T, H), in
        reading order (the backward direction's steps reversed back within each length, as its
        outputs are); `lengths` must be those of that forward. Steps past a length are padding."""
        out = {}
        for i, directions in enumerate(self.layers):
            for d, m in enumerate(directions):
                if not getattr(m, "recorded", None):
                    raise ValueError("nothing recorded: call set_recording(True) on a reference model, then forward")
                out[(i, DIRECTIONS[d])] = {
                    name: reverse_padded(v, lengths) if d == 1 else v for name, v in m.recorded.items()
                }
        return out

    @property
    def out_size(self) -> int:
        return self.head.in_features

    # --- public, batch first: (B, T, ...) ------------------------------------------------------
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, input_size) features; real-valued inputs pass through."""
        return self._embed(tokens.transpose(0, 1)).transpose(0, 1)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) -> (B, T, dirs * H); outputs at padded positions are meaningless."""
        return self._encode(feats.transpose(0, 1), lengths).transpose(0, 1)

    def final_states(self, out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Of encode's (B, T, dirs * H): the forward direction at each true last step (+ the
        backward direction at step 0)."""
        return self._final_states(out.transpose(0, 1), lengths)

    def pool(self, out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Of encode's (B, T, D): (B, D) by `model.pooling` over each sequence's true steps."""
        return self._pool(out.transpose(0, 1), lengths)

    def forward_features(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) features -> outputs: (B, C), or (B, T, C) for per-step tasks."""
        return self._head(self._encode(feats.transpose(0, 1), lengths), lengths)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) token ids or (B, T, F) features -> outputs: (B, C), or (B, T, C) for per-step tasks."""
        return self._head(self._encode(self._embed(inputs.transpose(0, 1)), lengths), lengths)

    # --- inside, time-major: (T, B, ...) -------------------------------------------------------
    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(T, B) token ids -> (T, B, input_size); real-valued (T, B, F) inputs pass through."""
        if tokens.is_floating_point():
            return tokens
        if hasattr(self, "embedding"):
            return self.drop(self.embedding(tokens))
        one_hot = F.one_hot(tokens, self.spec.vocab_size) * (tokens != self.spec.pad_id).unsqueeze(-1)
        return one_hot.to(self.head.weight.dtype)  # (T, B, vocab)

    def _encode(self, h: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(T, B, F) -> (T, B, dirs * H)."""
        for i, directions in enumerate(self.layers):
            if i > 0:
                h = self.drop(h)
            forward, _ = directions[0](h)
            if len(directions) == 2:
                backward, _ = directions[1](reverse_padded(h, lengths, time_dim=0))
                h = torch.cat([forward, reverse_padded(backward, lengths, time_dim=0)], dim=-1)
            else:
                h = forward
        return h

    def _final_states(self, out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        hidden = self.cfg.hidden_size
        if lengths is None:
            last = out[-1, :, :hidden]
        else:
            idx = (lengths.to(out.device) - 1).view(1, -1, 1).expand(1, -1, hidden)
            last = out[..., :hidden].gather(0, idx).squeeze(0)
        if out.size(-1) > hidden:
            last = torch.cat([last, out[0, :, hidden:]], dim=-1)
        return last

    def _pool(self, out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(T, B, D) -> (B, D) over each sequence's true steps."""
        mode = self.cfg.pooling
        if mode == "last":
            return self._final_states(out, lengths)
        if lengths is None:
            mask = torch.ones(out.shape[:2], dtype=torch.bool, device=out.device)
        else:
            mask = torch.arange(out.size(0), device=out.device).unsqueeze(1) < lengths.to(out.device).unsqueeze(0)  # (T, B)
        if mode == "max":
            return _MaxOverSteps.apply(out, mask.unsqueeze(-1))
        if mode == "mean":
            m = mask.unsqueeze(-1).to(out.dtype)
            return (out * m).sum(0) / m.sum(0).clamp_min(1)
        scores = self.attention(out).squeeze(-1).masked_fill(~mask, float("-inf"))  # (T, B)
        return (scores.softmax(dim=0).unsqueeze(-1) * out).sum(0)

    def _head(self, out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if self.spec.per_step:
            # Batch first before the head: its outputs (often wider, a vocabulary) need no copy.
            return self.head(self.drop(out.transpose(0, 1)))  # (B, T, C)
        return self.head(self.drop(self._pool(out, lengths)))  # (B, C)
