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
from rnnlab.models.scan import linear_scan, linear_steps

PARALLEL = [MinGRU, MinLSTM, LRU]
ALL = [MinGRU, MinLSTM, LRU, IndRNN, ExpRNN]


@pytest.mark.parametrize("T", [1, 2, 3, 8, 37, 1000])
def test_the_scan_equals_the_steps_in_float64(T):
    g = torch.Generator().manual_seed(T)
    a = torch.rand(T, 2, 5, generator=g, dtype=torch.float64)
    b = torch.randn(T, 2, 5, generator=g, dtype=torch.float64)
    h0 = torch.randn(2, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(linear_scan(a, b, h0), linear_steps(a, b, h0), rtol=0, atol=1e-10)


def test_the_scan_handles_complex_coefficients():
    g = torch.Generator().manual_seed(0)
    a = torch.polar(torch.rand(50, 3, 4, generator=g, dtype=torch.float64), torch.rand(50, 3, 4, generator=g, dtype=torch.float64) * 6)
    b = torch.complex(torch.randn(50, 3, 4, generator=g, dtype=torch.float64), torch.randn(50, 3, 4, generator=g, dtype=torch.float64))
    h0 = torch.zeros(3, 4, dtype=torch.complex128)
    torch.testing.assert_close(linear_scan(a, b, h0), linear_steps(a, b, h0), rtol=0, atol=1e-10)


@pytest.mark.parametrize("cls", PARALLEL, ids=lambda c: c.__name__)
def test_parallel_and_step_forms_agree_in_outputs_and_gradients(cls):
    torch.manual_seed(0)
    m = cls(5, 7).double()
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
