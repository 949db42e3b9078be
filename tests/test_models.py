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
            # <pad> is the zero vector (its one-hot column never fires) and an embedding's padding
            # row is frozen by design: whole-tensor checks still see every other entry's gradient.
            missing = [n for n in missing if n != "embedding.weight"]
            assert not missing, f"no gradient for {missing}"
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
    """The same weights in one fused nn.LSTM/GRU over a PackedSequence: the textbook-exact answer."""
    first = model.layers[0][0]
    ref = type(first)(
        first.input_size, first.hidden_size, num_layers=len(model.layers), batch_first=True, bidirectional=len(model.layers[0]) == 2
    )
    with torch.no_grad():
        for i, directions in enumerate(model.layers):
            for d, module in enumerate(directions):
                suffix = f"_l{i}" + ("_reverse" if d else "")
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(ref, kind + suffix).copy_(getattr(module, kind + "_l0"))
    packed = pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=False)
    out, state = ref(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=feats.size(1))
    h_n = state[0] if isinstance(state, tuple) else state
    return out, h_n


@pytest.mark.parametrize("name", ["bilstm", "bigru", "lstm"])
def test_fast_padded_formulation_equals_packed_reference(name):
    model = build(name, SEQ_SPEC, num_layers=2, hidden_size=6).eval()
    tokens, lengths = mixed_batch(lengths=(7, 3, 5, 1, 6, 2))
    feats = model.embed(tokens)
    out = model.encode(feats, lengths)
    ref_out, h_n = _packed_reference(model, feats, lengths)
    valid = (torch.arange(tokens.size(1)) < lengths.unsqueeze(1)).unsqueeze(-1)
    torch.testing.assert_close(out * valid, ref_out * valid, rtol=1e-5, atol=1e-6)
    # Final states: last layer, forward at each true last token (+ backward at the first token).
    expected_last = torch.cat([h_n[-2], h_n[-1]], dim=-1) if name.startswith("bi") else h_n[-1]
    torch.testing.assert_close(model.final_states(out, lengths), expected_last, rtol=1e-5, atol=1e-6)


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
