"""`rnnlab runs` and `rnnlab plot`: listing, filtering, sorting, damaged folders, liveness, figures, legends.

    python -m pytest tests/test_runs_and_plot.py

Run directories are written by hand (config.yaml, summary.json, metrics.jsonl), so the tests
take no training; one test trains a real 30-step run through the CLI for realism.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
import yaml
from rich.console import Console

import rnnlab.commands.runs as runs_mod
from rnnlab.commands.plot import legend_labels, plot
from rnnlab.commands.runs import STATUSES, collect_runs, runs
from rnnlab.errors import UserError

_ROOT = Path(__file__).resolve().parents[1]
_OLD = time.time() - 3 * 3600  # well past the stale limit


def _console(width: int = 120) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=width, color_system=None, highlight=False), buf


def _config(cell: str = "lstm", name: str | None = None, **sections: dict[str, Any]) -> dict[str, Any]:
    cfg = {
        "name": name or f"long_dependency_{cell}",
        "seed": 0,
        "device": "cpu",
        "task": {"name": "long_dependency", "seq_len": 50, "num_classes": 10},
        "model": {"name": cell, "hidden_size": 32, "init": "chrono"},
        "train": {"lr": 0.01, "steps": 100, "eval_every": 50},
    }
    for section, values in sections.items():
        cfg[section] = {**cfg[section], **values} if isinstance(cfg.get(section), dict) else values
    return cfg


def _metrics(accs: list[float], every: int = 50) -> list[dict[str, Any]]:
    rows = []
    for i, acc in enumerate(accs, start=1):
        step = i * every
        rows.append({"step": step, "epoch": 0, "split": "train", "loss": 2.0 / i, "accuracy": acc * 0.9,
                     "lr": 0.01, "grad_norm": 1.0, "elapsed_s": 0.1 * i})
        rows.append({"step": step, "epoch": 0, "split": "val", "loss": 2.1 / i, "accuracy": acc,
                     "lr": 0.01, "grad_norm": None, "elapsed_s": 0.1 * i})
    return rows


def _make_run(
    parent: Path,
    dirname: str,
    *,
    model: str = "lstm",
    status: str = "completed",
    accs: tuple[float, ...] = (0.3, 0.6),
    test: float | None = 0.62,
    params: int | None = 6090,
    wall: float | None = 0.6,
    config: dict[str, Any] | None = None,
    task: str = "long_dependency",
) -> Path:
    run = parent / dirname
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config or _config(model), sort_keys=False))
    rows = _metrics(list(accs))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary: dict[str, Any] = {"status": status, "task": task, "model": model, "params": params, "device": "cpu",
                               "world_size": 1, "seed": 0, "run_dir": str(run), "steps": 50 * len(accs),
                               "epochs": 0, "wall_time_s": wall, "chance": 0.1}
    if status != "running":
        summary["val"] = {"step": 50 * len(accs), "loss": 0.5, "accuracy": max(accs)} if accs else None
        summary["test"] = {"loss": 0.4, "accuracy": test} if test is not None else None
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"not really a checkpoint")
    (run / "plots").mkdir()
    return run


def _make_compare(parent: Path, dirname: str = "20260102-100000-compare-lstm-gru") -> Path:
    cmp_dir = parent / dirname
    _make_run(cmp_dir, "20260102-100001-lstm-seed0", model="lstm", config=_config("lstm", "lstm-seed0"), accs=(0.4, 0.7), test=0.71)
    _make_run(cmp_dir, "20260102-100002-gru-seed0", model="gru",
              config=_config("gru", "gru-seed0", model={"init": "forget_bias"}), accs=(0.5, 1.0), test=1.0)
    (cmp_dir / "results.csv").write_text("model,seq_len,seed\nlstm,50,0\ngru,50,0\n")
    (cmp_dir / "plots").mkdir()
    (cmp_dir / "summary.json").write_text(json.dumps(
        {"status": "completed", "task": "long_dependency", "models": ["lstm", "gru"], "wall_time_s": 3.2, "aggregate": []}))
    return cmp_dir


def _age(path: Path, when: float = _OLD) -> None:
    """Every file of a run looks untouched since `when`."""
    for p in [path, *path.rglob("*")]:
        os.utime(p, (when, when))


def _by_path(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in rows}


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """runs/ with a plain run, a comparison of two runs and a probe with one training run inside."""
    root = tmp_path / "runs"
    _make_run(root, "20260101-090000-long_dependency_lstm", accs=(0.2, 0.59), test=0.625)
    _make_compare(root)
    probe = root / "20260103-080000-probe_gradients"
    probe.mkdir()
    (probe / "config.yaml").write_text(yaml.safe_dump({"name": "probe_gradients", "task": {"name": "gradient_probe", "models": ["rnn", "gru"]}}))
    (probe / "gradients.csv").write_text("model,t\n")
    (probe / "summary.json").write_text(json.dumps(
        {"status": "completed", "task": "gradient_probe", "models": {"rnn": {}, "gru": {}}, "wall_time_s": 7.0}))
    _make_run(probe / "training", "20260103-080001-rnn-trained", model="rnn", accs=(0.1, 0.11), test=0.1, params=870)
    return root


# --- rnnlab runs ----------------------------------------------------------------------------------


def test_lists_nested_runs_and_groups(lab: Path) -> None:
    rows = _by_path(collect_runs(lab))
    assert set(rows) == {
        "20260101-090000-long_dependency_lstm",
        "20260102-100000-compare-lstm-gru",
        "20260102-100000-compare-lstm-gru/20260102-100001-lstm-seed0",
        "20260102-100000-compare-lstm-gru/20260102-100002-gru-seed0",
        "20260103-080000-probe_gradients",
        "20260103-080000-probe_gradients/training/20260103-080001-rnn-trained",
    }
    plain = rows["20260101-090000-long_dependency_lstm"]
    assert plain["kind"] == "run" and plain["name"] == "long_dependency_lstm"
    assert plain["start"] == "2026-01-01T09:00:00"
    assert (plain["task"], plain["model"], plain["params"], plain["status"], plain["steps"]) == ("long_dependency", "lstm", 6090, "completed", 100)
    assert (plain["metric"], plain["val"], plain["test"], plain["wall_time_s"]) == ("accuracy", 0.59, 0.625, 0.6)
    group = rows["20260102-100000-compare-lstm-gru"]
    assert (group["kind"], group["models"], group["model"], group["status"]) == ("compare", ["lstm", "gru"], "lstm,gru", "completed")
    probe = rows["20260103-080000-probe_gradients"]
    assert (probe["kind"], probe["task"], probe["models"]) == ("probe", "gradient_probe", ["rnn", "gru"])
    assert rows["20260103-080000-probe_gradients/training/20260103-080001-rnn-trained"]["model"] == "rnn"


def test_table_fits_120_columns_and_counts(lab: Path) -> None:
    console, buf = _console(120)
    shown = runs(lab, console=console)
    text = buf.getvalue()
    assert len(shown) == 6
    assert max(len(line) for line in text.splitlines()) <= 120
    assert f"4 runs, 1 comparison, 1 probe under {lab}" in " ".join(text.split())
    # Chronological order shows a group's runs indented under it.
    assert "  20260102-100001-lstm-seed0" in text and "59.0%" in text


def test_filters(lab: Path) -> None:
    console, buf = _console()
    shown = runs(lab, model="gru", console=console)
    # The comparison and the probe include a GRU, so they match too.
    assert {r["path"].split("/")[-1] for r in shown} == {
        "20260102-100002-gru-seed0", "20260102-100000-compare-lstm-gru", "20260103-080000-probe_gradients"}
    assert "matching --model gru" in buf.getvalue()
    assert {r["kind"] for r in runs(lab, task="gradient_probe", console=_console()[0])} == {"probe"}
    assert runs(lab, status="failed", console=_console()[0]) == []
    console, buf = _console()
    assert runs(lab, task="imdb", console=console) == []
    text = " ".join(buf.getvalue().split())
    assert "no runs match --task imdb" in text and "tasks here: gradient_probe, long_dependency" in text
    with pytest.raises(UserError) as e:
        runs(lab, status="done", console=console)
    assert all(s in str(e.value) for s in STATUSES)


def test_sorting_puts_missing_values_last(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _make_run(root, "20260101-000001-a", accs=(0.5,), test=0.5, params=100, wall=5.0)
    _make_run(root, "20260101-000002-b", accs=(0.9,), test=None, params=None, wall=1.0)
    _make_run(root, "20260101-000003-c", accs=(), test=None, params=300, wall=None)
    _make_run(root, "20260101-000004-d", accs=(0.7,), test=0.9, params=200, wall=3.0)
    con = _console()[0]
    names = lambda key: [r["name"] for r in runs(root, sort=key, console=con)]  # noqa: E731
    assert names("start") == ["a", "b", "c", "d"]
    assert names("val") == ["b", "d", "a", "c"]
    assert names("test") == ["d", "a", "b", "c"]
    assert names("params") == ["c", "d", "a", "b"]
    assert names("wall_time") == ["a", "d", "b", "c"]
    assert names("name") == ["a", "b", "c", "d"]
    with pytest.raises(UserError) as e:
        runs(root, sort="accuracy", console=con)
    assert "start, name, task, model, status, steps, val, test, wall_time, params" in str(e.value)


def test_loss_metric_sorts_lowest_first(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for stamp, name, loss in (("20260101-000001", "hi", 3.0), ("20260101-000002", "lo", 1.0)):
        run = _make_run(root, f"{stamp}-{name}")
        summary = json.loads((run / "summary.json").read_text())
        summary.update(val={"loss": loss}, test={"loss": loss})
        (run / "summary.json").write_text(json.dumps(summary))
    rows = runs(root, sort="val", console=_console()[0])
    assert [r["name"] for r in rows] == ["lo", "hi"] and rows[0]["metric"] == "loss"


def test_json_output_parses(lab: Path) -> None:
    console, buf = _console(width=40)  # narrow: JSON must not be wrapped like text
    shown = runs(lab, as_json=True, console=console)
    parsed = json.loads(buf.getvalue())
    assert parsed == shown and len(parsed) == 6
    assert set(parsed[0]) == set(runs_mod._ROW_KEYS)


def test_damaged_and_foreign_entries(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _make_run(root, "20260101-000000-good")
    bad_json = _make_run(root, "20260101-000001-badjson")
    (bad_json / "summary.json").write_text('{"status": "compl')
    not_object = _make_run(root, "20260101-000002-list")
    (not_object / "summary.json").write_text("[1, 2]")
    no_summary = _make_run(root, "20260101-000003-nosummary")
    (no_summary / "summary.json").unlink()
    _age(no_summary)
    (root / "20260101-000004-stray").write_text("a file where a run should be")
    junk = root / "20260101-000005-junk"
    junk.mkdir()
    (junk / "random.bin").write_bytes(os.urandom(64))
    (root / "notes.txt").write_text("not a run, not pretending to be one")
    (root / "misc").mkdir()
    (root / "misc" / "data.csv").write_text("a,b\n")
    (root / ".hidden").mkdir()
    # A comparison whose own summary is damaged still shows its intact runs.
    broken_cmp = _make_compare(root, "20260101-000006-compare-lstm-gru")
    (broken_cmp / "summary.json").write_bytes(b"\xff\xfe\x00garbage")

    rows = _by_path(collect_runs(root))
    status = {p: r["status"] for p, r in rows.items()}
    assert status["20260101-000000-good"] == "completed"
    for bad in ("20260101-000001-badjson", "20260101-000002-list", "20260101-000003-nosummary",
                "20260101-000004-stray", "20260101-000005-junk", "20260101-000006-compare-lstm-gru"):
        assert status[bad] == "unreadable" and rows[bad]["reason"], bad
    assert "not valid JSON" in rows["20260101-000001-badjson"]["reason"]
    assert "not a JSON object" in rows["20260101-000002-list"]["reason"]
    assert "no summary.json" in rows["20260101-000003-nosummary"]["reason"]
    assert rows["20260101-000003-nosummary"]["model"] == "lstm"  # still read from config.yaml
    assert "a file" in rows["20260101-000004-stray"]["reason"]
    assert rows["20260101-000006-compare-lstm-gru"]["kind"] == "compare"
    assert status["20260101-000006-compare-lstm-gru/20260102-100001-lstm-seed0"] == "completed"
    assert not any(p.startswith(("notes", "misc", ".hidden")) for p in rows)

    console, buf = _console()
    runs(root, console=console)  # the table and the reasons print without a traceback
    text = buf.getvalue()
    assert "unreadable 20260101-000001-badjson: summary.json is not valid JSON" in text
    assert "6 unreadable" in text


def test_unreadable_summary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "runs"
    run = _make_run(root, "20260101-000000-locked")

    def denied(path: Path) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(runs_mod, "read_json", denied)
    (row,) = collect_runs(root)
    assert row["status"] == "unreadable" and "Permission denied" in row["reason"]
    assert run.exists()


def test_unlistable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "runs"
    run = _make_run(root, "20260101-000000-private")
    if os.name != "nt" and os.geteuid() != 0:
        run.chmod(0)
    else:  # root (or Windows) reads the folder whatever its mode: refuse the listing instead
        real = runs_mod._list_dir

        def refuse(path: Path) -> list[Path]:
            if path == run:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(runs_mod, "_list_dir", refuse)
    try:
        (row,) = collect_runs(root)
    finally:
        run.chmod(0o755)
    assert row["status"] == "unreadable" and "Permission denied" in row["reason"]


def test_running_versus_stopped(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    live = _make_run(root, "20260101-000000-live", status="running")
    stale = _make_run(root, "20260101-000001-stale", status="running")
    _age(stale)
    locked = _make_run(root, "20260101-000002-locked", status="running")
    (locked / ".lock").write_text(f"{socket.gethostname()} {os.getpid()}\n")  # rundir.RunLock's format
    _age(locked)  # old files, but the lock's process (this one) is alive
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = _make_run(root, "20260101-000003-gone", status="running")
    (gone / ".lock").write_text(f"{socket.gethostname()} {dead.pid}\n")
    garbage_lock = _make_run(root, "20260101-000004-garbage", status="running")
    (garbage_lock / ".lock").write_text("no pid here")
    _age(garbage_lock)  # an unusable lock falls back to the age rule
    starting = root / "20260101-000005-starting"
    starting.mkdir()
    (starting / "config.yaml").write_text(yaml.safe_dump(_config()))
    finished_long_ago = _make_run(root, "20260101-000006-done")
    _age(finished_long_ago)
    bare = _make_run(root, "20260101-000007-bare", status="running")
    (bare / ".lock").write_text(f"{dead.pid}\n")
    elsewhere = _make_run(root, "20260101-000008-elsewhere", status="running")
    (elsewhere / ".lock").write_text(f"node01-not-{socket.gethostname()} {os.getpid()}\n")
    _age(elsewhere)  # another host's process cannot be checked: the age rule decides

    rows = _by_path(collect_runs(root))
    status = {p.split("-", 2)[2]: r["status"] for p, r in rows.items()}
    assert status == {"live": "running", "stale": "stopped?", "locked": "running", "gone": "stopped",
                      "garbage": "stopped?", "starting": "running", "done": "completed", "bare": "stopped",
                      "elsewhere": "stopped?"}
    assert f"rnnlab train --resume {stale}" in rows["20260101-000001-stale"]["reason"]
    assert str(dead.pid) in rows["20260101-000003-gone"]["reason"]
    # Progress of a running run comes from metrics.jsonl: summary.json has it only at the end.
    assert rows["20260101-000000-live"]["steps"] == 100 and rows["20260101-000000-live"]["val"] == 0.6
    # Just past / just before the limit, measured from the newest file.
    later = _by_path(collect_runs(root, now=time.time() + runs_mod.STALE_AFTER_S + 5))
    assert later["20260101-000000-live"]["status"] == "stopped?"
    assert later["20260101-000005-starting"]["status"] == "unreadable"
    assert _by_path(collect_runs(root, stale_after_s=10 * 3600))["20260101-000001-stale"]["status"] == "running"
    con = _console()[0]
    assert {r["name"] for r in runs(root, status="stopped", console=con)} == {"stale", "gone", "garbage", "bare", "elsewhere"}
    assert {r["name"] for r in runs(root, status="stopped?", console=con)} == {"stale", "garbage", "elsewhere"}


def test_unfinished_comparison_gets_a_row(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    cmp_dir = _make_compare(root)
    (cmp_dir / "summary.json").unlink()
    (cmp_dir / "results.csv").unlink()
    # Writes to the first run: the whole comparison is still training.
    first = cmp_dir / "20260102-100001-lstm-seed0"
    summary = json.loads((first / "summary.json").read_text())
    (first / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    row = _by_path(collect_runs(root))[cmp_dir.name]
    assert (row["kind"], row["status"], row["models"]) == ("compare", "running", ["lstm", "gru"])
    _age(cmp_dir)
    row = _by_path(collect_runs(root))[cmp_dir.name]
    assert row["status"] == "stopped?"


def test_runs_dir_that_is_itself_a_comparison(lab: Path) -> None:
    rows = _by_path(collect_runs(lab / "20260102-100000-compare-lstm-gru"))
    assert set(rows) == {".", "20260102-100001-lstm-seed0", "20260102-100002-gru-seed0"}
    assert rows["."]["kind"] == "compare"


def test_symlink_loop_is_walked_once(lab: Path) -> None:
    (lab / "20260102-100000-compare-lstm-gru" / "loop").symlink_to(lab, target_is_directory=True)
    assert len(collect_runs(lab)) == 6


def test_empty_and_missing_runs_dir(tmp_path: Path) -> None:
    console, buf = _console()
    (tmp_path / "empty").mkdir()
    assert runs(tmp_path / "empty", console=console) == []
    assert f"no runs under {tmp_path / 'empty'}; start one with: rnnlab train configs/long_dependency_lstm.yaml" in buf.getvalue()
    console, buf = _console()
    assert runs(tmp_path / "empty", as_json=True, console=console) == []
    assert json.loads(buf.getvalue()) == []
    with pytest.raises(UserError, match="no runs directory"):
        runs(tmp_path / "nowhere", console=console)
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file"):
        runs(tmp_path / "file", console=console)


@pytest.mark.parametrize(
    "seconds, shown",
    [(0.25, "0.2s"), (90, "1.5m"), (7200, "2.0h"), (5 * 86400, "5.0d"), (3 * 365.25 * 86400, "3.0y"), (1e300, "> 1000y"),
     (10**400, "> 1000y"), (float("inf"), "> 1000y"), (float("nan"), "?"), (-1.0, "?"), ("12", "?"), (True, "?"), (None, "?")],
    ids=lambda v: repr(v)[:12],
)  # fmt: skip
def test_a_duration_is_a_few_characters_whatever_summary_json_holds(seconds: Any, shown: str) -> None:
    """Issue 27, item 25: `wall_time_s: 1e300` once printed 300 digits and squeezed every other column away."""
    assert runs_mod._duration(seconds) == shown


def test_absurd_counts_and_accuracies_stay_short_in_the_table(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _make_run(root, "20260101-000000-huge", params=10**400, wall=1e300, test=1e300, accs=(0.5, 2e300))
    _make_run(root, "20260102-000000-fine", params=1234, wall=90.0, test=0.5, accs=(0.5,))
    console, buf = _console(120)
    runs(root, console=console)
    lines = buf.getvalue().splitlines()
    huge, fine = (next(line for line in lines if line.startswith(f"2026010{i}-000000-")) for i in (1, 2))
    assert " ".join(huge.split()[1:]) == "long_dependency lstm > 999B completed 100 ? ? > 1000y"
    assert " ".join(fine.split()[1:]) == "long_dependency lstm 1,234 completed 50 50.0% 50.0% 1.5m"


# --- rnnlab plot ----------------------------------------------------------------------------------


def _two_runs(root: Path) -> tuple[Path, Path]:
    a = _make_run(root, "20260101-000000-long_dependency_lstm", accs=(0.2, 0.5, 0.9),
                  config=_config("lstm", model={"init": "chrono"}))
    b = _make_run(root, "20260101-000100-long_dependency_lstm", accs=(0.1, 0.2, 0.3),
                  config=_config("lstm", model={"init": "default"}))
    return a, b


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_plot_two_runs_writes_png_beside_them(tmp_path: Path) -> None:
    a, b = _two_runs(tmp_path / "runs")
    console, buf = _console()
    out = plot([a, b], console=console)
    assert out.parent == tmp_path / "runs" / "plots"
    assert out.name.startswith("compare-val.accuracy-") and out.suffix == ".png"
    _assert_png(out)
    assert str(out) in buf.getvalue().replace("\n", "")
    # Never overwrites: the same second gives a new name, and the first file stays as it was.
    before = out.read_bytes()
    again = plot([a, b], metric="val.accuracy", console=console)
    assert again != out and again.exists() and out.read_bytes() == before


def test_plot_out_is_exact_and_never_overwrites(tmp_path: Path) -> None:
    a, b = _two_runs(tmp_path / "runs")
    target = tmp_path / "figs" / "nested" / "loss.png"
    assert plot([a, b], metric="train.loss", out=target, console=_console()[0]) == target
    _assert_png(target)
    size = target.stat().st_size
    with pytest.raises(UserError, match="exists"):
        plot([a, b], out=target, console=_console()[0])
    assert target.stat().st_size == size
    with pytest.raises(UserError, match="image type"):
        plot([a, b], out=tmp_path / "figure.txt", console=_console()[0])


def test_plot_compare_dir_expands_to_its_runs(tmp_path: Path) -> None:
    cmp_dir = _make_compare(tmp_path / "runs")
    console, buf = _console()
    out = plot([cmp_dir], console=console)
    assert out.parent == cmp_dir / "plots"
    assert "2 runs" in buf.getvalue()
    _assert_png(out)
    # The same run given twice (directly and through its comparison) is one line.
    out = plot([cmp_dir, cmp_dir / "20260102-100001-lstm-seed0"], console=console)
    assert "2 runs" in buf.getvalue().splitlines()[-1]


def test_plot_run_without_config_or_summary(tmp_path: Path) -> None:
    a, b = _two_runs(tmp_path / "runs")
    (b / "config.yaml").unlink()
    (b / "summary.json").write_text("{broken")
    out = plot([a, b], out=tmp_path / "out.svg", console=_console()[0])
    assert out.read_text().lstrip().startswith("<?xml")


def test_legend_shows_differing_settings() -> None:
    chrono = _config("lstm", name="lstm", model={"init": "chrono"})
    default = _config("lstm", name="lstm", model={"init": "default"})
    assert legend_labels([("lstm", chrono), ("lstm", default)]) == ["lstm · model.init=chrono", "lstm · model.init=default"]
    # A difference the names already show is left out; seed counts when it differs.
    lstm = _config("lstm", name="lstm-seed0")
    gru = {**_config("gru", name="gru-seed1"), "seed": 1}
    assert legend_labels([("lstm-seed0", lstm), ("gru-seed1", gru)]) == ["lstm-seed0 · seed=0", "gru-seed1 · seed=1"]
    # Long differences are cut to three keys, model.* first.
    many = _config("lstm", model={"init": "default", "hidden_size": 64}, train={"lr": 0.003, "steps": 10}, task={"seq_len": 9})
    labels = legend_labels([("x", chrono), ("x", many)])
    assert labels[1] == "x · model.hidden_size=64, model.init=default, task.seq_len=9, +2 more"
    # Identical runs keep one legend entry each; a run without config is its name alone.
    assert legend_labels([("a", chrono), ("a", chrono), ("b", None)]) == ["a", "a (2)", "b"]
    assert legend_labels([("a", chrono), ("a", {**chrono, "extra": 1})])[0] == "a · extra=unset"
    assert legend_labels([("a", {"lr": 1}), ("b", {"lr": 1.0})]) == ["a", "b"]
    assert legend_labels([("a", {"flag": True}), ("b", {"flag": 1})]) == ["a · flag=true", "b · flag=1"]


def test_plot_errors(tmp_path: Path) -> None:
    a, b = _two_runs(tmp_path / "runs")
    con = _console()[0]
    with pytest.raises(UserError) as e:
        plot([a, b], metric="val.perplexity", console=con)
    assert "no val.perplexity" in str(e.value) and "val.accuracy" in str(e.value) and "train.loss" in str(e.value)
    with pytest.raises(UserError, match="unknown split 'valid'"):
        plot([a], metric="valid.accuracy", console=con)
    with pytest.raises(UserError, match="did you mean val.accuracy"):
        plot([a], metric="accuracy", console=con)
    with pytest.raises(UserError, match="at least one run"):
        plot([], console=con)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("")
    with pytest.raises(UserError, match="not a run directory"):
        plot([tmp_path / "junk"], console=con)
    with pytest.raises(UserError, match="no such run directory"):
        plot([tmp_path / "nope"], console=con)
    with pytest.raises(UserError, match="a file"):
        plot([a / "summary.json"], console=con)
    with pytest.raises(UserError, match="use step or epoch"):
        plot([a], x="time", console=con)
    with pytest.raises(UserError, match="use --x step"):
        plot([a, b], x="epoch", console=con)
    assert not (tmp_path / "runs" / "plots").exists() or not any((tmp_path / "runs" / "plots").iterdir())


# --- one real run ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_training_run_is_listed_and_plotted(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    cmd = [sys.executable, "-m", "rnnlab", "train", str(_ROOT / "configs" / "long_dependency_lstm.yaml"),
           "train.steps=30", "train.eval_every=10", "task.val_size=64", "task.test_size=64", "task.seq_len=10",
           "device=cpu", "--runs-dir", str(runs_dir), "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (row,) = collect_runs(runs_dir)
    assert (row["kind"], row["status"], row["task"], row["model"], row["steps"], row["metric"]) == (
        "run", "completed", "long_dependency", "lstm", 30, "accuracy")
    assert 0 <= row["val"] <= 1 and 0 <= row["test"] <= 1 and row["params"] > 0
    out = plot([runs_dir / row["path"]], metric="train.loss", console=_console()[0])
    _assert_png(out)

    # The same through the command line, as a user types it.
    done = subprocess.run([sys.executable, "-m", "rnnlab", "runs", "--runs-dir", str(runs_dir), "--json"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in json.loads(done.stdout)] == ["completed"]
    target = tmp_path / "loss.png"
    done = subprocess.run([sys.executable, "-m", "rnnlab", "plot", str(runs_dir / row["path"]), "--metric", "val.loss",
                           "--out", str(target)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _assert_png(target)
    done = subprocess.run([sys.executable, "-m", "rnnlab", "plot", str(runs_dir / row["path"]), "--metric", "val.nonsense"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "nonsense" in done.stderr
    done = subprocess.run([sys.executable, "-m", "rnnlab", "runs", "--runs-dir", str(runs_dir), "--sort", "colour"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and "colour" in done.stderr and "Traceback" not in done.stderr


def test_piped_runs_table_crops_no_column(lab: Path, tmp_path: Path) -> None:
    """`rnnlab runs | less` or `> runs.txt`: no terminal width to fit, so long names and the time
    column come out whole, not cut at 80 columns."""
    long_name = "20260104-090000-" + "a_long_descriptive_run_name_" * 3 + "lstm"
    _make_run(lab, long_name, model="lstm", accs=(0.5, 0.6), test=0.6, params=6090)
    out = subprocess.run([sys.executable, "-m", "rnnlab", "runs", "--runs-dir", str(lab)], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": ""}, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert long_name in out.stdout  # on one line, not folded
    header = next(line for line in out.stdout.splitlines() if line.startswith("run"))
    assert header.split()[-1] == "time"
