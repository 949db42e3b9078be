"""A user's own models without editing rnnlab: `--user-dir`, RNNLAB_USER_DIR and entry points.

    python -m pytest tests/test_plugins.py -q

The shipped example (examples/custom_cell: the chapter's GRU, reset gate before the matrix) trains,
compares and is inspected through the CLI; an installed distribution's `rnnlab.plugins` entry
point is found and used; a broken plugin is reported by its file and line, exit 2.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from rnnlab import plugins
from rnnlab.registry import MODELS, TASKS

from conftest import ROOT, tiny_raw

EXAMPLE = ROOT / "examples" / "custom_cell"


@pytest.fixture(autouse=True)
def clean_plugins(monkeypatch, tmp_path):
    """Every test starts and ends with no plugin loaded: registries, imported modules and the
    environment as they were."""
    monkeypatch.delenv(plugins.ENV, raising=False)  # also undoes what --user-dir puts there
    MODELS.names(), TASKS.names()  # the built-ins, before the snapshot
    saved = (dict(MODELS._entries), dict(TASKS._entries), dict(plugins._roots), plugins._entry_points_loaded, set(sys.modules))
    yield
    MODELS._entries, TASKS._entries = saved[0], saved[1]
    new_roots = [root for root in plugins._roots if root not in saved[2]] + [tmp_path]
    for name in set(sys.modules) - saved[4]:  # the plugins' modules only (not, say, matplotlib's)
        file = Path(getattr(sys.modules[name], "__file__", None) or "/").resolve()
        if any(file == root or root in file.parents for root in new_roots):
            del sys.modules[name]
    plugins._roots.clear()
    plugins._roots.update(saved[2])
    plugins._entry_points_loaded = saved[3]


def _example_overrides() -> list[str]:
    return ["task.seq_len=4", "task.val_size=40", "task.test_size=40", "model.hidden_size=8", "train.steps=12", "train.eval_every=6"]


@pytest.mark.slow
def test_the_example_trains_is_listed_and_inspected_through_the_cli(cli, tmp_path):
    code, out = cli("train", EXAMPLE / "config.yaml", *_example_overrides(), "--user-dir", EXAMPLE, "--runs-dir", tmp_path, "--no-progress")
    assert code == 0, out
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["model"] == "mycell"
    code, out = cli("list", "--user-dir", EXAMPLE)
    assert code == 0 and "mycell" in out and "plugin " in out and "mycell.py" in out, out
    code, out = cli("inspect", run, "--user-dir", EXAMPLE)
    assert code == 0, out
    (shot,) = (run / "inspect").iterdir()
    assert (shot / "heatmap_reset_gate.png").is_file()


def test_without_the_plugin_the_run_names_the_fix(cli, tmp_path):
    code, out = cli("train", EXAMPLE / "config.yaml", *_example_overrides(), "--runs-dir", tmp_path, "--no-progress")
    assert code == 2 and "unknown model 'mycell'" in out and "--user-dir" in out
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_the_example_cell_is_the_chapters_gru():
    """h~_t = tanh(W_h [r_t * h_{t-1}, x_t] + b): the reset before the matrix, unlike nn.GRU."""
    plugins.load_user_dirs([str(EXAMPLE)])
    from custom_cell.mycell import ResetBeforeGRU

    torch.manual_seed(0)
    cell = ResetBeforeGRU(3, 4).double()
    x = torch.randn(5, 2, 3, dtype=torch.double)  # (T, B, F)
    out, h_n = cell(x)
    (w_ir, w_iz, w_in), (w_hr, w_hz, w_hn) = cell.weight_ih_l0.chunk(3), cell.weight_hh_l0.chunk(3)
    (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = cell.bias_ih_l0.chunk(3), cell.bias_hh_l0.chunk(3)
    h = torch.zeros(2, 4, dtype=torch.double)
    for t in range(5):
        r = torch.sigmoid(x[t] @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
        z = torch.sigmoid(x[t] @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
        n = torch.tanh(torch.cat([r * h, x[t]], -1) @ torch.cat([w_hn, w_in], 1).T + b_in + b_hn)
        h = (1 - z) * n + z * h
        assert torch.allclose(out[t], h, atol=1e-12)
    gru = torch.nn.GRU(3, 4).double()
    gru.load_state_dict(cell.state_dict())
    assert not torch.allclose(gru(x)[0], out, atol=1e-3)  # really another cell than PyTorch's


@pytest.mark.slow
def test_compare_with_jobs_gives_the_plugin_to_its_worker_processes(cli, tmp_path):
    code, out = cli(
        "compare", "lstm", "mycell", "--task", "copy", "--seq-len", "4", "--steps", "6", "--hidden", "8", "--jobs", "2",
        "task.val_size=20", "task.test_size=20", "train.eval_every=3", "--user-dir", EXAMPLE, "--runs-dir", tmp_path, "--no-progress",
    )  # fmt: skip
    assert code == 0, out
    (parent,) = tmp_path.iterdir()
    results = (parent / "results.csv").read_text()
    assert "mycell" in results and "lstm" in results


def _install_entry_point_dist(root, body: str):
    """A distribution 'rnnlab-ep-demo' as pip would leave it in site-packages: a package and its
    .dist-info with an `rnnlab.plugins` entry point."""
    (root / "rnnlab_ep_demo").mkdir()
    (root / "rnnlab_ep_demo" / "__init__.py").write_text(textwrap.dedent(body))
    info = root / "rnnlab_ep_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rnnlab-ep-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rnnlab.plugins]\nepcell = rnnlab_ep_demo\n")


def test_an_installed_entry_point_registers_its_model(cli, tmp_path, monkeypatch, write_config):
    site = tmp_path / "site"
    site.mkdir()
    _install_entry_point_dist(site, '''
        from rnnlab.models import RecurrentConfig, RecurrentNet
        from rnnlab.registry import register_model

        @register_model("epcell", config=RecurrentConfig)
        def epcell(cfg, spec):
            """An LSTM, installed as a plugin."""
            return RecurrentNet(cfg, spec, cell="lstm")
    ''')
    monkeypatch.syspath_prepend(str(site))
    plugins._entry_points_loaded = False  # a new process would look again
    code, out = cli("list")
    assert code == 0 and "epcell" in out and "entry point epcell (rnnlab-ep-demo 0.1)" in out, out
    code, out = cli("train", write_config({**tiny_raw(), "model": {"name": "epcell", "hidden_size": 8}}), "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 0, out
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "summary.json").read_text())["model"] == "epcell"


@pytest.mark.parametrize(
    "body, line, what",
    [
        ("import torch\n\nraise RuntimeError('boom')\n", 3, "RuntimeError: boom"),
        ("x = 1\ndef f(:\n    pass\n", 2, "SyntaxError"),
        ("from rnnlab.models import RecurrentConfig\nfrom rnnlab.registry import register_model\n"
         "register_model('lstm', config=RecurrentConfig)(lambda cfg, spec: None)\n", 3, "registered twice"),
    ],
    ids=["raises", "syntax", "takes a built-in name"],
)
def test_a_broken_plugin_names_its_file_and_line(cli, tmp_path, body, line, what):
    plugin = tmp_path / "broken.py"
    plugin.write_text(body)
    code, out = cli("list", "--user-dir", plugin)
    assert code == 2, out
    assert f"broken.py, line {line}" in out and what in out and "Traceback" not in out, out


def test_a_plugin_that_fails_inside_training_names_its_line(cli, tmp_path, monkeypatch, write_config):
    plugin = tmp_path / "faulty.py"
    plugin.write_text(textwrap.dedent('''
        from rnnlab.models import RecurrentConfig, RecurrentNet
        from rnnlab.registry import register_model

        class Faulty(RecurrentNet):
            def forward(self, inputs, lengths=None):
                return inputs.sum() @ self.head.weight  # line 7: a shape error

        @register_model("faulty", config=RecurrentConfig)
        def faulty(cfg, spec):
            return Faulty(cfg, spec, cell="lstm")
    '''))
    monkeypatch.setenv(plugins.ENV, str(plugin))  # the environment variable alone
    cfg = write_config({**tiny_raw(), "model": {"name": "faulty", "hidden_size": 8}})
    code, out = cli("train", cfg, "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 2, out
    assert "faulty.py, line 7, in forward" in out and "Traceback" not in out, out


def test_a_user_dir_that_is_not_a_package_says_what_to_do(cli, tmp_path):
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "mine.py").write_text("")
    code, out = cli("list", "--user-dir", tmp_path / "cells")
    assert code == 2 and "no __init__.py" in out and "Traceback" not in out
    code, out = cli("list", "--user-dir", tmp_path / "nowhere")
    assert code == 2 and "no such directory" in out


@pytest.mark.slow
def test_exporting_a_cell_that_loops_over_steps_is_refused_and_leaves_the_run_as_it_was(cli, tmp_path, monkeypatch):
    """Tracing unrolls a Python loop over time steps to the traced length: the export's own check
    catches it (exit 1, a fault) and removes what it wrote."""
    from imdb_fixtures import separable_reviews, write_imdb_archive
    from test_imdb_task import imdb_args

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews=separable_reviews(8))
    args = imdb_args(archive, "train.epochs=1", "model.name=mycell", "model.bidirectional=false")
    code, out = cli("train", *args, "--user-dir", EXAMPLE, "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 0, out
    (run,) = (tmp_path / "runs").iterdir()
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    code, out = cli("export", run, "--format", "torchscript", "--user-dir", EXAMPLE)
    assert code == 1 and "on batches of other sizes and lengths" in out and "Python loop over time steps" in out, out
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
