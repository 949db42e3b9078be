"""The readable reference cells equal PyTorch's fused nn.RNN / nn.LSTM / nn.GRU, in float64 to 1e-10."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnlab.models.cells import RECORDED, ReferenceRecurrent, gate_blocks, param_count

MODES = ("rnn", "lstm", "gru")
B, T, F_IN, H = 3, 7, 5, 4
TOL = {"atol": 1e-10, "rtol": 1e-10}


def _torch_module(mode: str, **kw) -> nn.RNNBase:
    if mode == "rnn":
        return nn.RNN(F_IN, H, batch_first=True, nonlinearity="tanh", **kw)
    return {"lstm": nn.LSTM, "gru": nn.GRU}[mode](F_IN, H, batch_first=True, **kw)


def _pair(mode: str, seed: int = 0) -> tuple[nn.RNNBase, ReferenceRecurrent]:
    """A float64 nn module with random (non-default-scale) weights, and a reference loaded from it."""
    torch.manual_seed(seed)
    fused = _torch_module(mode, dtype=torch.float64)
    with torch.no_grad():
        for p in fused.parameters():
            p.normal_(0, 0.7)  # larger than the default init, so the gates leave their linear range
    ref = ReferenceRecurrent(mode, F_IN, H, dtype=torch.float64)
    ref.load_state_dict(fused.state_dict(), strict=True)
    return fused, ref


def _finals(mode: str, state) -> list[torch.Tensor]:
    return list(state) if mode == "lstm" else [state]


def _initial(mode: str, gen: torch.Generator):
    h0 = torch.randn(1, B, H, dtype=torch.float64, generator=gen)
    if mode == "lstm":
        return h0, torch.randn(1, B, H, dtype=torch.float64, generator=gen)
    return h0


@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_forward_and_gradients_equal_pytorch(mode: str, with_hx: bool):
    fused, ref = _pair(mode)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, F_IN, dtype=torch.float64, generator=gen)
    hx = _initial(mode, gen) if with_hx else None
    w_out = torch.randn(B, T, H, dtype=torch.float64, generator=gen)
    w_fin = [torch.randn(1, B, H, dtype=torch.float64, generator=gen) for _ in range(2 if mode == "lstm" else 1)]

    results = []
    for module in (fused, ref):
        xi = x.clone().requires_grad_(True)
        out, state = module(xi, hx)
        finals = _finals(mode, state)
        loss = (w_out * out).sum() + sum((w * s).sum() for w, s in zip(w_fin, finals))
        loss.backward()
        grads = {name: p.grad.clone() for name, p in module.named_parameters()}
        results.append((out.detach(), [s.detach() for s in finals], xi.grad, grads))

    (out_a, fin_a, gx_a, gp_a), (out_b, fin_b, gx_b, gp_b) = results
    assert out_b.shape == (B, T, H) and all(s.shape == (1, B, H) for s in fin_b)
    assert out_a.abs().max() > 0.1  # not a degenerate all-zero comparison
    torch.testing.assert_close(out_b, out_a, **TOL)
    for a, b in zip(fin_a, fin_b, strict=True):
        torch.testing.assert_close(b, a, **TOL)
    torch.testing.assert_close(gx_b, gx_a, **TOL)
    assert gp_b.keys() == gp_a.keys() == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}
    for name in gp_a:
        assert gp_a[name].abs().max() > 0, name
        torch.testing.assert_close(gp_b[name], gp_a[name], **TOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("mode", MODES)
def test_float32_and_no_bias_match(mode: str):
    torch.manual_seed(3)
    fused = _torch_module(mode, bias=False)
    ref = ReferenceRecurrent(mode, F_IN, H, bias=False)
    ref.load_state_dict(fused.state_dict(), strict=True)
    assert ref.bias_ih_l0 is None and set(ref.state_dict()) == {"weight_ih_l0", "weight_hh_l0"}
    x = torch.randn(B, T, F_IN)
    out_a, state_a = fused(x)
    out_b, state_b = ref(x)
    assert out_b.dtype == torch.float32
    torch.testing.assert_close(out_b, out_a, atol=1e-6, rtol=1e-5)
    for a, b in zip(_finals(mode, state_a), _finals(mode, state_b), strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_state_dicts_load_both_ways_and_same_seed_same_init(mode: str):
    torch.manual_seed(42)
    fused = _torch_module(mode)
    torch.manual_seed(42)
    ref = ReferenceRecurrent(mode, F_IN, H)
    sd_f, sd_r = fused.state_dict(), ref.state_dict()
    assert list(sd_r) == list(sd_f)
    for name in sd_f:
        assert sd_r[name].shape == sd_f[name].shape
        assert torch.equal(sd_r[name], sd_f[name]), name
    bound = H**-0.5
    assert all(p.abs().max() <= bound for p in ref.parameters())
    assert sd_r["weight_ih_l0"].shape == (gate_blocks(mode) * H, F_IN)
    assert sd_r["weight_hh_l0"].shape == (gate_blocks(mode) * H, H)

    # reference -> nn and nn -> reference, strictly, with weights that differ from both inits
    other = ReferenceRecurrent(mode, F_IN, H)
    fused.load_state_dict(other.state_dict(), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(fused.parameters(), other.parameters(), strict=True))
    fresh = _torch_module(mode)
    ref.load_state_dict(fresh.state_dict(), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(ref.parameters(), fresh.parameters(), strict=True))


@pytest.mark.parametrize("mode", MODES)
def test_attributes_and_param_count(mode: str):
    ref = ReferenceRecurrent(mode, F_IN, H)
    fused = _torch_module(mode)
    assert (ref.mode, ref.input_size, ref.hidden_size) == (mode, F_IN, H)
    for attr in ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first"):
        assert getattr(ref, attr) == getattr(fused, attr), attr
    n = sum(p.numel() for p in fused.parameters())
    assert param_count(mode, F_IN, H) == n == sum(p.numel() for p in ref.parameters())
    assert param_count(mode, F_IN, H, bias=False) == n - 2 * gate_blocks(mode) * H


def test_gate_blocks_and_gru_is_three_quarters_of_lstm():
    assert [gate_blocks(m) for m in MODES] == [1, 4, 3]
    assert param_count("gru", 10, 20) * 4 == param_count("lstm", 10, 20) * 3
    with pytest.raises(ValueError):
        gate_blocks("transformer")
    with pytest.raises(ValueError):
        ReferenceRecurrent("RNN_TANH", F_IN, H)


@pytest.mark.parametrize("mode", MODES)
def test_recording(mode: str):
    _, ref = _pair(mode, seed=5)
    x = torch.randn(B, T, F_IN, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    ref.record = True
    out, state = ref(x)
    rec = ref.recorded
    assert list(rec) == list(RECORDED[mode])
    for name, values in rec.items():
        assert values.shape == (B, T, H), name
        assert not values.requires_grad, name
        if name.endswith("_gate"):
            assert values.min() > 0 and values.max() < 1, name
        elif name in ("candidate", "hidden"):
            assert values.min() > -1 and values.max() < 1, name
    torch.testing.assert_close(rec["hidden"], out.detach(), atol=0, rtol=0)
    h_n = state[0] if mode == "lstm" else state
    torch.testing.assert_close(rec["hidden"][:, -1], h_n[0].detach(), atol=0, rtol=0)
    if mode == "lstm":
        torch.testing.assert_close(rec["cell"][:, -1], state[1][0].detach(), atol=0, rtol=0)
        c_prev = torch.cat([torch.zeros(B, 1, H, dtype=x.dtype), rec["cell"][:, :-1]], dim=1)
        expected_c = rec["forget_gate"] * c_prev + rec["input_gate"] * rec["candidate"]
        torch.testing.assert_close(rec["cell"], expected_c, **TOL)
        torch.testing.assert_close(rec["hidden"], rec["output_gate"] * torch.tanh(rec["cell"]), **TOL)
    if mode == "gru":
        h_prev = torch.cat([torch.zeros(B, 1, H, dtype=x.dtype), rec["hidden"][:, :-1]], dim=1)
        z = rec["update_gate"]
        torch.testing.assert_close(rec["hidden"], (1 - z) * rec["candidate"] + z * h_prev, **TOL)


@pytest.mark.parametrize("mode", MODES)
def test_recording_off_stores_nothing(mode: str):
    ref = ReferenceRecurrent(mode, F_IN, H)
    assert ref.record is False
    x = torch.randn(B, T, F_IN)
    ref(x)
    assert ref.recorded == {}
    ref.record = True
    ref(x)
    assert set(ref.recorded) == set(RECORDED[mode])
    ref.record = False
    ref(x)
    assert ref.recorded == {}  # no stale steps from the earlier forward
    assert ReferenceRecurrent(mode, F_IN, H, record=True).record is True


@pytest.mark.parametrize("mode", MODES)
def test_bad_inputs_raise(mode: str):
    ref = ReferenceRecurrent(mode, F_IN, H)
    with pytest.raises(ValueError):
        ref(torch.randn(T, F_IN))
    with pytest.raises(RuntimeError):
        ref(torch.randn(B, T, F_IN + 1))
    with pytest.raises(RuntimeError):
        bad = torch.zeros(1, B + 1, H)
        ref(torch.randn(B, T, F_IN), (bad, bad) if mode == "lstm" else bad)
