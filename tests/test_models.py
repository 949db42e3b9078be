"""Every registered model trains, every parameter gets a gradient, checkpoints round-trip, and the
fast padded formulation equals a PackedSequence reference exactly."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.config import resolve_config
from rnnlab.models.recurrent import RecurrentNet, reverse_padded
from rnnlab.registry import MODELS
from rnnlab.contract import ModelSpec

from conftest import tiny_raw


def build(name: str, spec: ModelSpec, **params) -> RecurrentNet:
    torch.manual_seed(0)
    cfg = resolve_config({**tiny_raw(), "model": {"name": name, "hidden_size": 8, **params}}).model
    return MODELS.build(cfg, spec)


SEQ_SPEC = ModelSpec(num_outputs=3, vocab_size=12, max_len=7)
STEP_SPEC = ModelSpec(num_outputs=12, vocab_size=12, per_step=True, max_len=7)
VARIANTS = [
    ("rnn", {}),
    ("lstm", {}),
    ("gru", {}),
    ("bilstm", {"num_layers": 2, "dropout": 0.1}),
    ("bigru", {"input": "embedding", "embedding_dim": 5}),
    ("lstm", {"pooling": "attention", "input": "embedding", "embedding_dim": 4}),
    ("bigru", {"pooling": "max"}),
    ("bilstm", {"pooling": "mean", "num_layers": 2}),
]


def mixed_batch(vocab: int = 12, lengths=(7, 3, 5, 1)):
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor(lengths)
    tokens = torch.randint(1, vocab, (len(lengths), int(lengths.max())), generator=g)
    tokens[torch.arange(tokens.size(1)) >= lengths.unsqueeze(1)] = 0
    return tokens, lengths


@pytest.mark.parametrize("name, params", VARIANTS, ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()))
def test_each_model_trains_and_every_parameter_gets_a_gradient(name, params):
    model = build(name, SEQ_SPEC, **params)
    tokens, lengths = mixed_batch()
    targets = torch.tensor([0, 1, 2, 1])
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(model(tokens, lengths), targets)
        opt.zero_grad()
        loss.backward()
        if not losses:
            missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
            assert not missing, f"no gradient for {missing}"
            if hasattr(model, "embedding"):
                # Row by row: every token in the batch moves its own row; the padding row is frozen
                # by design (padding_idx) and rows of tokens not in the batch get nothing.
                grad = model.embedding.weight.grad
                moved = {int(i) for i in torch.nonzero(grad.abs().sum(1)).flatten()}
                assert moved == {int(t) for t in tokens.unique()} - {SEQ_SPEC.pad_id}, moved
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7, losses


def test_per_step_head_gives_one_prediction_per_step():
    model = build("lstm", STEP_SPEC)
    tokens, lengths = mixed_batch()
    assert model(tokens, lengths).shape == (4, 7, 12)


def test_one_hot_input_spans_the_vocabulary_and_pad_is_the_zero_vector():
    model = build("lstm", SEQ_SPEC)
    assert model.input_size == 12
    feats = model.embed(torch.tensor([[0, 1, 11]]))
    assert feats.shape == (1, 3, 12)  # (batch, seq, vocab)
    assert feats[0, 0].sum() == 0 and feats[0, 1, 1] == 1 and feats[0, 2, 11] == 1 and feats.sum() == 2


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "bilstm", "bigru"])
def test_checkpoint_round_trip_gives_identical_outputs(name):
    model = build(name, SEQ_SPEC, num_layers=2).eval()
    tokens, lengths = mixed_batch()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    clone = build(name, SEQ_SPEC, num_layers=2)
    for p in clone.parameters():
        nn.init.zeros_(p)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    clone.eval()
    assert torch.equal(model(tokens, lengths), clone(tokens, lengths))


def test_reverse_padded_reverses_within_length_and_is_its_own_inverse():
    x = torch.arange(12.0).view(2, 6, 1)
    lengths = torch.tensor([6, 3])
    rev = reverse_padded(x, lengths)
    assert rev[0, :, 0].tolist() == [5, 4, 3, 2, 1, 0]
    assert rev[1, :, 0].tolist() == [8, 7, 6, 9, 10, 11]  # padding stays in place at the end
    assert torch.equal(reverse_padded(rev, lengths), x)


def _packed_reference(model: RecurrentNet, feats: torch.Tensor, lengths: torch.Tensor):
    """The same weights in one fused nn.RNN/LSTM/GRU over a PackedSequence: the textbook-exact
    answer. Returns the last layer's outputs (zero at padding), h_n and c_n (None but for LSTM),
    both (layers * directions, B, H) in the batch's order, each at every sequence's true end."""
    first = model.layers[0][0]
    extra = {"nonlinearity": first.nonlinearity} if isinstance(first, nn.RNN) else {}
    ref = type(first)(
        first.input_size, first.hidden_size, num_layers=len(model.layers), batch_first=True,
        bidirectional=len(model.layers[0]) == 2, **extra,
    ).to(feats.dtype)  # fmt: skip
    with torch.no_grad():
        for i, directions in enumerate(model.layers):
            for d, module in enumerate(directions):
                suffix = f"_l{i}" + ("_reverse" if d else "")
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(ref, kind + suffix).copy_(getattr(module, kind + "_l0"))
    packed = pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=False)
    out, state = ref(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=feats.size(1))
    h_n, c_n = state if isinstance(state, tuple) else (state, None)
    return out, h_n, c_n


def _encode_every_layer(model: RecurrentNet, feats: torch.Tensor, lengths: torch.Tensor):
    """model.encode, watched: every layer's output as the next layer read it (the last layer's is
    encode's result), batch first, and the (h, c) each single-direction module returned after its
    padded run. The modules themselves read time-major (T, B, F)."""
    inputs: dict[int, torch.Tensor] = {}
    states: dict[tuple[int, int], object] = {}
    hooks = []
    for i, directions in enumerate(model.layers):
        hooks.append(directions[0].register_forward_pre_hook(lambda m, args, i=i: inputs.__setitem__(i, args[0])))
        for d, module in enumerate(directions):
            hooks.append(module.register_forward_hook(lambda m, args, output, key=(i, d): states.__setitem__(key, output[1])))
    try:
        out = model.encode(feats, lengths)
    finally:
        for hook in hooks:
            hook.remove()
    assert torch.equal(inputs[0].transpose(0, 1), feats) and len(states) == len(model.layers) * len(model.layers[0])
    return [inputs[i].transpose(0, 1) for i in range(1, len(model.layers))] + [out], states


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_fast_padded_formulation_equals_packed_reference(cell, bidirectional, layers):
    """In float64, to 1e-12: the outputs pooling reads (every true step of the last layer), and
    every layer's final h (forward at each true last token, backward at the first), as a
    PackedSequence run of the same weights gives them."""
    model = build(cell, SEQ_SPEC, num_layers=layers, hidden_size=5, bidirectional=bidirectional).double().eval()
    tokens, lengths = mixed_batch(lengths=(7, 3, 5, 1, 7, 2))  # two rows of full length, one of length 1
    feats = model.embed(tokens)
    assert feats.dtype == torch.float64
    tight = {"rtol": 0.0, "atol": 1e-12}
    with torch.no_grad():
        outs, states = _encode_every_layer(model, feats, lengths)
        ref_out, h_n, c_n = _packed_reference(model, feats, lengths)
    dirs = 2 if bidirectional else 1
    assert len(outs) == layers and h_n.shape == (layers * dirs, 6, 5)
    valid = (torch.arange(tokens.size(1)) < lengths.unsqueeze(1)).unsqueeze(-1)
    torch.testing.assert_close(outs[-1] * valid, ref_out * valid, **tight)  # what max/mean/attention pool
    for i, out in enumerate(outs):
        expected = torch.cat(list(h_n[i * dirs : (i + 1) * dirs]), dim=-1)  # [forward, backward] of layer i
        torch.testing.assert_close(model.final_states(out, lengths), expected, **tight, msg=f"h of layer {i}")
    # Each module's own (h, c) after its padded run ends at the batch's last step, which is each
    # sequence's true end only where nothing is padded: there it must be the reference's too.
    # (The model reads neither: only the outputs above enter pooling and the head.)
    full = lengths == tokens.size(1)
    assert full.sum() == 2
    for (i, d), state in states.items():
        h, c = state if isinstance(state, tuple) else (state, None)
        torch.testing.assert_close(h[0, full], h_n[i * dirs + d, full], **tight, msg=f"h of layer {i}, direction {d}")
        if c_n is not None:
            torch.testing.assert_close(c[0, full], c_n[i * dirs + d, full], **tight, msg=f"c of layer {i}, direction {d}")


def test_pooling_ignores_padding():
    for pooling in ("last", "max", "mean", "attention"):
        model = build("bilstm", SEQ_SPEC, pooling=pooling).eval()
        tokens, lengths = mixed_batch()
        noisy = tokens.clone()
        noisy[torch.arange(tokens.size(1)) >= lengths.unsqueeze(1)] = 5  # garbage where padding was
        torch.testing.assert_close(model(tokens, lengths), model(noisy, lengths), msg=pooling)


def test_gate_initialisations_set_the_biases():
    lstm = build("lstm", SEQ_SPEC, init="forget_bias", forget_bias=2.5)
    m = lstm.layers[0][0]
    h = m.hidden_size
    assert torch.all(m.bias_ih_l0[h : 2 * h] + m.bias_hh_l0[h : 2 * h] == 2.5)
    chrono = build("lstm", SEQ_SPEC, init="chrono", chrono_max=50).layers[0][0]
    forget = chrono.bias_ih_l0[h : 2 * h] + chrono.bias_hh_l0[h : 2 * h]
    assert torch.all((forget >= 0) & (forget <= torch.log(torch.tensor(49.0))))
    torch.testing.assert_close(chrono.bias_ih_l0[:h] + chrono.bias_hh_l0[:h], -forget)
    gru = build("gru", SEQ_SPEC, init="forget_bias", forget_bias=3.0).layers[0][0]
    assert torch.all(gru.bias_ih_l0[h : 2 * h] + gru.bias_hh_l0[h : 2 * h] == 3.0)  # update gate z


def test_max_pooling_gradient_is_amaxs_ties_included():
    """Max pooling runs through a hand-written gradient (amax forward, the gradient to the winning
    step): it must equal autograd's own for amax over the true steps, ties shared equally."""
    from rnnlab.models.recurrent import _MaxOverSteps

    torch.manual_seed(0)
    x = torch.randn(7, 3, 5, dtype=torch.float64)
    x[2, 1, :] = x[4, 1, :] = 9.0  # a tie between two true steps of sequence 1
    x[6, 2, :] = 99.0  # the largest value of sequence 2 lies in its padding
    mask = (torch.arange(7)[:, None] < torch.tensor([7, 5, 4])[None]).unsqueeze(-1)
    ours = x.clone().requires_grad_()
    theirs = x.clone().requires_grad_()
    w = torch.randn(3, 5, dtype=torch.float64)
    (_MaxOverSteps.apply(ours, mask) * w).sum().backward()
    (theirs.masked_fill(~mask, float("-inf")).amax(0) * w).sum().backward()
    assert torch.equal(ours.grad, theirs.grad)
    assert torch.equal(ours.grad[2, 1], w[1] / 2) and not ours.grad[6, 2].any()
    assert torch.autograd.gradcheck(lambda t: _MaxOverSteps.apply(t, mask), (torch.randn(7, 3, 5, dtype=torch.float64, requires_grad=True),))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_dropout_drops_its_share_and_keeps_the_mean(p):
    from rnnlab.models.recurrent import FastDropout

    torch.manual_seed(0)
    drop = FastDropout(p).train()
    out = drop(torch.ones(500, 1000))
    assert abs(float((out == 0).float().mean()) - p) < 0.003
    assert abs(float(out.mean()) - 1.0) < 0.005
    assert torch.equal(drop.eval()(torch.ones(3)), torch.ones(3))
