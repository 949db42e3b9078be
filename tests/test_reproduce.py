"""Results as code: experiments declared once, rerun over seeds, checked for staleness, rendered.

    python -m pytest tests/test_reproduce.py -q
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rnnlab.cli import app
from rnnlab.experiments import load_experiments, render_files, render_text

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.output


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_repository_declares_at_least_20_experiments_each_with_its_wall_time(monkeypatch):
    monkeypatch.chdir(ROOT)
    experiments = load_experiments(ROOT)
    assert len(experiments) >= 20
    code, out = invoke("reproduce", "--list")
    assert code == 0, out
    for name, exp in experiments.items():
        assert name in out
        assert exp.minutes > 0
    assert "expected wall time for all" in out


def test_no_artifact_on_main_is_stale(monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out = invoke("reproduce", "--check")
    assert code == 0, out
    assert "stale" not in out.replace("0 stale", "")


def test_the_committed_pages_equal_their_rendering_from_the_artifacts():
    experiments = load_experiments(ROOT)
    for path in render_files(ROOT):
        text = path.read_text(encoding="utf-8")
        assert render_text(text, experiments, ROOT, path.name) == text, f"{path} is out of date: run rnnlab reproduce --render"


def test_every_artifact_was_written_by_reproduce_from_a_committed_tree_of_this_history():
    """Each folder of docs/results is a declared experiment's, made from a clean tree whose commit
    main descends from (a figure is a folder of its own, drawn from those)."""
    experiments = load_experiments(ROOT)
    results = ROOT / "docs" / "results"
    folders = sorted(p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "figures")
    assert {p.name for p in folders} <= set(experiments), "folders of no declared experiment"
    history = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True)
    for folder in folders:
        prov = json.loads((folder / "provenance.json").read_text())
        assert prov["clean_tree"] and not prov["allowed_dirty"], f"{folder.name}: made from uncommitted changes"
        if history.returncode == 0 and history.stdout.strip() == "false":
            ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", prov["commit"], "HEAD"], cwd=ROOT, capture_output=True)
            assert ancestor.returncode == 0, f"{folder.name}: commit {prov['commit'][:7]} is not in this history"


# --- a tiny checkout of our own ----------------------------------------------------------------

TINY = {
    "seed": 0,
    "task": {"name": "long_dependency", "seq_len": 6, "num_classes": 4},
    "model": {"name": "lstm", "hidden_size": 8},
    "train": {"lr": 0.01, "batch_size": 8, "steps": 12, "eval_every": 6},
}


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _commit(root: Path, message: str) -> None:
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", message)


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "lab"
    (root / "experiments").mkdir(parents=True)
    (root / "cfg").mkdir()
    (root / "cfg" / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    (root / "experiments" / "tiny.yaml").write_text(yaml.safe_dump({
        "title": "Tiny LSTM and GRU", "page": "memory", "seeds": 2, "minutes": 0.5,
        "runs": {"lstm": "cfg/tiny.yaml task.num_classes=2 task.seq_len=3 train.lr=0.1",  # reaches 99%: steps_to_99
                 "gru": "cfg/tiny.yaml model.name=gru"},
        "report": ["test.accuracy", "steps"],
    }))  # fmt: skip
    (root / "rnnlab").symlink_to(ROOT / "rnnlab")  # reproduce runs the checkout's own code, as in a real clone
    (root / "docs").mkdir()
    (root / "docs" / "memory.md").write_text("# Memory\n\nBefore.\n\n<!-- rnnlab:table tiny -->\nold\n<!-- rnnlab:end -->\n\nAfter.\n")
    _git(root, "init", "-q")
    _commit(root, "tiny")
    monkeypatch.chdir(root)
    return root


def _metrics(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


@pytest.mark.slow
def test_reproduce_writes_per_seed_artifacts_an_aggregate_and_provenance_and_reruns_identically(checkout):
    code, out = invoke("reproduce", "tiny", "--jobs", "1", "--runs-dir", checkout / "runs")
    assert code == 0, out
    art = checkout / "docs" / "results" / "tiny"
    for arm in ("lstm", "gru"):
        for seed in (0, 1):
            folder = art / arm / f"seed-{seed}"
            for name in ("config.yaml", "summary.json", "metrics.jsonl", "run.json"):
                assert (folder / name).is_file(), folder / name
            assert yaml.safe_load((folder / "config.yaml").read_text())["seed"] == seed
            assert json.loads((folder / "run.json").read_text())["wall_s"] > 0
            figures = json.loads((folder / "figures.json").read_text())
            reached = [r for r in _metrics(folder) if r["split"] == "val" and r["accuracy"] >= 0.99]
            assert figures.get("steps_to_99") == (reached[0]["step"] if reached else None)  # the first validation at 99%
            assert (arm == "lstm") == ("steps_to_99" in figures)
    agg = json.loads((art / "aggregate.json").read_text())
    assert set(agg) == {"lstm", "gru"}
    stats = agg["lstm"]["test.accuracy"]
    assert set(stats) == {"mean", "std", "min", "max", "n"} and stats["n"] == 2
    assert stats["min"] <= stats["mean"] <= stats["max"]
    prov = json.loads((art / "provenance.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    assert prov["commit"] == head and prov["clean_tree"] is True and prov["allowed_dirty"] is False
    assert {"model", "amx", "avx512_bf16", "cores"} <= set(prov["cpu"])
    assert prov["torch"] and prov["python"] and prov["date"]
    first = {p: _metrics(p.parent) for p in art.glob("*/seed-*/metrics.jsonl")}

    # The same experiment again, at one thread: the same per-seed metrics.
    code, out = invoke("reproduce", "tiny", "--runs-dir", checkout / "runs")
    assert code == 0, out
    assert {p: _metrics(p.parent) for p in art.glob("*/seed-*/metrics.jsonl")} == first

    # The page's marked block is rendered from the artifact, the prose around it kept.
    code, out = invoke("reproduce", "--render")
    assert code == 0, out
    page = (checkout / "docs" / "memory.md").read_text()
    assert page.startswith("# Memory\n\nBefore.\n") and page.endswith("<!-- rnnlab:end -->\n\nAfter.\n")
    assert "old" not in page and "| lstm |" in page and "± " in page and "over 2 seeds" in page

    # Nothing stale; then one config changes and exactly that experiment is reported, by key.
    assert invoke("reproduce", "--check")[0] == 0
    cfg = checkout / "cfg" / "tiny.yaml"
    cfg.write_text(cfg.read_text().replace("lr: 0.01", "lr: 0.02"))
    code, out = invoke("reproduce", "--check")
    assert code == 1
    assert "tiny: cfg/tiny.yaml train.lr 0.01 → 0.02" in out
    assert "rnnlab reproduce tiny" in flat(out)


def test_reproduce_refuses_a_dirty_tree_unless_allowed(checkout):
    (checkout / "cfg" / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "seed": 1}))
    code, out = invoke("reproduce", "tiny")
    assert code == 2
    assert "uncommitted changes" in flat(out) and "--allow-dirty" in flat(out)
    assert not (checkout / "docs" / "results").exists()


def test_reproduce_refuses_to_record_code_other_than_the_checkouts(checkout):
    (checkout / "rnnlab").unlink()
    _commit(checkout, "no package")
    code, out = invoke("reproduce", "tiny")
    assert code == 2
    assert "not the checkout's" in flat(out) and "pip install -e ." in flat(out)


def test_an_unknown_experiment_is_named_with_a_suggestion(checkout):
    code, out = invoke("reproduce", "tinny")
    assert code == 2
    assert "unknown experiment(s): tinny (did you mean tiny?)" in flat(out)


@pytest.mark.slow
def test_an_ensemble_is_chosen_on_one_seeds_validation_and_reported_on_the_other_seeds_test(checkout, monkeypatch):
    """Issue 26, point 6: the choice among arms and ensembles reads seed 0's validation reviews only;
    the figure it reports is the chosen candidate's test accuracy on the seeds whose runs it never saw."""
    from imdb_fixtures import separable_reviews, write_imdb_archive

    monkeypatch.setenv("XDG_CACHE_HOME", str(checkout.parent / "cache"))
    monkeypatch.setenv("HOME", str(checkout.parent / "home"))  # no archive in ~/.cache/rnnlab
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    # Where a checkout's neighbour keeps it (../shared/data): reproduce finds it and tells the jobs,
    # and the ensembles, scored in reproduce's own process, must read it from there too.
    write_imdb_archive(checkout.parent / "shared" / "data" / "aclImdb_v1.tar.gz", reviews=separable_reviews())
    common = ("task.val_size=10 train.epochs=3 train.eval_every=null train.early_stopping=null "
              "train.lr=0.02 train.batch_size=8 model.embedding_dim=8")  # fmt: skip
    (checkout / "experiments" / "tiny.yaml").write_text(yaml.safe_dump({
        "title": "Tiny ensemble", "page": "memory", "seeds": 2, "minutes": 0.5, "data": ["imdb"],
        "runs": {"bilstm": f"{ROOT}/configs/imdb_bilstm.yaml {common} model.hidden_size=8 task.max_len=50 task.vocab_size=30",
                 "bow": f"{ROOT}/configs/imdb_bow.yaml {common} model.buckets=500"},
        "ensembles": {"both": ["bilstm", "bow"]},
        "report": ["val.accuracy", "test.accuracy"],
    }))  # fmt: skip
    _commit(checkout, "ensemble")
    code, out = invoke("reproduce", "tiny", "--runs-dir", checkout / "runs")
    assert code == 0, out
    art = checkout / "docs" / "results" / "tiny"
    agg = json.loads((art / "aggregate.json").read_text())
    assert set(agg) == {"bilstm", "bow", "both"} and agg["both"]["test.accuracy"]["n"] == 2
    choice = json.loads((art / "choice.json").read_text())
    seed0 = {arm: json.loads((art / arm / "seed-0" / "figures.json").read_text())["val.accuracy"] for arm in agg}
    assert choice["candidates"] == seed0 and choice["chosen"] == max(seed0, key=lambda a: seed0[a])
    assert choice["report_seeds"] == [1]
    seed1_test = json.loads((art / choice["chosen"] / "seed-1" / "figures.json").read_text())["test.accuracy"]
    assert choice["test.accuracy"]["mean"] == seed1_test and choice["test.accuracy"]["n"] == 1
    assert invoke("reproduce", "--render")[0] == 0
    page = flat((checkout / "docs" / "memory.md").read_text())
    assert "| both |" in page and f"Chosen on seed 0's validation reviews alone: **{choice['chosen']}**" in page
    assert "seed 1, whose runs took no part in the choice" in page


def test_an_rnnlab_command_as_a_script_gives_its_summary_figures_to_the_table(checkout):
    """probe-gradients as an experiment: the figures come from the summary.json of its own run."""
    (checkout / "experiments" / "probe.yaml").write_text(yaml.safe_dump({
        "title": "Probe", "page": "memory", "seeds": 1, "minutes": 0.1,
        "script": "rnnlab probe-gradients --no-progress --trials 2", "report": ["models.rnn.ratio_first_last"],
    }))  # fmt: skip
    (checkout / "docs" / "memory.md").write_text("<!-- rnnlab:table probe -->\n<!-- rnnlab:end -->\n")
    _commit(checkout, "probe")
    code, out = invoke("reproduce", "probe", "--runs-dir", checkout / "runs")
    assert code == 0, out
    folder = checkout / "docs" / "results" / "probe" / "script"
    summary = json.loads((folder / "summary.json").read_text())
    ratio = summary["models"]["rnn"]["ratio_first_last"]
    assert summary["trials"] == 2 and 0 < ratio < 1e-3  # the vanishing gradient, t = 0 against t = 49
    assert json.loads((folder / "figures.json").read_text())["models.rnn.ratio_first_last"] == ratio
    assert (folder / "plots" / "gradient_norms.png").stat().st_size > 1000  # the figure the page links to
    assert invoke("reproduce", "--render")[0] == 0
    assert f"| script | {ratio:.2e} |" in (checkout / "docs" / "memory.md").read_text()


def test_a_benchmark_script_gives_one_row_per_model_and_keeps_what_it_draws(checkout):
    """inspect_gates' shape: a script prints ROW.KEY=value, draws into $RNNLAB_ARTIFACT_DIR, and the
    page shows one row per declared row, with its files kept in the artifact."""
    (checkout / "bench").mkdir()
    (checkout / "bench" / "rows.py").write_text(
        "import os, pathlib\n"
        "out = pathlib.Path(os.environ['RNNLAB_ARTIFACT_DIR']); out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'gate.png').write_bytes(b'png')\n"
        "print('lstm.keep=0.94'); print('lstm.units=23'); print('gru.keep=0.5'); print('gru.units=7')\n")
    (checkout / "experiments" / "gates.yaml").write_text(yaml.safe_dump({
        "title": "Gates", "page": "memory", "minutes": 0.1, "script": "bench/rows.py",
        "rows": ["lstm", "gru"], "report": ["keep", "units"], "columns": {"units": "units above 0.9"},
    }))  # fmt: skip
    (checkout / "docs" / "memory.md").write_text("<!-- rnnlab:table gates -->\n<!-- rnnlab:end -->\n")
    _commit(checkout, "gates")
    code, out = invoke("reproduce", "gates", "--runs-dir", checkout / "runs")
    assert code == 0, out
    assert (checkout / "docs" / "results" / "gates" / "script" / "files" / "gate.png").read_bytes() == b"png"
    assert invoke("reproduce", "--render")[0] == 0
    page = (checkout / "docs" / "memory.md").read_text()
    assert "|  | keep | units above 0.9 |" in page
    assert "| lstm | 0.94 | 23 |" in page and "| gru | 0.50 | 7 |" in page


def test_rows_belong_to_scripts_only():
    from rnnlab.experiments import Experiment

    with pytest.raises(ValueError, match="rows are a script's"):
        Experiment(title="t", page="memory", minutes=1, runs={"lstm": "cfg.yaml"}, rows=["lstm"])


@pytest.mark.slow
def test_a_figure_of_several_experiments_is_drawn_from_their_aggregates(checkout):
    """Issue 29's "accuracy against T per cell": one point per experiment and arm, mean ± std over seeds."""
    base = yaml.safe_load((checkout / "experiments" / "tiny.yaml").read_text())
    for t in (3, 6):
        (checkout / "experiments" / f"lag{t}.yaml").write_text(yaml.safe_dump({
            **base, "title": f"lag {t}", "runs": {arm: f"{spec} task.seq_len={t}" for arm, spec in base["runs"].items()}}))  # fmt: skip
    (checkout / "experiments" / "figures").mkdir()
    (checkout / "experiments" / "figures" / "lags.yaml").write_text(yaml.safe_dump({
        "title": "Recall against the lag", "y": "test.accuracy", "ylabel": "test accuracy",
        "x": {"lag3": 3, "lag6": 6}, "xlabel": "T", "logx": True,
    }))  # fmt: skip
    (checkout / "docs" / "memory.md").write_text("<!-- rnnlab:figure lags -->\n<!-- rnnlab:end -->\n")
    _commit(checkout, "lags")
    assert invoke("reproduce", "--render")[0] == 0
    assert "not yet drawn" in (checkout / "docs" / "memory.md").read_text()
    assert not (checkout / "docs" / "results" / "figures" / "lags.png").exists()
    _commit(checkout, "rendered")
    code, out = invoke("reproduce", "lag3", "lag6", "--runs-dir", checkout / "runs")
    assert code == 0, out
    from rnnlab.experiments import figure_series, load_figures

    series = figure_series(load_figures(checkout)["lags"], checkout)
    agg = {t: json.loads((checkout / "docs" / "results" / f"lag{t}" / "aggregate.json").read_text()) for t in (3, 6)}
    assert set(series) == {"lstm", "gru"}
    assert series["lstm"][0] == [3, 6] and series["lstm"][1] == [agg[t]["lstm"]["test.accuracy"]["mean"] for t in (3, 6)]
    assert invoke("reproduce", "--render")[0] == 0
    page = (checkout / "docs" / "memory.md").read_text()
    assert "![Recall against the lag](results/figures/lags.png)" in page and "from lag3, lag6." in page
    assert (checkout / "docs" / "results" / "figures" / "lags.png").stat().st_size > 5000
