"""The cells that came after the chapter's: minGRU, minLSTM, LRU, IndRNN, expRNN.

    python -m pytest tests/test_modern_cells.py -q

The parallel ones (minGRU, minLSTM, LRU) have a scan form (implementation: fused) and a
step-by-step form (reference); they must agree to 1e-10 in float64, outputs and gradients,
including padded batches and both directions inside RecurrentNet.
"""

from __future__ import annotations

import pytest
import torch

from rnnlab.models.exprnn import ExpRNN
from rnnlab.models.indrnn import IndRNN
from rnnlab.models.lru import LRU
from rnnlab.models.min_cells import MinGRU, MinLSTM
from rnnlab.models.scan import linear_recurrence, linear_steps, log_scan

PARALLEL = [MinGRU, MinLSTM, LRU]
ALL = [MinGRU, MinLSTM, LRU, IndRNN, ExpRNN]


@pytest.mark.parametrize("T", [1, 2, 3, 8, 37, 1000])
def test_the_scan_equals_the_steps_in_float64(T):
    g = torch.Generator().manual_seed(T)
    log_a = -torch.rand(T, 2, 5, generator=g, dtype=torch.float64) * torch.tensor([0.001, 0.1, 1.0, 5.0, 30.0], dtype=torch.float64)
    b = torch.randn(T, 2, 5, generator=g, dtype=torch.float64)
    b[::3] = 0.0  # zeros and both signs
    h0 = torch.randn(2, 5, generator=g, dtype=torch.float64)
    steps = linear_steps(log_a.exp(), b, h0)
    torch.testing.assert_close(log_scan(log_a, b, h0), steps, rtol=0, atol=1e-10)
    torch.testing.assert_close(linear_recurrence(log_a.exp(), b, h0), steps, rtol=0, atol=1e-10)


def test_the_cpu_loop_has_the_gradients_of_the_steps():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(30, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(30, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(30, 3, 4, generator=g, dtype=torch.float64)
    grads = [torch.autograd.grad((f(a, b, h0) * w).sum(), [a, b, h0]) for f in (linear_steps, linear_recurrence, lambda a, b, h: log_scan(a.log(), b, h))]
    for other in grads[1:]:
        for x, y in zip(grads[0], other):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-10)


def test_the_scan_keeps_float32_inputs_accurate_over_long_decaying_sequences():
    g = torch.Generator().manual_seed(0)
    log_a = -torch.rand(1000, 4, 8, generator=g) * 8  # units that forget in a step or two: L_t ~ -4,000
    b = torch.randn(1000, 4, 8, generator=g)
    h0 = torch.zeros(4, 8)
    expected = linear_steps(log_a.double().exp(), b.double(), h0.double())
    torch.testing.assert_close(log_scan(log_a, b, h0).double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("log_space", [False, True], ids=["cpu-loop", "log-scan"])
@pytest.mark.parametrize("cls", PARALLEL, ids=lambda c: c.__name__)
def test_parallel_and_step_forms_agree_in_outputs_and_gradients(cls, log_space):
    torch.manual_seed(0)
    m = cls(5, 7).double()
    m.log_space = log_space
    x = torch.randn(41, 3, 5, dtype=torch.float64, requires_grad=True)
    results = []
    for parallel in (True, False):
        m.parallel = parallel
        y, h_n = m(x)
        grads = torch.autograd.grad((y * torch.linspace(-1, 1, 7, dtype=torch.float64)).sum(), [x, *m.parameters()])
        results.append((y, h_n, grads))
    (y1, h1, g1), (y2, h2, g2) = results
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-10)
    torch.testing.assert_close(h1, h2, rtol=0, atol=1e-10)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_each_cell_counts_its_parameters_as_its_docstring_says(cls):
    F, H = 6, 8
    m = cls(F, H)
    expected = {
        MinGRU: 2 * H * (F + 1),
        MinLSTM: 3 * H * (F + 1),
        LRU: 2 * H * F + 2 * H * H + H * F + 3 * H,
        IndRNN: H * F + 2 * H,
        ExpRNN: H * F + H * (H - 1) // 2 + H,
    }[cls]
    assert m.param_count() == expected == sum(p.numel() for p in m.parameters())


def test_expRNN_keeps_its_recurrent_matrix_orthogonal_after_a_training_step():
    torch.manual_seed(0)
    m = ExpRNN(4, 6).double()
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    m(torch.randn(10, 2, 4, dtype=torch.float64))[0].pow(2).sum().backward()
    opt.step()
    W = m.recurrent_matrix()
    torch.testing.assert_close(W.t() @ W, torch.eye(6, dtype=torch.float64), rtol=0, atol=1e-10)


def test_the_LRU_is_stable_by_construction():
    torch.manual_seed(0)
    m = LRU(3, 16)
    with torch.no_grad():
        m.nu_log.fill_(-10.0)  # |lambda| = exp(-exp(nu)) -> 1 from below, never above
    assert (m.eigenvalues().abs() < 1).all()


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_the_step_form_records_every_named_activation(cls):
    m = cls(4, 5, parallel=False)
    m.record = True
    m(torch.randn(9, 2, 4))
    assert set(m.recorded) == set(cls.RECORDED)
    assert all(v.shape == (2, 9, 5) for v in m.recorded.values())


# --- inside RecurrentNet: every task's model, padded batches, both directions --------------------

from torch import nn  # noqa: E402

from conftest import tiny_raw  # noqa: E402
from rnnlab.config import resolve_config  # noqa: E402
from rnnlab.contract import ModelSpec  # noqa: E402
from rnnlab.registry import MODELS  # noqa: E402

SPEC = ModelSpec(num_outputs=3, vocab_size=12, max_len=7)
NEW = ["mingru", "minlstm", "lru", "indrnn", "exprnn"]


def build(name: str, **params):
    torch.manual_seed(0)
    cfg = resolve_config({**tiny_raw(), "model": {"name": name, "hidden_size": 6, **params}}).model
    return MODELS.build(cfg, SPEC)


def mixed_batch(lengths=(7, 3, 5, 1, 7, 2)):
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor(lengths)
    tokens = torch.randint(1, 12, (len(lengths), int(lengths.max())), generator=g)
    tokens[torch.arange(tokens.size(1)) >= lengths.unsqueeze(1)] = 0
    return tokens, lengths


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("name", ["mingru", "minlstm", "lru"])
def test_scan_and_steps_agree_in_the_network_on_padded_batches_both_directions(name, bidirectional):
    model = build(name, num_layers=2, bidirectional=bidirectional, pooling="mean").double()
    tokens, lengths = mixed_batch()
    results = []
    for implementation in ("fused", "reference"):
        model.use_implementation(implementation)
        out = model(tokens, lengths)
        grads = torch.autograd.grad(out.pow(2).sum(), list(model.parameters()))
        results.append((out, grads))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=1e-10)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", NEW + ["bimingru", "biminlstm", "bilru"])
def test_each_new_model_trains_ignores_padding_and_round_trips_a_checkpoint(name):
    model = build(name, pooling="max")
    tokens, lengths = mixed_batch()
    targets = torch.tensor([0, 1, 2, 1, 0, 2])
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        loss = nn.functional.cross_entropy(model(tokens, lengths), targets)
        opt.zero_grad()
        loss.backward()
        if not losses:
            missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
            assert not missing, f"no gradient for {missing}"
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7, losses
    model.eval()
    noisy = tokens.clone()
    noisy[torch.arange(tokens.size(1)) >= lengths.unsqueeze(1)] = 5
    torch.testing.assert_close(model(tokens, lengths), model(noisy, lengths))
    clone = build(name, pooling="max")
    clone.load_state_dict(model.state_dict())
    assert torch.equal(clone.eval()(tokens, lengths), model(tokens, lengths))


def test_chrono_init_spreads_the_keep_gates_of_mingru_over_the_lag():
    model = build("mingru", init="chrono", chrono_max=1000)
    keep = 1 - torch.sigmoid(model.layers[0][0].bias[:6])
    assert keep.min() > 0 and keep.max() > 0.99  # memories of up to ~T_max steps


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mingru", "lru"])
def test_train_compare_and_inspect_work_with_the_new_cells(tmp_path, name):
    import json

    from typer.testing import CliRunner

    from rnnlab.cli import app

    def invoke(*args):
        r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "200"})
        return r.exit_code, r.output

    code, out = invoke("train", "copy_" + name, "task.seq_len=12", "model.hidden_size=8", "train.steps=30",
                       "train.eval_every=15", "train.precision=fp32", "--runs-dir", tmp_path, "--no-progress")  # fmt: skip
    assert code == 0, out
    run = next(tmp_path.glob(f"*-copy_{name}"))
    code, out = invoke("inspect", run, "--units", "2")
    assert code == 0, out
    summary = json.loads(next(run.glob("inspect/*/summary.json")).read_text())
    assert summary["cell"] == name
    layer = summary["parameters"]["layers"][0]
    assert layer["total"] == sum(layer["blocks"].values())
    assert summary["parameters"]["model_total"] == json.loads((run / "summary.json").read_text())["params"]
    code, out = invoke("compare", "lstm", name, "--task", "copy", "--seq-len", "12", "--steps", "20", "--hidden", "8",
                       "--runs-dir", tmp_path / "cmp", "--no-progress")  # fmt: skip
    assert code == 0, out
    assert name in out


def test_exprnn_trains_its_orthogonal_part_at_its_own_learning_rate(tmp_path):
    """model.orthogonal_lr_scale (the paper's copy runs: half of train.lr on the skew-symmetric part)."""
    from rnnlab.config import resolve_config
    from rnnlab.engine import Run

    raw = {"name": "t", "seed": 0, "device": "cpu", "task": {"name": "copy", "seq_len": 5, "copy_len": 2, "val_size": 8, "test_size": 8},
           "model": {"name": "exprnn", "hidden_size": 6, "orthogonal_lr_scale": 0.5},
           "train": {"optimizer": "rmsprop", "lr": 2e-4, "batch_size": 4, "steps": 2}}  # fmt: skip
    run = Run(resolve_config(raw), callbacks=[])
    run.setup(tmp_path, None)
    skew = [p for n, p in run.model.named_parameters() if n.endswith(".skew")]
    groups = run.optimizer.param_groups
    assert groups[0]["lr"] == 2e-4 and not any(p is q for p in skew for q in groups[0]["params"])
    (half,) = [g for g in groups if any(p is q for p in skew for q in g["params"])]
    assert half["lr"] == 1e-4 and len(half["params"]) == len(skew) == 1
    run.close()
