"""The readable reference cells equal PyTorch's fused nn.RNN / nn.LSTM / nn.GRU, in float64 to 1e-10,
alone and inside the whole RecurrentNet (model.implementation = fused | reference)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnlab.config import resolve_config
from rnnlab.contract import ModelSpec
from rnnlab.engine import evaluate, fit, load_run_model
from rnnlab.models.cells import RECORDED, ReferenceRecurrent, gate_blocks, param_count
from rnnlab.models.recurrent import RecurrentConfig, RecurrentNet

from conftest import tiny_raw

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


# --- The whole RecurrentNet: model.implementation = fused against reference -----------------------

NET_SPEC = ModelSpec(num_outputs=3, vocab_size=9, max_len=6)
LENGTHS = (6, 2, 4, 1, 6)  # mixed, two of full length, one of length 1


def _net(cell: str, implementation: str, *, seed: int = 0, **params) -> RecurrentNet:
    torch.manual_seed(seed)
    cfg = RecurrentConfig(name=cell, hidden_size=4, implementation=implementation, **params)
    return RecurrentNet(cfg, NET_SPEC, cell)


def _net_pair(cell: str, **params) -> tuple[RecurrentNet, RecurrentNet]:
    """float64 fused and reference nets holding the same (large, non-default) weights."""
    fused = _net(cell, "fused", **params).double()
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in fused.parameters():  # every module its own values: a mixed-up direction would show
            p.normal_(0, 0.7, generator=gen)
    ref = _net(cell, "reference", seed=99, **params).double()
    ref.load_state_dict(fused.state_dict(), strict=True)
    assert all(isinstance(m, nn.RNNBase) for m in fused.recurrent_modules())
    assert all(isinstance(m, ReferenceRecurrent) for m in ref.recurrent_modules())
    return fused, ref


def _tokens(lengths=LENGTHS, vocab: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor(lengths)
    tokens = torch.randint(1, vocab, (len(lengths), int(lengths.max())), generator=torch.Generator().manual_seed(2))
    tokens[torch.arange(tokens.size(1)) >= lengths.unsqueeze(1)] = 0
    return tokens, lengths


def _run_net(model: RecurrentNet, tokens: torch.Tensor, lengths: torch.Tensor, seed: int = 5) -> dict:
    """Outputs, each module's final (h, c) and every parameter's gradient of one forward/backward."""
    states: dict[tuple[int, int], object] = {}
    hooks = [
        m.register_forward_hook(lambda mod, args, output, key=(i, d): states.__setitem__(key, output[1]))
        for i, directions in enumerate(model.layers) for d, m in enumerate(directions)
    ]  # fmt: skip
    torch.manual_seed(seed)  # the same dropout masks for both
    try:
        feats = model.embed(tokens)
        out = model.encode(feats, lengths)  # (B, T, dirs * H)
        logits = model.head(model.drop(model.pool(out, lengths)))
    finally:
        for hook in hooks:
            hook.remove()
    valid = (torch.arange(tokens.size(1)) < lengths.unsqueeze(1)).unsqueeze(-1)
    gen = torch.Generator().manual_seed(3)
    w_out = torch.randn(out.shape, dtype=out.dtype, generator=gen)
    w_logit = torch.randn(logits.shape, dtype=out.dtype, generator=gen)
    model.zero_grad()
    ((w_out * out * valid).sum() + (w_logit * logits).sum()).backward()
    finals = {k: [t.detach() for t in (s if isinstance(s, tuple) else (s,))] for k, s in states.items()}
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return {"out": (out * valid).detach(), "logits": logits.detach(), "finals": finals, "grads": grads}


def _assert_same_run(a: dict, b: dict) -> None:
    assert a["out"].abs().max() > 0.1
    torch.testing.assert_close(b["out"], a["out"], **TOL)
    torch.testing.assert_close(b["logits"], a["logits"], **TOL)
    assert a["finals"].keys() == b["finals"].keys()
    for key, states in a["finals"].items():
        for sa, sb in zip(states, b["finals"][key], strict=True):  # h, and c for LSTM
            torch.testing.assert_close(sb, sa, **TOL, msg=lambda m, k=key: f"final state of {k}: {m}")
    assert a["grads"].keys() == b["grads"].keys()
    for name, g in a["grads"].items():
        assert g.abs().max() > 0, f"{name} got no gradient"
        torch.testing.assert_close(b["grads"][name], g, **TOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", MODES)
def test_recurrent_net_reference_equals_fused(cell: str, bidirectional: bool, layers: int):
    """float64, mixed lengths: every output, each module's final h (and c) and every parameter's
    gradient of the whole network agree to 1e-10."""
    fused, ref = _net_pair(cell, bidirectional=bidirectional, num_layers=layers)
    tokens, lengths = _tokens()
    _assert_same_run(_run_net(fused.eval(), tokens, lengths), _run_net(ref.eval(), tokens, lengths))


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention"])
def test_reference_equals_fused_with_every_pooling_dropout_and_embedding(pooling: str):
    """Training mode with dropout (the same masks from the same seed), embeddings, two layers."""
    params = {"bidirectional": True, "num_layers": 2, "dropout": 0.3, "pooling": pooling, "input": "embedding", "embedding_dim": 3}
    fused, ref = _net_pair("lstm", **params)
    tokens, lengths = _tokens()
    _assert_same_run(_run_net(fused.train(), tokens, lengths), _run_net(ref.train(), tokens, lengths))


@pytest.mark.parametrize("init", ["default", "forget_bias", "chrono"])
@pytest.mark.parametrize("cell", MODES)
def test_every_init_scheme_gives_the_same_weights_in_both(cell: str, init: str):
    fused = _net(cell, "fused", init=init, forget_bias=2.0, bidirectional=True, num_layers=2)
    ref = _net(cell, "reference", init=init, forget_bias=2.0, bidirectional=True, num_layers=2)
    sd_f, sd_r = fused.state_dict(), ref.state_dict()
    assert list(sd_r) == list(sd_f)
    for name in sd_f:
        assert torch.equal(sd_r[name], sd_f[name]), name
    if cell != "rnn" and init != "default":  # the keep gate's bias really was set, in the reference too
        h = 4
        b = ref.layers[1][1].bias_ih_l0[h : 2 * h] + ref.layers[1][1].bias_hh_l0[h : 2 * h]
        assert torch.all(b == 2.0) if init == "forget_bias" else torch.all(b >= 0)


def test_use_implementation_swaps_in_place_and_draws_no_random_numbers():
    model = _net("gru", "fused", bidirectional=True, num_layers=2).eval()
    tokens, lengths = _tokens()
    expected = model(tokens, lengths).detach()
    before = torch.random.get_rng_state()
    assert model.use_implementation("reference") is model
    assert torch.equal(torch.random.get_rng_state(), before)
    assert model.cfg.implementation == "reference" and not model.training
    assert all(isinstance(m, ReferenceRecurrent) for m in model.recurrent_modules())
    torch.testing.assert_close(model(tokens, lengths).detach(), expected, atol=1e-6, rtol=1e-5)
    model.use_implementation("fused")
    assert all(isinstance(m, nn.GRU) for m in model.recurrent_modules())
    torch.testing.assert_close(model(tokens, lengths).detach(), expected, atol=0, rtol=0)
    with pytest.raises(ValueError):
        model.use_implementation("cudnn")
    with pytest.raises(ValueError, match="reference"):
        model.set_recording(True)


@pytest.mark.parametrize("cell", MODES)
def test_recorded_steps_are_in_reading_order_in_both_directions(cell: str):
    _, ref = _net_pair(cell, bidirectional=True, num_layers=2)
    ref.eval().set_recording(True)
    tokens, lengths = _tokens()
    with torch.no_grad():
        out = ref.encode(ref.embed(tokens), lengths)  # last layer: [forward, backward]
    rec = ref.recorded(lengths)
    assert set(rec) == {(0, "forward"), (0, "backward"), (1, "forward"), (1, "backward")}
    assert all(list(r) == list(RECORDED[cell]) for r in rec.values())
    valid = (torch.arange(tokens.size(1)) < lengths.unsqueeze(1)).unsqueeze(-1)
    torch.testing.assert_close(rec[(1, "forward")]["hidden"] * valid, out[..., :4] * valid, atol=0, rtol=0)
    torch.testing.assert_close(rec[(1, "backward")]["hidden"] * valid, out[..., 4:] * valid, atol=0, rtol=0)
    ref.set_recording(False)
    with torch.no_grad():
        ref(tokens, lengths)
    with pytest.raises(ValueError, match="nothing recorded"):
        ref.recorded(lengths)


def _test_loss(model, task) -> float:
    with torch.no_grad():
        return evaluate(model, task, "test", torch.device("cpu"))["loss"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_checkpoint_trained_fused_scores_the_same_with_reference_cells(tmp_path, cell: str):
    raw = tiny_raw(cell, steps=20, eval_every=10)
    raw["model"].update(bidirectional=True, num_layers=2)
    result = fit(resolve_config(raw), runs_dir=tmp_path, callbacks=[])
    cfg, task, model, ckpt = load_run_model(result.run_dir, torch.device("cpu"))
    assert cfg.model.implementation == "fused"
    fused_loss = _test_loss(model, task)
    assert fused_loss == pytest.approx(result.summary["test"]["loss"], abs=1e-6)

    # 1. the same model object with its cells swapped
    swapped = _test_loss(model.use_implementation("reference"), task)
    # 2. a model built from the config with model.implementation=reference, loading the checkpoint
    ref_cfg = resolve_config({**ckpt["config"], "model": {**ckpt["config"]["model"], "implementation": "reference"}})
    built = RecurrentNet(ref_cfg.model, task.model_spec(), cell)
    built.load_state_dict(ckpt["model"], strict=True)
    rebuilt = _test_loss(built, task)
    assert swapped == pytest.approx(fused_loss, abs=1e-6) and rebuilt == pytest.approx(fused_loss, abs=1e-6)


@pytest.mark.parametrize("cell", MODES)
def test_training_with_reference_cells_ends_where_fused_does(tmp_path, cell: str):
    """Same seed: the same initial weights, data and dropout masks, so the same test loss to 1e-5
    (float32: the kernels may round differently in the last bits, e.g. oneDNN's LSTM on the CPU)."""
    losses = {}
    for impl in ("fused", "reference"):
        raw = tiny_raw(cell, steps=20, eval_every=10)
        raw["model"].update(implementation=impl, dropout=0.1)
        losses[impl] = fit(resolve_config(raw), runs_dir=tmp_path / impl, callbacks=[]).summary["test"]["loss"]
    assert losses["reference"] == pytest.approx(losses["fused"], abs=1e-5)
    if cell != "lstm":  # no oneDNN in between: the very same numbers (the LSTM's: with oneDNN off, below)
        assert losses["reference"] == losses["fused"]


def test_an_lstm_trained_fused_ends_exactly_where_the_reference_cells_do_with_onednn_off(tmp_path):
    """The decided rule's LSTM half: without oneDNN, nn.LSTM runs PyTorch's native kernel, which the
    reference cells repeat operation by operation, so a training ends at the very same test loss."""
    losses = {}
    with torch.backends.mkldnn.flags(enabled=False):
        for impl in ("fused", "reference"):
            raw = tiny_raw("lstm", steps=150, eval_every=150, batch_size=32)
            raw["task"].update(seq_len=50, num_classes=10)
            raw["model"].update(hidden_size=32, implementation=impl)
            losses[impl] = fit(resolve_config(raw), runs_dir=tmp_path / impl, callbacks=[]).summary["test"]["loss"]
    assert losses["fused"] == losses["reference"]


def test_a_gru_trained_fused_ends_exactly_where_the_reference_cells_do_unless_the_fast_backward_is_asked_for(tmp_path):
    """The rule the reference cells come with: trained fused and reference GRU runs agree. The hand-written
    backward (model.fast_gru_backward) sums the weight gradients in another order; over a training those
    last bits grow, so it is an option, and the default is nn.GRU's own backward."""
    losses = {}
    for name, overrides in (("fused", {}), ("reference", {"implementation": "reference"}), ("fast", {"fast_gru_backward": True})):
        raw = tiny_raw("gru", steps=150, eval_every=150, batch_size=32)  # the quick start's step: the sums are long enough to round apart
        raw["task"].update(seq_len=100, num_classes=10)
        raw["model"].update(hidden_size=32, **overrides)
        losses[name] = fit(resolve_config(raw), runs_dir=tmp_path / name, callbacks=[]).summary["test"]["loss"]
    assert losses["fused"] == losses["reference"]
    assert losses["fast"] != losses["reference"] and losses["fast"] == pytest.approx(losses["reference"], rel=0.5)


def _reached_from(fn, name: str, depth: int = 3) -> bool:
    """Whether the autograd node `name` is within `depth` steps of `fn`."""
    if fn is None or depth < 0:
        return False
    return type(fn).__name__ == name or any(_reached_from(f, name, depth - 1) for f, _ in fn.next_functions)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_hx", [False, True])
def test_fused_gru_trains_through_its_hand_written_backward_equal_to_nn_gru(with_hx: bool, bias: bool, batch_first: bool):
    """The GRU that model.implementation=fused builds (FastGRU) runs PyTorch's forward and its own
    backward on the CPU (issue 28: 2x faster); outputs, final state and every gradient equal
    nn.GRU's to 1e-10 in float64, and its float32 outputs are nn.GRU's to the bit."""
    from rnnlab.models.recurrent import FastGRU

    torch.manual_seed(0)
    ref = nn.GRU(F_IN, H, bias=bias, batch_first=batch_first, dtype=torch.float64)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.7)
    fast = FastGRU(F_IN, H, bias=bias, batch_first=batch_first, dtype=torch.float64)
    fast.load_state_dict(ref.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, F_IN, dtype=torch.float64, generator=gen)
    x = x if batch_first else x.transpose(0, 1).contiguous()
    hx = torch.randn(1, B, H, dtype=torch.float64, generator=gen) if with_hx else None
    w_out = torch.randn(x.shape[:2] + (H,), dtype=torch.float64, generator=gen)
    w_fin = torch.randn(1, B, H, dtype=torch.float64, generator=gen)
    results = []
    for module in (ref, fast):
        xi = x.clone().requires_grad_(True)
        hi = hx.clone().requires_grad_(True) if with_hx else None
        out, h_n = module(xi, hi)
        ((w_out * out).sum() + (w_fin * h_n).sum()).backward()
        results.append([out.detach(), h_n.detach(), xi.grad, *([hi.grad] if with_hx else []), *(p.grad for p in module.parameters())])
        if module is fast:
            assert _reached_from(out.grad_fn, "_GRUSequenceBackward")  # the hand-written backward ran
    assert results[0][0].abs().max() > 0.1
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, **TOL)
    x32 = x.float()
    with torch.no_grad():
        assert torch.equal(fast.float()(x32.requires_grad_(True))[0], ref.float()(x32)[0])


def test_recurrent_net_builds_the_fast_gru_and_falls_back_where_it_does_not_apply():
    from rnnlab.models.recurrent import FastGRU

    model = _net("gru", "fused", bidirectional=True, fast_gru_backward=True)
    assert all(isinstance(m, FastGRU) for m in model.recurrent_modules())
    tokens, lengths = _tokens()
    layer = model.layers[0][0]
    feats = model.embed(tokens).transpose(0, 1)  # (T, B, F), as the network feeds its layers
    training, _ = layer(feats)
    assert _reached_from(training.grad_fn, "_GRUSequenceBackward")
    with torch.no_grad():  # inference: nn.GRU's own forward, bit for bit the same numbers
        inference, _ = layer(feats)
    assert torch.equal(training.detach(), inference)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: nn.GRU's path, not the float32 backward
        assert not _reached_from(layer(feats)[0].grad_fn, "_GRUSequenceBackward")
    # a large step (batch x hidden above SMALL_GRU_STEP), where PyTorch's own backward is faster
    from rnnlab.models.recurrent import SMALL_GRU_STEP

    big = FastGRU(3, 64)
    assert not _reached_from(big(torch.randn(5, SMALL_GRU_STEP // 64 + 1, 3))[0].grad_fn, "_GRUSequenceBackward")
    assert _reached_from(big(torch.randn(5, SMALL_GRU_STEP // 64, 3))[0].grad_fn, "_GRUSequenceBackward")
