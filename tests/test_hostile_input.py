"""Hostile input: bad configs, bad `predict` input, hostile archives. Each is refused with exit
code 2 and a message that names the problem, never a traceback, and nothing is written.

    python -m pytest tests/test_hostile_input.py -q

The tables are the release note's "bad inputs tried x message shown"; the function-level checks
of archives and of the tokenizer live in test_imdb_data.py and test_properties.py.

The last section is a run directory under hostile use (issue 14, points 9-13): kill -9, SIGHUP
and a full disk leave a run that resumes; --resume of a finished run, a second writer, a config
that no longer fits, and generate's out-of-range options change not a byte of the run; a refused
command leaves no directory behind.
"""

from __future__ import annotations

import errno
import io
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml
from typer.testing import CliRunner

from conftest import tiny_raw
from imdb_fixtures import separable_reviews, write_imdb_archive
from rnnlab.callbacks import Callback


def invoke(*args: object, stdin: bytes | None = None, stdout_only: bool = False) -> tuple[int, str]:
    """The real Typer app, like the `cli` fixture, with bytes on stdin when given."""
    from rnnlab.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], input=stdin, catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout if stdout_only else result.output


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    """Never the user's ~/.cache or $RNNLAB_DATA_DIR."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)


def flat(text: str) -> str:
    """The console wraps long lines; compare messages with whitespace collapsed."""
    return " ".join(text.split())


def files_under(root: Path) -> set[Path]:
    """Files under `root`, except the cache that XDG_CACHE_HOME points to (matplotlib's font list)."""
    return {p for p in root.rglob("*") if p.is_file() and "xdg-cache" not in p.relative_to(root).parts}


# --- bad configs: rnnlab train FILE ----------------------------------------------------------


def _raw(path: str, value: object) -> bytes:
    """tiny_raw() with `path` (dotted) set to `value`, as YAML."""
    raw = tiny_raw()
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return yaml.safe_dump(raw).encode()


def _replace(old: str, new: str) -> bytes:
    text = yaml.safe_dump(tiny_raw())
    assert old in text
    return text.replace(old, new).encode()


ALIAS_BOMB = b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + b"".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n".encode() for p, c in zip("bcdefgh", "cdefghi")
)  # 9**9 = 387 million x's once expanded

# (id, file content, every substring the message must hold). The dotted key, where there is one.
BAD_CONFIGS = [
    ("yaml-list", b"- task\n- model\n", ["a config must be a mapping of sections (task:, model:, train:), got list"]),
    ("yaml-scalar", b"42\n", ["a config must be a mapping of sections", "got int"]),
    ("alias-bomb", ALIAS_BOMB, ["YAML aliases (*a) are not allowed in rnnlab configs"]),
    ("huge-size", _raw("model.hidden_size", 100_000_000),
     ["model.hidden_size = 100000000: Input should be less than or equal to 65536"]),
    ("negative-size", _raw("model.hidden_size", -5), ["model.hidden_size = -5: Input should be greater than or equal to 1"]),
    ("negative-steps", _raw("train.steps", -100), ["train.steps = -100: Input should be greater than or equal to 1"]),
    ("nan-lr", _replace("lr: 0.02", "lr: .nan"), ["train.lr = nan: Input should be a finite number"]),
    ("negative-lr", _raw("train.lr", -0.1), ["train.lr = -0.1: Input should be greater than 0"]),
    ("inf-lr", _replace("lr: 0.02", "lr: .inf"), ["train.lr = inf: Input should be a finite number"]),
    ("inf-clip", _raw("train.clip_grad_norm", float("inf")), ["train.clip_grad_norm = inf: Input should be a finite number"]),
    ("unknown-section", _raw("optim.lr", 0.1), ["optim: unknown section; allowed: name, seed, device, task, model, train"]),
    ("unknown-key", _raw("train.lrr", 0.1), ["train.lrr: unknown key (did you mean 'lr'?); allowed: optimizer, lr,"]),
    ("wrong-type-str", _raw("train.batch_size", "big"), ["train.batch_size = 'big': Input should be a valid integer"]),
    ("wrong-type-list", _raw("task.seq_len", [1, 2]), ["task.seq_len = [1, 2]: Input should be a valid integer"]),
    ("wrong-type-bool", _raw("model.bidirectional", "maybe"), ["model.bidirectional = 'maybe': Input should be a valid boolean"]),
    ("wrong-type-section", _raw("train", 5), ["train = 5: must be a mapping"]),
    ("wrong-type-seed", _raw("seed", 1.5), ["seed = 1.5: Input should be a valid integer"]),
    ("binary-garbage", bytes(range(256)) * 16, ["not a UTF-8 text file"]),
    ("invalid-utf8", b"task: {name: long_dependency}\nname: caf\xe9\n", ["not a UTF-8 text file"]),
    ("nul-bytes", b"task: {name: long_\x00dependency}\n", ["not valid YAML", "special characters are not allowed"]),
    ("broken-yaml", b"task: {name: [\n", ["not valid YAML"]),
    ("python-tag", b"task: !!python/object/apply:os.system ['touch pwned']\n", ["not valid YAML", "could not determine a constructor"]),
    ("empty-file", b"", ["task: required section missing", "model: required section missing"]),
]


@pytest.mark.parametrize("content, messages", [pytest.param(c, m, id=i) for i, c, m in BAD_CONFIGS])
def test_a_bad_config_file_exits_2_with_a_message(tmp_path, monkeypatch, content, messages):
    monkeypatch.chdir(tmp_path)  # a payload that ran would write here
    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    code, out = invoke("train", config, "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 2, out
    assert "Traceback" not in out
    assert out.startswith("error: ")
    for message in messages:
        assert message in flat(out), out
    assert files_under(tmp_path) == {config}  # no run directory, no payload's file


@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(lambda d: d / "missing.yaml", "config file not found: {path}", id="missing-file"),
        pytest.param(lambda d: d, "{path}", id="directory"),
    ],
)
def test_a_config_path_that_is_not_a_file_exits_2(tmp_path, make: Callable[[Path], Path], message):
    path = make(tmp_path)
    code, out = invoke("train", path, "--runs-dir", tmp_path / "runs")
    assert code == 2 and "Traceback" not in out
    assert message.format(path=path) in flat(out)
    assert not (tmp_path / "runs").exists()


def test_a_directory_given_as_config_is_called_a_directory(tmp_path):
    folder = tmp_path / "cfg"
    folder.mkdir()
    code, out = invoke("train", folder)
    message = flat(out).replace(str(folder), "FOLDER")
    assert code == 2 and "directory" in message and "not found" not in message


# PyYAML resolves these as numbers or dates, then its constructors raise ValueError (or recurse
# past Python's limit) instead of yaml.YAMLError. rnnlab catches both: a file is refused as "not
# valid YAML" and an override is kept as the text typed, which the config's validation then
# refuses where a number is needed. Exit 2 and a message, never a traceback.
YAML_CRASHERS = [
    ("file-date-out-of-range", b"name: 2001-02-30\n", [], "bad.yaml: not valid YAML: day is out of range for month"),
    ("file-hex-without-digits", b"seed: 0x_\n", [], "bad.yaml: not valid YAML: invalid literal for int() with base 16"),
    ("file-deep-nesting", b"task: " + b"[" * 3000 + b"]" * 3000 + b"\n", [], "bad.yaml: not valid YAML: nested too deeply"),
    ("override-exponent-without-digits", None, ["train.lr=-e5"], "train.lr = '-e5': Input should be a valid number"),
]


def test_an_override_pyyaml_cannot_construct_is_kept_as_the_text_typed(tmp_path, write_config):
    """`name=2024-13-01` looks like a date to YAML but is no date: the user meant the text."""
    code, out = invoke("train", write_config(tiny_raw()), "name=2024-13-01", "--runs-dir", tmp_path / "runs")
    assert code == 0, out
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-2024-13-01")


@pytest.mark.parametrize("content, overrides, message", [pytest.param(c, o, m, id=i) for i, c, o, m in YAML_CRASHERS])
def test_yaml_that_pyyaml_cannot_construct_exits_2(tmp_path, write_config, content, overrides, message):
    if content is None:
        config = write_config(tiny_raw())
    else:
        config = tmp_path / "bad.yaml"
        config.write_bytes(content)
    code, out = invoke("train", config, *overrides, "--runs-dir", tmp_path / "runs")
    assert code == 2 and "Traceback" not in out
    assert message in flat(out), out
    assert not (tmp_path / "runs").exists()


def test_a_model_too_big_for_memory_exits_2(tmp_path, write_config):
    """Run under a 16 GiB address-space limit, so that the 64 GiB allocation fails at once on any machine."""
    raw = tiny_raw()
    raw["model"]["hidden_size"] = 65_536

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))

    out = subprocess.run(
        [sys.executable, "-m", "rnnlab", "train", str(write_config(raw)), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, preexec_fn=limit, env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-500:]


@pytest.mark.parametrize(
    "content",
    [pytest.param("\ufeff" + yaml.safe_dump(tiny_raw()), id="utf8-bom"),
     pytest.param(yaml.safe_dump(tiny_raw()).replace("\n", "\r\n"), id="crlf")],
)
def test_configs_saved_by_windows_editors_are_read(tmp_path, content):
    config = tmp_path / "cfg.yaml"
    config.write_bytes(content.encode())
    code, out = invoke("config", config)
    assert code == 0, out
    assert yaml.safe_load(out)["model"]["hidden_size"] == 8


# --- bad `rnnlab predict` input --------------------------------------------------------------


def _imdb_raw(archive: Path) -> dict:
    """A bi-LSTM that separates the fixture's reviews in a few seconds."""
    return {
        "name": "hostile_imdb", "seed": 0, "device": "cpu",
        "task": {"name": "imdb", "data_path": str(archive), "val_size": 10, "max_len": 50, "eval_batch_size": 16},
        "model": {"name": "bilstm", "input": "embedding", "embedding_dim": 8, "hidden_size": 8, "pooling": "max"},
        "train": {"optimizer": "adam", "lr": 0.02, "batch_size": 8, "epochs": 8},
    }  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One tiny IMDb run and one long_dependency run, trained once for the module."""
    tmp = tmp_path_factory.mktemp("hostile_runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp / "cache"))  # never the user's cache
        mp.delenv("RNNLAB_DATA_DIR", raising=False)
        archive = write_imdb_archive(tmp / "aclImdb_v1.tar.gz", reviews=separable_reviews())
        out = {"archive": archive}
        for name, raw in (("imdb", _imdb_raw(archive)), ("long_dependency", tiny_raw())):
            config = tmp / f"{name}.yaml"
            config.write_text(yaml.safe_dump(raw))
            code, text = invoke("train", config, "--runs-dir", tmp / name, "--no-progress")
            assert code == 0, text
            (out[name],) = (tmp / name).iterdir()
    return out


def _args(texts: list[str] | None = None, file: str | None = None, run: str = "{imdb}") -> list[str]:
    return [*(texts or []), *(["--file", file] if file is not None else []), "--run", run]


# (id, arguments, stdin, exit code, every substring of the output). {imdb}, {long_dependency}
# and {tmp} stand for the trained runs and this test's directory; files come from FILES.
BAD_PREDICT = [
    ("empty-text", _args([""]), None, 2, ["error: text 1 is empty; give some words to classify"]),
    ("whitespace-only", _args([" \t\n "]), None, 2, ["error: text 1 is empty"]),
    ("second-text-empty", _args(["great film", ""]), None, 2, ["error: text 2 is empty"]),
    ("only-unknown-words", _args(["qwertyuiop zxcvbnm"]), None, 0, ["(no known words: a guess)"]),
    ("only-punctuation", _args(["?!... ,,, ((("]), None, 0, ["%"]),
    ("one-megabyte", _args(["the film was great and loved it " * 33_000]), None, 0, ["positive"]),
    ("rich-markup", _args(["[bold red]great[/] film [/] [link=file:///etc/passwd]x"]), None, 0, ["[bold red]great[/]"]),
    ("invalid-utf8-stdin", _args(file="-"), b"great \xff\xfe film\n", 2,
     ["error: stdin is not valid UTF-8 (byte 0xff at offset 6); save it as UTF-8"]),
    ("invalid-utf8-file", _args(file="{tmp}/latin1.txt"), None, 2, ["latin1.txt is not valid UTF-8 (byte 0xe9 at offset 3)"]),
    ("utf16-file", _args(file="{tmp}/utf16.txt"), None, 2, ["utf16.txt is not valid UTF-8 (byte 0xff at offset 0)"]),
    ("control-characters-file", _args(file="{tmp}/controls.txt"), None, 0, ["positive"]),
    ("blank-lines-file", _args(file="{tmp}/blank.txt"), None, 2, ["error: no text given"]),
    ("missing-file", _args(file="{tmp}/nope.txt"), None, 2, ["error: --file {tmp}/nope.txt: no such file"]),
    ("directory-as-file", _args(file="{tmp}"), None, 2, ["error: --file {tmp}: cannot read: Is a directory"]),
    ("missing-run", _args(["great"], run="{tmp}/no_such_run"), None, 2, ["error: run directory not found: {tmp}/no_such_run"]),
    ("file-as-run", _args(["great"], run="{tmp}/latin1.txt"), None, 2, ["error: run directory not found"]),
    ("run-without-checkpoint", _args(["great"], run="{tmp}"), None, 2, ["error: checkpoint not found: {tmp}/checkpoints/best.pt"]),
    ("long-dependency-run", _args(["great"], run="{long_dependency}"), None, 2,
     ["is a run of task 'long_dependency', which does not classify text; train one with: rnnlab train configs/imdb_bilstm.yaml"]),
]

FILES = {
    "latin1.txt": "caf\u00e9 was great\n".encode("latin-1"),
    "utf16.txt": "great film\n".encode("utf-16"),
    "controls.txt": "great \x00\x07\x1b[31m film \U0001f3ac \u202e loved it\u2028\n".encode(),
    "blank.txt": b"\n \n\t\n\r\n",
}


@pytest.mark.parametrize("args, stdin, code, messages", [pytest.param(*row[1:], id=row[0]) for row in BAD_PREDICT])
def test_predict_on_hostile_input(runs, tmp_path, args, stdin, code, messages):
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    where = {"tmp": tmp_path, **runs}
    got, out = invoke("predict", *(a.format(**where) for a in args), stdin=stdin)
    assert got == code, out[:2000]
    assert "Traceback" not in out
    for message in messages:
        assert message.format(**where) in flat(out), out[:2000]


def test_predict_json_on_hostile_text_is_valid_json(runs):
    texts = ["qwertyuiop", "great " * 50_000, "\u202e\U0001f3ac \"quoted\" \\ back\\slash", "[/]"]
    code, out = invoke("predict", *texts, "--run", runs["imdb"], "--json", stdout_only=True)
    assert code == 0, out[:500]
    preds = json.loads(out)["predictions"]
    assert [p["text"] for p in preds] == texts
    assert preds[0]["known_tokens"] == 0 and preds[1]["label"] == "positive"
    assert preds[1]["tokens"] == 50  # cut to the run's task.max_len, as in training
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in preds)


def test_predict_reads_a_file_with_a_utf8_bom_like_one_without(runs, tmp_path):
    plain, bom = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_bytes(b"great film\n")
    bom.write_bytes(b"\xef\xbb\xbfgreat film\n")
    results = []
    for file in (plain, bom):
        code, out = invoke("predict", "--file", file, "--run", runs["imdb"], "--json", stdout_only=True)
        assert code == 0, out
        results.append(json.loads(out)["predictions"][0]["known_tokens"])
    assert results[0] == results[1]


def test_predict_table_does_not_pass_terminal_escapes_through(runs, tmp_path):
    reviews = tmp_path / "reviews.txt"
    reviews.write_bytes(b"great film \x1b[2J\x1b]0;pwned\x1b\\ \x1b[8mhidden\n")
    code, out = invoke("predict", "--file", reviews, "--run", runs["imdb"])
    assert code == 0, out
    assert "\x1b" not in out  # not a terminal here, so rich itself adds no escapes


def test_predict_needs_only_the_run_directory(runs, tmp_path):
    """predict.py: 'rebuilds task and model from that checkpoint alone'."""
    archive = runs["archive"]
    moved = archive.rename(tmp_path / "moved.tar.gz")
    try:
        code, out = invoke("predict", "great film", "--run", runs["imdb"])
    finally:
        moved.rename(archive)
    assert code == 0, out
    assert "tokenized" not in out and not (tmp_path / "xdg-cache").exists()


# --- hostile archives as task.data_path --------------------------------------------------------


def _with_member(clean: Path, path: Path, name: str, data: bytes = b"pwned") -> Path:
    """The clean fixture archive with one more member, `name`, at the end."""
    buffer = io.BytesIO()
    with tarfile.open(clean, "r:gz") as src, tarfile.open(fileobj=buffer, mode="w:gz") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        dst.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return path


def _truncated(clean: Path, path: Path) -> Path:
    data = clean.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(lambda c, p, t: _with_member(c, p, "../evil.txt"), "refusing archive member '../evil.txt' "
                     "(an absolute path or one with '..')", id="dot-dot-member"),
        pytest.param(lambda c, p, t: _with_member(c, p, str(t / "abs" / "evil.txt")), "refusing archive member '{tmp}/abs/evil.txt'",
                     id="absolute-member"),
        pytest.param(lambda c, p, t: _truncated(c, p), "is damaged or truncated", id="truncated"),
        pytest.param(lambda c, p, t: _with_member(c, p, "aclImdb/train/pos/99_9.txt", b"great " * 350_000),
                     "member aclImdb/train/pos/99_9.txt has 2,100,000 bytes, not a review", id="oversized-review"),
    ],
)
def test_a_hostile_archive_is_refused_and_writes_nothing(tmp_path, monkeypatch, make, message):
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    clean = write_imdb_archive(tmp_path / "clean" / "aclImdb_v1.tar.gz")
    (tmp_path / "data").mkdir()
    archive = make(clean, tmp_path / "data" / "aclImdb_v1.tar.gz", tmp_path)
    config = tmp_path / "imdb.yaml"
    config.write_text(yaml.safe_dump(_imdb_raw(archive)))
    before = files_under(tmp_path)

    code, out = invoke("train", config, "--runs-dir", work / "runs", "--no-progress")
    assert code == 2, out
    assert "Traceback" not in out
    assert message.format(tmp=tmp_path) in flat(out)
    assert "aclImdb_v1.tar.gz from https://" in flat(out)  # where to get a good copy
    # Nothing extracted anywhere a member's name points to, and no run directory.
    for would_be in (tmp_path / "evil.txt", tmp_path / "data" / ".." / "evil.txt", work.parent / "evil.txt",
                     cache / "evil.txt", cache / "rnnlab" / ".." / "evil.txt", tmp_path / "abs" / "evil.txt"):
        assert not would_be.exists(), would_be
    assert {p for p in files_under(tmp_path) - before if cache not in p.parents} == set()
    assert not (work / "runs").exists() or not any((work / "runs").iterdir())


# --- checkpoints in the rnnlab format whose contents are damaged ------------------------------
# (malicious pickles and truncated files: test_resume.py)


def _damaged(good: dict, other: dict) -> dict[str, object]:
    weights = dict(good["model"])
    weights.pop(next(iter(weights)))
    return {
        "config-not-a-mapping": {**good, "config": "x"},
        "config-missing": {k: v for k, v in good.items() if k != "config"},
        "weights-missing": {k: v for k, v in good.items() if k != "model"},
        "weights-of-another-model": {**good, "model": other["model"]},  # e.g. from an older rnnlab
        "weight-missing": {**good, "model": weights},
        "weights-not-a-mapping": {**good, "model": [1, 2]},
        "task-state-damaged": {**good, "task_state": {"generator": torch.zeros(3)}},
    }


@pytest.mark.parametrize("case", ["config-not-a-mapping", "config-missing", "weights-missing", "weights-of-another-model",
                                  "weight-missing", "weights-not-a-mapping", "task-state-damaged"])
def test_evaluate_a_damaged_checkpoint_exits_2(runs, tmp_path, write_config, case):
    from rnnlab.config import load_config
    from rnnlab.engine import fit

    raw = tiny_raw()
    raw["model"]["hidden_size"] = 12
    other_run = fit(load_config(write_config(raw)), runs_dir=tmp_path / "other", progress=False, final_table=False).run_dir
    good = torch.load(runs["long_dependency"] / "checkpoints/best.pt", weights_only=True)
    other = torch.load(other_run / "checkpoints/best.pt", weights_only=True)
    run = tmp_path / "damaged"
    shutil.copytree(runs["long_dependency"], run)
    torch.save(_damaged(good, other)[case], run / "checkpoints/best.pt")
    code, out = invoke("evaluate", run)
    assert code == 2 and "Traceback" not in out and "best.pt" in out, out[-800:]


# --- a run directory under hostile use: kills, second writers, finished runs, a full disk -----
# Issue 14, points 9-13. Each row gives the exit code, the message, and what must stay intact of
# the run directory (for a refusal: every byte of every file in it).


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and every directory (None) under `root`, the XDG cache aside."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
        if "xdg-cache" not in p.relative_to(root).parts
    }


def metrics_lines(run: Path) -> list[str]:
    return (run / "metrics.jsonl").read_text().splitlines()


def val_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in metrics_lines(run) if json.loads(line)["split"] == "val"]


def summary_of(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def last_step(run: Path) -> int:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"]


# 40 steps, an evaluation every 10, no train.checkpoint_every: last.pt comes from the evaluations.
STOPPABLE = {"steps": 40, "eval_every": 10}


class _SignalAt(Callback):
    """Sends `sig` to this very process at the end of step `at` (at=0: as soon as setup is done),
    as a user's kill or a closing terminal would."""

    def __init__(self, sig: int, at: int):
        self.sig, self.at = sig, at

    def on_setup(self, run) -> None:
        if self.at == 0:
            signal.raise_signal(self.sig)

    def on_step(self, run) -> None:
        if run.step == self.at:
            signal.raise_signal(self.sig)


@pytest.fixture
def signal_at(monkeypatch):
    """signal_at(sig, step): the next `rnnlab train` in this process gets `sig` at that step. Until
    the test ends SIGHUP and SIGTERM land in a net here when rnnlab has no handler of its own, so
    that a regression fails the test instead of killing pytest."""
    import rnnlab.engine as engine

    caught: list[int] = []
    net = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in (signal.SIGHUP, signal.SIGTERM)}

    made = engine.default_callbacks

    def arm(sig: int | None, at: int = 0) -> None:
        """None: no signal any more."""
        extra = [] if sig is None else [_SignalAt(sig, at)]
        monkeypatch.setattr(engine, "default_callbacks", lambda *a, **k: [*made(*a, **k), *extra])

    yield arm
    for sig, handler in net.items():
        signal.signal(sig, handler)
    assert not caught, f"rnnlab had no handler for signal {caught}"


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory) -> dict[str, Path]:
    """Run directories to copy: a completed run, one that stopped early (early_stopping=1 ends it
    long before step 400, status completed) and one interrupted by Ctrl-C at step 10 of 20."""
    tmp = tmp_path_factory.mktemp("finished_runs")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp / "cache"))
        for name, raw in (("completed", tiny_raw()), ("early_stopped", tiny_raw(steps=400, eval_every=5, early_stopping=1))):
            config = tmp / f"{name}.yaml"
            config.write_text(yaml.safe_dump(raw))
            code, text = invoke("train", config, "--runs-dir", tmp / name, "--no-progress")
            assert code == 0, text
            (out[name],) = (tmp / name).iterdir()
        assert summary_of(out["early_stopped"])["steps"] < 400  # stopped early, and called completed
        import rnnlab.engine as engine

        made = engine.default_callbacks
        mp.setattr(engine, "default_callbacks", lambda *a, **k: [*made(*a, **k), _SignalAt(signal.SIGINT, 10)])
        config = tmp / "interrupted.yaml"
        config.write_text(yaml.safe_dump(tiny_raw()))
        code, text = invoke("train", config, "--runs-dir", tmp / "interrupted", "--no-progress")
        assert code == 130, text
        (out["interrupted"],) = (tmp / "interrupted").iterdir()
    assert summary_of(out["interrupted"])["status"] == "interrupted" and last_step(out["interrupted"]) == 10
    assert all(summary_of(out[k])["status"] == "completed" for k in ("completed", "early_stopped"))
    return out


@pytest.fixture
def live_pid():
    """The PID of a live process that is not this one."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _lock(text: str) -> Callable[[Path, dict], None]:
    def write(run: Path, where: dict) -> None:
        (run / ".lock").write_text(text.format(**where) + "\n")

    return write


def _config_edited(run: Path, where: dict) -> None:
    raw = yaml.safe_load((run / "config.yaml").read_text())
    raw["model"]["hidden_size"] = 12  # last.pt holds hidden_size 8
    (run / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


_RESUME = ["train", "--resume", "{run}", "--no-progress"]

# (id, issue point, run to copy, what to do to it first, arguments, exit code, every substring of
# the output). {run}, {pid} and {host} stand for the copy, a live process and this host. Every
# byte of the run directory must be as it was before the command.
RUN_DIR_REFUSALS = [
    ("resume-a-completed-run", 10, "completed", None, _RESUME, 0,
     ["{run} has already completed: there is nothing to resume, and nothing was changed."]),
    ("resume-a-run-that-stopped-early", 10, "early_stopped", None, _RESUME, 0,
     ["{run} has already completed: there is nothing to resume, and nothing was changed."]),
    ("resume-a-run-another-process-trains", 11, "interrupted", _lock("{host} {pid}"), _RESUME, 2,
     ["error: {run} is being trained by process {pid} on {host}; wait for it to end or stop it (kill -INT {pid}) first"]),
    ("resume-a-run-locked-on-another-host", 11, "interrupted", _lock("elsewhere.invalid 4242"), _RESUME, 2,
     ["error: {run} is being trained by process 4242 on elsewhere.invalid"]),
    ("resume-with-a-config-that-does-not-fit", 12, "interrupted", _config_edited, _RESUME, 2,
     ["error: {run}/checkpoints/last.pt does not fit the model {run}/config.yaml describes (was config.yaml edited?)",
      "Restore config.yaml, or start a new run"]),
    ("generate-temperature-inf", 12, "completed", None, ["generate", "{run}", "--temperature", "inf"], 2,
     ["error: --temperature inf: use 0 (always the likeliest token) up to 100"]),
    ("generate-temperature-nan", 12, "completed", None, ["generate", "{run}", "--temperature", "nan"], 2,
     ["error: --temperature nan: use 0"]),
    ("generate-temperature-1e308", 12, "completed", None, ["generate", "{run}", "--temperature", "1e308"], 2,
     ["error: --temperature 1e+308: use 0"]),
    ("generate-seed-beyond-64-bits", 12, "completed", None, ["generate", "{run}", "--seed", str(2**64)], 2,
     [f"error: --seed {2**64}: use a whole number from 0 to 2**63 - 1"]),
    ("generate-a-billion-tokens", 13, "completed", None, ["generate", "{run}", "--tokens", "1000000000"], 2,
     ["error: --tokens 1000000000: ask for 1 to 100,000"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "template, prepare, args, code, messages",
    [pytest.param(*row[2:], id=f"point{row[1]}-{row[0]}") for row in RUN_DIR_REFUSALS],
)
def test_a_command_on_a_run_directory_that_must_not_change_it(finished_runs, tmp_path, live_pid, template, prepare, args, code, messages):
    run = tmp_path / "run"
    shutil.copytree(finished_runs[template], run)
    where = {"run": run, "pid": live_pid, "host": socket.gethostname()}
    if prepare is not None:
        prepare(run, where)
    before = snapshot(run)
    got, out = invoke(*(a.format(**where) for a in args))
    assert got == code, out[-2000:]
    assert "Traceback" not in out
    for message in messages:
        assert message.format(**where) in flat(out), out[-2000:]
    assert snapshot(run) == before  # not a byte changed, no lock left behind, nothing added


def test_a_stale_lock_of_a_dead_process_is_taken_over(finished_runs, tmp_path):
    """Point 11: a kill -9 leaves RUN/.lock behind; its process is gone, so --resume takes over."""
    run = tmp_path / "run"
    shutil.copytree(finished_runs["interrupted"], run)
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: no process has this PID now
    (run / ".lock").write_text(f"{socket.gethostname()} {gone.pid}\n")
    kept = metrics_lines(run)
    code, out = invoke("train", "--resume", run, "--no-progress")
    assert code == 0, out[-2000:]
    assert summary_of(run)["status"] == "completed" and summary_of(run)["steps"] == 20
    assert not (run / ".lock").exists()  # released at the end
    assert metrics_lines(run)[: len(kept)] == kept and val_steps(run) == [10, 20]


KILL_9_AFTER = r"""
import os, signal, sys
import rnnlab.engine as engine
from rnnlab.callbacks import Callback
from rnnlab.cli import main

at = int(sys.argv[1])

class Kill9(Callback):
    def on_step(self, run):
        if run.step == at:
            os.kill(os.getpid(), signal.SIGKILL)

made = engine.default_callbacks
engine.default_callbacks = lambda *a, **k: [*made(*a, **k), Kill9()]
sys.argv = ["rnnlab", *sys.argv[2:]]
main()
"""


def test_a_run_killed_with_kill_9_after_an_evaluation_resumes(tmp_path, write_config):
    """Point 9: without train.checkpoint_every, last.pt is written at every evaluation, so `kill -9`
    at step 25 (the process SIGKILLs itself there, which makes the step exact) leaves the state of
    step 20 to resume from; the resumed run equals an uninterrupted one."""
    config = write_config(tiny_raw(**STOPPABLE))
    runs = tmp_path / "runs"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_9_AFTER, "25", "train", str(config), "--runs-dir", str(runs), "--no-progress"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    (run,) = runs.iterdir()
    assert summary_of(run)["status"] == "running"  # SIGKILL leaves no chance to write anything else
    assert last_step(run) == 20 and val_steps(run) == [10, 20]
    kept = metrics_lines(run)
    code, out = invoke("train", "--resume", run, "--no-progress")
    assert code == 0 and "Traceback" not in out, out[-2000:]
    assert "resuming at step 20 of 40" in flat(out)
    code, text = invoke("train", config, "--runs-dir", tmp_path / "reference", "--no-progress")
    assert code == 0, text
    (reference,) = (tmp_path / "reference").iterdir()
    resumed, uninterrupted = summary_of(run), summary_of(reference)
    assert resumed["status"] == "completed" and resumed["steps"] == 40
    assert resumed["test"]["loss"] == pytest.approx(uninterrupted["test"]["loss"], abs=1e-6)
    assert metrics_lines(run)[: len(kept)] == kept and val_steps(run) == [10, 20, 30, 40]  # each evaluation once


@pytest.mark.parametrize(
    "sig, at, code",
    [
        pytest.param(signal.SIGHUP, 15, 129, id="point9-sighup-the-terminal-closed"),
        pytest.param(signal.SIGTERM, 0, 143, id="point13-sigterm-before-the-first-step"),
    ],
)
def test_sighup_and_an_early_sigterm_leave_an_interrupted_resumable_run(tmp_path, write_config, signal_at, sig, at, code):
    """SIGHUP is handled like SIGTERM: the step is finished, last.pt saved, the run interrupted. A
    SIGTERM as soon as the run exists (before its first step) does the same."""
    runs = tmp_path / "runs"
    signal_at(sig, at)
    got, out = invoke("train", write_config(tiny_raw(**STOPPABLE)), "--runs-dir", runs, "--no-progress")
    (run,) = runs.iterdir()
    assert got == code, out[-2000:]
    assert f"interrupted at step {at}; everything is saved. Continue with: rnnlab train --resume {run}" in flat(out)
    assert "Traceback" not in out
    summary = summary_of(run)
    assert summary["status"] == "interrupted" and summary["steps"] == at == last_step(run)
    assert not (run / ".lock").exists()
    kept = metrics_lines(run) if (run / "metrics.jsonl").exists() else []  # none before the first evaluation
    assert (val_steps(run) if kept else []) == [s for s in (10, 20, 30, 40) if s <= at]
    signal_at(None)
    got, out = invoke("train", "--resume", run, "--no-progress")
    assert got == 0, out[-2000:]
    assert summary_of(run)["status"] == "completed" and summary_of(run)["steps"] == 40
    assert metrics_lines(run)[: len(kept)] == kept and val_steps(run) == [10, 20, 30, 40]


def test_a_full_disk_fails_the_run_with_exit_1_and_it_resumes(tmp_path, write_config, monkeypatch):
    """Point 12: ENOSPC while writing last.pt at step 20: exit 1, a message that says what to do,
    summary.json says failed; last.pt of step 10 is intact, and once there is space the run resumes."""
    import rnnlab.engine as engine

    real = engine.save_checkpoint

    def full_disk(path: Path, payload: dict) -> None:
        if path.name == "last.pt" and payload["step"] >= 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, payload)

    monkeypatch.setattr(engine, "save_checkpoint", full_disk)
    runs = tmp_path / "runs"
    code, out = invoke("train", write_config(tiny_raw(**STOPPABLE)), "--runs-dir", runs, "--no-progress")
    (run,) = runs.iterdir()
    assert code == 1, out[-2000:]
    assert "Traceback" not in out
    assert (f"training stopped at step 20: could not write to {run} (the disk is full). Free some space, then continue "
            f"from the last saved checkpoint with: rnnlab train --resume {run}") in flat(out)  # fmt: skip
    summary = summary_of(run)
    assert summary["status"] == "failed" and summary["steps"] == 20 and "test" not in summary
    assert last_step(run) == 10 and val_steps(run) == [10, 20] and not (run / ".lock").exists()
    monkeypatch.setattr(engine, "save_checkpoint", real)  # space was freed
    code, out = invoke("train", "--resume", run, "--no-progress")
    assert code == 0, out[-2000:]
    assert summary_of(run)["status"] == "completed" and val_steps(run) == [10, 20, 30, 40]


# (id, issue point, arguments, every substring of the output): each exits 2 and leaves the
# directory it ran in exactly as it was: no run directory, not even an empty one. {config} is a
# tiny config, {file} a file, {runs} an empty runs directory, {missing} an IMDb config whose
# archive does not exist, {readonly} a directory nobody may write to.
_PROBE = ["probe-gradients", "--models", "rnn", "--seq-len", "4", "--trials", "1", "--hidden", "3", "--no-progress"]
NOTHING_WRITTEN = [
    ("train-runs-dir-is-a-file", 12, ["train", "{config}", "--runs-dir", "{file}"],
     ["error: --runs-dir {file}: is a file, not a directory"]),
    ("train-runs-dir-below-a-file", 12, ["train", "{config}", "--runs-dir", "{file}/runs"],
     ["error: --runs-dir {file}/runs: part of that path is a file, not a directory"]),
    ("train-runs-dir-read-only", 12, ["train", "{config}", "--runs-dir", "{readonly}"],
     ["error: --runs-dir {readonly}: not writable by you"]),
    ("probe-runs-dir-is-a-file", 12, [*_PROBE, "--runs-dir", "{file}"], ["error: --runs-dir {file}: is a file, not a directory"]),
    ("probe-runs-dir-below-a-file", 12, [*_PROBE, "--runs-dir", "{file}/runs"],
     ["error: --runs-dir {file}/runs: part of that path is a file, not a directory"]),
    ("probe-runs-dir-read-only", 12, [*_PROBE, "--runs-dir", "{readonly}"], ["error: --runs-dir {readonly}: not writable by you"]),
    ("compare-superscript-seq-len", 12, ["compare", "lstm", "--seq-len", "\u00b2", "--runs-dir", "{runs}"],
     ["--seq-len '\u00b2': each length must be a whole number >= 1"]),
    ("compare-refused-when-its-first-run-starts", 13, ["compare", "lstm", "gru", "--config", "{missing}", "--runs-dir", "{runs}", "--no-progress"],
     ["error: task.data_path={tmp}/nope/aclImdb_v1.tar.gz: no such file or directory"]),
    ("config-scalar-for-a-section", 13, ["config", "{config}", "model=gru"],
     ["override 'model=gru': model is a section; model=gru would replace all of it. Set one key instead, e.g. model.name=gru"]),
    ("train-steps-null", 13, ["train", "{config}", "train.steps=null", "--runs-dir", "{runs}"],
     ["- train.steps is not set: task 'long_dependency' generates data without end"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "args, messages",
    [
        pytest.param(
            *row[2:], id=f"point{row[1]}-{row[0]}",
            marks=[pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")] if "read-only" in row[0] else [],
        )
        for row in NOTHING_WRITTEN
    ],
)  # fmt: skip
def test_a_refused_command_leaves_no_directory_behind(tmp_path, monkeypatch, write_config, args, messages):
    monkeypatch.chdir(tmp_path)
    missing = _imdb_raw(tmp_path / "nope" / "aclImdb_v1.tar.gz")
    where = {"tmp": tmp_path, "config": write_config(tiny_raw()), "file": tmp_path / "a_file", "runs": tmp_path / "runs",
             "missing": write_config(missing, "missing.yaml"), "readonly": tmp_path / "readonly"}  # fmt: skip
    where["file"].write_text("not a directory\n")
    where["runs"].mkdir()
    where["readonly"].mkdir(mode=0o555)
    before = snapshot(tmp_path)
    code, out = invoke(*(a.format(**where) for a in args))
    assert code == 2, out[-2000:]
    assert "Traceback" not in out
    for message in messages:
        assert message.format(**where) in flat(out), out[-2000:]
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------------------
# Issue 27: what a code review and a fuzz of 2d118bf found. One section per area; each case
# failed on 2d118bf.
# ---------------------------------------------------------------------------------------------

# === issue 27: ensembles, shared splits, devices, generate (items 1-4, 20, 21) ===


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory) -> Path:
    """A tiny next-token language model, for `generate`."""
    tmp = tmp_path_factory.mktemp("hostile_lm")
    raw = {"name": "tiny_lm", "seed": 0, "device": "cpu", "task": {"name": "next_token", "num_sequences": 200, "max_n": 5},
           "model": {"name": "lstm", "hidden_size": 8}, "train": {"lr": 0.02, "batch_size": 16, "steps": 20}}  # fmt: skip
    (tmp / "lm.yaml").write_text(yaml.safe_dump(raw))
    code, text = invoke("train", tmp / "lm.yaml", "--runs-dir", tmp / "runs", "--no-progress")
    assert code == 0, text
    (run,) = (tmp / "runs").iterdir()
    return run


# Devices torch parses but rnnlab does not run on, and names torch does not parse: each gave its
# own AssertionError, ModuleNotFoundError, NotImplementedError or RuntimeError.
BAD_DEVICES = ["xpu", "hpu", "meta", "cpu; x", "cuda:x", "cuda:-1", ""]


@pytest.mark.parametrize("device", BAD_DEVICES)
@pytest.mark.parametrize("command", ["evaluate", "predict", "generate"])
def test_a_device_rnnlab_does_not_run_on_exits_2_and_lists_the_devices(runs, lm_run, command, device):
    run = lm_run if command == "generate" else runs["imdb"]
    args = {"evaluate": [run], "predict": ["great film", "--run", run], "generate": [run, "--tokens", "3"]}[command]
    before = snapshot(run)
    code, out = invoke(command, *args, "--device", device)
    assert code == 2 and "Traceback" not in out, out[:2000]
    assert f"device = {device!r}: not a device rnnlab runs on; use auto, cpu, cuda, cuda:N (N = 0, 1, ...) or mps" in flat(out), out
    assert snapshot(run) == before


@pytest.mark.parametrize("temperature", ["3e-39", "1e-45", "5e-324"])
def test_generate_with_a_vanishing_temperature_is_greedy(lm_run, temperature):
    """`multinomial` raised on the inf and nan of logits divided by these; at that limit the
    likeliest token is the answer, as with --temperature 0."""
    before = snapshot(lm_run)
    code, greedy = invoke("generate", lm_run, "--temperature", "0", "--tokens", "10", "--prompt", "a a")
    assert code == 0, greedy
    code, out = invoke("generate", lm_run, "--temperature", temperature, "--tokens", "10", "--prompt", "a a", "--seed", "3")
    assert (code, out) == (0, greedy)
    assert snapshot(lm_run) == before


# === issue 27: inspect and plot (items 4, 8, 15, 19, 22, 26) ===

def test_inspect_example_index_past_64_bits_names_the_valid_range(runs):
    """Item 22: an index torch cannot hold (2**64) is out of range like any other, not an OverflowError."""
    before = snapshot(runs["imdb"])
    code, out = invoke("inspect", runs["imdb"], "--example", str(2**64))
    assert code == 2 and "Traceback" not in out, out[-2000:]
    assert f"--example {2**64}: the val split has 10 examples (0 to 9); choose one of those" in flat(out)
    assert snapshot(runs["imdb"]) == before


def test_inspect_a_text_with_dollars_draws_it_as_written(runs, tmp_path):
    """Item 19: user text is never math markup; '$x^{$' made matplotlib's mathtext raise."""
    run = tmp_path / "imdb"
    shutil.copytree(runs["imdb"], run)
    code, out = invoke("inspect", run, "great $x^{$ film", "$5 and $10")
    assert code == 0 and "Traceback" not in out, out[-2000:]
    outputs = {d.name.split("-", 2)[2]: d for d in (run / "inspect").iterdir()}
    assert set(outputs) == {"text-great-x-film", "text-5-and-10"}
    assert all(len(list(d.glob("*.png"))) == 6 for d in outputs.values())  # 4 heat maps, gate means, carriers
    assert json.loads((outputs["text-great-x-film"] / "summary.json").read_text())["input"] == "text 'great $x^{$ film'"


def test_plot_a_config_value_with_dollars_in_the_legend(runs, tmp_path):
    """Item 19: a differing config value holding '$' goes into the legend as written."""
    for name, init in (("a", "chrono"), ("b", "$x^{$")):
        shutil.copytree(runs["long_dependency"], tmp_path / "runs" / name)
        raw = yaml.safe_load((tmp_path / "runs" / name / "config.yaml").read_text())
        raw["model"]["init"] = init
        (tmp_path / "runs" / name / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    out_file = tmp_path / "dollars.png"
    code, out = invoke("plot", tmp_path / "runs" / "a", tmp_path / "runs" / "b", "--out", out_file)
    assert code == 0 and "Traceback" not in out, out[-2000:]
    assert out_file.stat().st_size > 1000


def test_inspect_an_adding_run_shows_the_number_it_answers(tmp_path, write_config):
    """Item 15: a regression run (adding) answers a number, not a label: KeyError 'label' on 2d118bf."""
    raw = {**tiny_raw(), "name": "tiny_adding", "task": {"name": "adding", "seq_len": 6, "val_size": 16, "test_size": 16}}
    code, out = invoke("train", write_config(raw), "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 0, out[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    code, out = invoke("inspect", run, "--example", "2")
    assert code == 0 and "Traceback" not in out, out[-2000:]
    (out_dir,) = (run / "inspect").iterdir()
    prediction = json.loads((out_dir / "summary.json").read_text())["prediction"]
    from rnnlab.engine import load_run_model

    _, task, _, _ = load_run_model(run, torch.device("cpu"))
    target = float(next(iter(task.eval_batches("val"))).targets[2])
    assert prediction["target"] == round(target, 4) and isinstance(prediction["value"], float)
    assert f"the model says {prediction['value']:g}, target {prediction['target']:g}" in flat(out)


def test_inspect_a_read_only_run_points_to_a_copy_that_works(runs, tmp_path, monkeypatch):
    """Item 26: a run that cannot be written into is refused with a command that works (2d118bf
    told to use `--runs-dir RUN/inspect`, an option inspect does not have). Tests run as root here,
    whom file modes do not stop, so the run is made read-only through os.access."""
    import tempfile

    run = tmp_path / "run"
    shutil.copytree(runs["long_dependency"], run)
    (run / "inspect").mkdir()  # inspected before, while it could still be written
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: access(path, mode, **kw) and not (
        mode & os.W_OK and Path(path).resolve().is_relative_to(run.resolve())))  # fmt: skip
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    before = snapshot(run)
    code, out = invoke("inspect", run)
    assert code == 2 and "Traceback" not in out and "--runs-dir" not in out, out[-2000:]
    copy = tmp_path / "elsewhere" / run.name
    told = f"cp -r {run} {copy} && rnnlab inspect {copy}"
    assert f"cannot write into {run / 'inspect'}" in flat(out) and told in flat(out), out
    assert snapshot(run) == before
    subprocess.run(["sh", "-c", told.split(" && ")[0]], check=True)  # the user does as told
    code, out = invoke("inspect", copy)
    assert code == 0, out[-2000:]
    assert len(list((copy / "inspect").iterdir())) == 1

# === issue 27: run directories, locks, checkpoints, signals (items 11-14, 16-18, 26) ===


def _set_in_config(key: str, value: object) -> Callable[[Path, dict], None]:
    """Edit RUN/config.yaml: dotted `key` set to `value`, as a user's editor would."""

    def edit(run: Path, where: dict) -> None:
        raw = yaml.safe_load((run / "config.yaml").read_text())
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[last] = value
        (run / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    return edit


def _empty(name: str) -> Callable[[Path, dict], None]:
    def empty(run: Path, where: dict) -> None:
        (run / "checkpoints" / name).write_bytes(b"")

    return empty


_EMPTY_FIX = "Restore it from a copy of the run, or train the run again: rnnlab train {run}/config.yaml"

# (id, item, run to copy, what to do to it first, arguments, exit code, every substring of the output);
# as RUN_DIR_REFUSALS above: every byte of the run directory stays as it was.
ISSUE_27_RUN_DIR_REFUSALS = [
    ("resume-after-config-yaml-was-edited", 12, "interrupted", _set_in_config("task.seq_len", 12), _RESUME, 2,
     ["error: --resume {run}: config.yaml was edited after the run started (task.seq_len: 12 now, 6 when it started)",
      "Restore config.yaml (task.seq_len: 6) to resume, or start a new run with the new settings: rnnlab train {run}/config.yaml"]),
    ("resume-after-the-learning-rate-was-edited", 12, "interrupted", _set_in_config("train.lr", 0.5), _RESUME, 2,
     ["(train.lr: 0.5 now, 0.02 when it started)"]),
    ("evaluate-an-empty-best-pt", 17, "completed", _empty("best.pt"), ["evaluate", "{run}", "--split", "val"], 2,
     ["error: {run}/checkpoints/best.pt is empty (0 bytes)", _EMPTY_FIX]),
    ("inspect-an-empty-best-pt", 17, "completed", _empty("best.pt"), ["inspect", "{run}"], 2,
     ["error: {run}/checkpoints/best.pt is empty (0 bytes)", _EMPTY_FIX]),
    ("resume-an-empty-last-pt", 17, "interrupted", _empty("last.pt"), _RESUME, 2,
     ["error: {run}/checkpoints/last.pt is empty (0 bytes)", _EMPTY_FIX]),
    ("resume-an-empty-best-pt", 17, "interrupted", _empty("best.pt"), _RESUME, 2,
     ["error: {run}/checkpoints/best.pt is empty (0 bytes)", _EMPTY_FIX]),
]  # fmt: skip


@pytest.fixture(scope="module")
def runs_to_copy(tmp_path_factory) -> dict[str, Path]:
    """A completed run, and one interrupted by Ctrl-C at step 10 of 20 (as `finished_runs`, less
    the run that stops early, which these cases do not need)."""
    import rnnlab.engine as engine

    tmp = tmp_path_factory.mktemp("runs_to_copy")
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_raw()))
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp / "cache"))
        code, text = invoke("train", config, "--runs-dir", tmp / "completed", "--no-progress")
        assert code == 0, text
        made = engine.default_callbacks
        mp.setattr(engine, "default_callbacks", lambda *a, **k: [*made(*a, **k), _SignalAt(signal.SIGINT, 10)])
        code, text = invoke("train", config, "--runs-dir", tmp / "interrupted", "--no-progress")
        assert code == 130, text
    for name in ("completed", "interrupted"):
        (out[name],) = (tmp / name).iterdir()
    return out


@pytest.mark.parametrize(
    "template, prepare, args, code, messages",
    [pytest.param(*row[2:], id=f"item{row[1]}-{row[0]}") for row in ISSUE_27_RUN_DIR_REFUSALS],
)
def test_issue_27_a_refusal_leaves_the_run_directory_as_it_was(runs_to_copy, tmp_path, template, prepare, args, code, messages):
    run = tmp_path / "run"
    shutil.copytree(runs_to_copy[template], run)
    where = {"run": run}
    prepare(run, where)
    before = snapshot(run)
    got, out = invoke(*(a.format(**where) for a in args))
    assert got == code, out[-2000:]
    assert "Traceback" not in out
    for message in messages:
        assert message.format(**where) in flat(out), out[-2000:]
    assert snapshot(run) == before


def test_a_run_may_be_resumed_on_another_device(runs_to_copy, tmp_path):
    """Item 12's refusal is about what the run trains, not where: `device` may be edited to resume
    a run on another machine (auto: a GPU where there is one)."""
    run = tmp_path / "run"
    shutil.copytree(runs_to_copy["interrupted"], run)
    _set_in_config("device", "auto")(run, {})
    code, out = invoke("train", "--resume", run, "--no-progress")
    assert code == 0 and "Traceback" not in out, out[-2000:]
    assert summary_of(run)["status"] == "completed" and summary_of(run)["steps"] == 20


KILL_9_WHILE_WRITING = r"""
import os, signal, sys
from rnnlab.cli import main

# The process dies where a kill -9 hurts most: the checkpoint's bytes are on disk under their
# temporary name, and the rename that would make them last.pt never happens.
replace, at = os.replace, int(sys.argv[1])

def replace_or_die(src, dst):
    if str(dst).endswith("last.pt"):
        global at
        at -= 1
        if at == 0:
            os.kill(os.getpid(), signal.SIGKILL)
    replace(src, dst)

os.replace = replace_or_die
sys.argv = ["rnnlab", *sys.argv[2:]]
main()
"""


@pytest.mark.slow
def test_a_kill_9_during_a_checkpoint_write_leaves_a_file_that_runs_lists_and_resume_removes(tmp_path, write_config):
    """Item 13: a kill -9 while last.pt of step 20 is written leaves `.last.pt.XXXXXXXX.tmp`, as big
    as the checkpoint. `rnnlab runs` names it; --resume deletes it, says so, and resumes from step 10."""
    config = write_config(tiny_raw(**STOPPABLE))
    runs = tmp_path / "runs"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_9_WHILE_WRITING, "2", "train", str(config), "--runs-dir", str(runs), "--no-progress"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    (run,) = runs.iterdir()
    (partial,) = (run / "checkpoints").glob(".last.pt.*.tmp")
    assert partial.stat().st_size > 0.9 * (run / "checkpoints" / "last.pt").stat().st_size
    code, out = invoke("runs", "--runs-dir", runs)
    assert code == 0, out
    assert f"unfinished writes {run.name}: 1 temporary file(s) of a process killed while it wrote (checkpoints/{partial.name})" in flat(out)
    code, out = invoke("runs", "--runs-dir", runs, "--json", stdout_only=True)
    assert json.loads(out)[0]["partial_writes"] == [f"checkpoints/{partial.name}"]
    code, out = invoke("train", "--resume", run, "--no-progress")
    assert code == 0 and "Traceback" not in out, out[-2000:]
    assert "resuming at step 10 of 40" in flat(out)
    assert f"removed 1 unfinished write(s) of an earlier process: checkpoints/{partial.name}" in flat(out)
    assert not partial.exists() and not list(run.rglob("*.tmp"))
    assert summary_of(run)["status"] == "completed" and val_steps(run) == [10, 20, 30, 40]


def _no_file_may_grow() -> None:
    """RLIMIT_FSIZE 0: the kernel refuses every write to a file (EFBIG), as a full disk refuses it
    (ENOSPC). SIGXFSZ ignored, so the write fails instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


@pytest.mark.slow
def test_a_disk_that_takes_no_bytes_before_the_run_starts_leaves_no_lock_and_no_run_directory(tmp_path, write_config):
    """Item 16: the lock is the first thing a run writes. On 2d118bf its failed write was a
    traceback from RunLock.acquire and left a 0-byte .lock behind, which blocks nothing but misleads."""
    runs = tmp_path / "runs"
    runs.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "rnnlab", "train", str(write_config(tiny_raw())), "--runs-dir", str(runs), "--no-progress"],
        capture_output=True, text=True, preexec_fn=_no_file_may_grow, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert f"error: cannot lock {runs}/" in flat(out.stderr) and "File too large" in out.stderr
    assert list(runs.iterdir()) == []  # no lock, no empty run directory


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="tells the lock's file descriptor by /proc")
def test_a_full_disk_before_the_run_starts_says_to_free_space(tmp_path, write_config, monkeypatch):
    """Item 16, the words: ENOSPC from the write of the lock's holder, the first bytes a run writes."""
    write = os.write

    def full_for_the_lock(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/.lock"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(fd, data)

    monkeypatch.setattr(os, "write", full_for_the_lock)
    runs = tmp_path / "runs"
    code, out = invoke("train", write_config(tiny_raw()), "--runs-dir", runs, "--no-progress")
    assert code == 1 and "Traceback" not in out, out[-2000:]
    assert f"error: cannot lock {runs}/" in flat(out)
    assert ": the disk is full. Free some space, then run the command again" in flat(out)
    assert list(runs.iterdir()) == []


@pytest.mark.slow
def test_a_batch_that_does_not_fit_in_memory_says_what_to_lower(tmp_path, write_config):
    """Item 18: train.batch_size=1000000 under a 16 GiB address-space limit: the LSTM's first forward
    asks for ~100 GB and fails at once. On 2d118bf: `RuntimeError: ... can't allocate memory`."""
    raw = tiny_raw(batch_size=1_000_000)
    raw["model"]["hidden_size"] = 256

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))

    runs = tmp_path / "runs"
    out = subprocess.run(
        [sys.executable, "-m", "rnnlab", "train", str(write_config(raw)), "--runs-dir", str(runs), "--no-progress"],
        capture_output=True, text=True, preexec_fn=limit, env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"},
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    text = flat(out.stdout + out.stderr)
    assert "training stopped at step 0: out of memory on cpu" in text
    assert "Start a new run with a lower train.batch_size (now 1,000,000; e.g. train.batch_size=125000)" in text
    (run,) = runs.iterdir()
    assert summary_of(run)["status"] == "failed" and not (run / ".lock").exists()


class _DeleteRunDir(Callback):
    def on_step(self, run) -> None:
        if run.step == 15:
            shutil.rmtree(run.run_dir)


def test_a_run_directory_deleted_mid_run_is_not_told_to_free_space(tmp_path, write_config, monkeypatch):
    """Item 26: the run directory deleted at step 15; the save at step 20 fails. 2d118bf said
    "Free some space, then continue ... --resume", which cannot work."""
    import rnnlab.engine as engine

    made = engine.default_callbacks
    monkeypatch.setattr(engine, "default_callbacks", lambda *a, **k: [*made(*a, **k), _DeleteRunDir()])
    runs = tmp_path / "runs"
    code, out = invoke("train", write_config(tiny_raw(**STOPPABLE)), "--runs-dir", runs, "--no-progress")
    assert code == 1 and "Traceback" not in out, out[-2000:]
    text = flat(out)
    assert "training stopped at step 20: the run directory" in text and "was deleted or moved while it trained" in text
    assert "If it was moved, resume it where it is now" in text and "start the run again with rnnlab train CONFIG" in text
    assert "Free some space" not in text


# === issue 27: collect, config, runs listing, booleans (items 23-25, 27) ===


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """A planned comparison of two tiny runs (lstm, seeds 0 and 1), both trained, collected once."""
    tmp = tmp_path_factory.mktemp("collect")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp / "cache"))
        code, out = invoke("compare", "lstm", "--seq-len", "4", "--seeds", "2", "--steps", "6", "--hidden", "6", "task.val_size=16",
                           "task.test_size=16", "train.eval_every=3", "--plan", "--runs-dir", tmp / "runs")  # fmt: skip
        assert code == 0, out
        commands = [line.split()[1:] for line in out.splitlines() if line.startswith("rnnlab train ")]
        assert len(commands) == 2, out
        for command in commands:
            code, text = invoke(*command)
            assert code == 0, text
        (parent,) = (tmp / "runs").iterdir()
        code, text = invoke("compare", "--collect", parent)
        assert code == 0, text
    return parent


def _copy_of(collected: Path, tmp_path: Path) -> Path:
    parent = tmp_path / collected.name
    shutil.copytree(collected, parent)
    return parent


def _run_of(parent: Path, seed: int) -> Path:
    (run,) = parent.glob(f"*-lstm-seq4-seed{seed}")
    return run


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# (id, what damages the seed-0 run, what the skip line says). Seed 1 stays intact.
DAMAGED_RUNS = [
    ("config-yaml-list", lambda p: (_run_of(p, 0) / "config.yaml").write_text("- a\n- b\n"),
     "config.yaml: a config must be a mapping of sections (task:, model:, train:), got list"),
    ("config-yaml-0xff", lambda p: (_run_of(p, 0) / "config.yaml").write_bytes(b"\xff\xfename: x\n"), "config.yaml: not a UTF-8 text file"),
    ("plan-seq-len-ten", lambda p: _edit_json(p / "plan.json", lambda d: d["runs"][0].update(seq_len="ten")),
     "plan.json gives seq_len 'ten', not a whole number >= 1"),
    ("plan-config-edited", lambda p: (p / "configs" / "lstm-seq4-seed0.yaml").write_text(
        (p / "configs" / "lstm-seq4-seed0.yaml").read_text().replace("seq_len: 4", "seq_len: 5")),
     "plan.json gives seq_len 4 but configs/lstm-seq4-seed0.yaml has 5"),
    ("summary-not-json", lambda p: (_run_of(p, 0) / "summary.json").write_text("{\"status\": "), "summary.json: not valid JSON"),
    ("summary-accuracy-text", lambda p: _edit_json(_run_of(p, 0) / "summary.json", lambda d: d["test"].update(accuracy="high")),
     "summary.json: test.accuracy is 'high', not a number from 0 to 1"),
    ("metrics-step-text", lambda p: (_run_of(p, 0) / "metrics.jsonl").write_text(
        json.dumps({"step": "three", "split": "val", "accuracy": 0.5}) + "\n"), "(validation): step is 'three', not a whole number"),
]  # fmt: skip


@pytest.mark.parametrize("damage, message", [pytest.param(d, m, id=i) for i, d, m in DAMAGED_RUNS])
def test_collect_skips_a_damaged_run_with_a_line_and_collects_the_rest(collected, tmp_path, damage, message):
    import csv

    parent = _copy_of(collected, tmp_path)
    damage(parent)
    runs_before = {p: b for p, b in _snapshot(parent).items() if "seed" in p.parent.name or "seed" in p.name}
    code, out = invoke("compare", "--collect", parent)
    assert code == 0 and "Traceback" not in out, out
    assert "skipped lstm-seq4-seed0: " in out and message in flat(out), out
    with (parent / "results.csv").open() as f:
        assert [row["seed"] for row in csv.DictReader(f)] == ["1"]  # only the intact run
    summary = json.loads((parent / "summary.json").read_text())
    assert summary["status"] == "incomplete" and "lstm-seq4-seed0" in summary["missing_runs"]
    assert {p: b for p, b in _snapshot(parent).items() if p in runs_before} == runs_before  # the runs are read, never written


def test_collect_with_no_valid_run_exits_2_and_leaves_the_results_as_they_were(collected, tmp_path):
    parent = _copy_of(collected, tmp_path)
    for seed in (0, 1):
        (_run_of(parent, seed) / "config.yaml").write_bytes(b"\xff")
    before = _snapshot(parent)
    code, out = invoke("compare", "--collect", parent)
    assert code == 2 and "Traceback" not in out, out
    text = flat(out)
    assert "skipped lstm-seq4-seed0" in text and "skipped lstm-seq4-seed1" in text
    assert "nothing collected from" in text and "2 of 2 planned runs skipped" in text and "were left as they were" in text
    assert _snapshot(parent) == before


@pytest.mark.parametrize("plan, message", [
    pytest.param("[1, 2", "plan.json is damaged (not valid JSON", id="not-json"),
    pytest.param('{"runs": 5}', "plan.json is damaged (it holds no list of runs)", id="runs-not-a-list"),
    pytest.param(b"\xff\xfe{}", "plan.json is damaged (not UTF-8 text (byte 0xff at offset 0))", id="not-utf8"),
])  # fmt: skip
def test_collect_of_a_damaged_plan_exits_2_and_writes_nothing(collected, tmp_path, plan, message):
    parent = _copy_of(collected, tmp_path)
    (parent / "plan.json").write_bytes(plan if isinstance(plan, bytes) else plan.encode())
    before = _snapshot(parent)
    code, out = invoke("compare", "--collect", parent)
    assert code == 2 and "Traceback" not in out, out
    assert message in flat(out) and "plan the comparison again with --plan" in flat(out)
    assert _snapshot(parent) == before


def test_a_config_of_400000_unknown_keys_lists_20_problems_and_counts_the_rest_in_seconds(tmp_path):
    import time

    raw = tiny_raw()
    keys = "".join(f"  junk_{i}: 1\n" for i in range(400_000))
    config = tmp_path / "huge.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in raw.items() if k != "train"}) + "train:\n" + keys)
    started = time.process_time()  # CPU time of this process: the machine may be busy with others
    code, out = invoke("config", config)
    used = time.process_time() - started
    assert code == 2 and "Traceback" not in out
    assert used < 10, f"{used:.1f}s of CPU"  # under 2 s here; 71 s and 106 MB of messages before
    assert len(out) < 20_000, len(out)
    listed = [line for line in out.splitlines() if line.startswith("  - ")]
    assert len(listed) == 20
    assert "train: 400,000 keys (line" in listed[0] and "only the first 1,000 were read" in listed[0]
    assert listed[1].startswith("  - train.junk_0: unknown key")
    assert "the first 20 listed" in out and "  ... and 981 more" in out


def test_runs_listing_keeps_absurd_numbers_compact(tmp_path):
    root = tmp_path / "runs"
    values = {"huge-time": (1e300, 5, 0.5), "huge-count": (90.0, 10**400, 1e300), "negative": (-5.0, -1, -0.5),
              "text": ("long", "many", "high"), "nan": (float("nan"), 5, float("nan")), "fine": (90.0, 1234, 0.5)}  # fmt: skip
    for i, (name, (wall, params, accuracy)) in enumerate(values.items()):
        run = root / f"2026010{i + 1}-000000-{name}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({
            "status": "completed", "task": "long_dependency", "model": "lstm", "params": params, "steps": 10,
            "wall_time_s": wall, "val": {"accuracy": accuracy}, "test": {"accuracy": accuracy}}))  # fmt: skip
    code, out = invoke("runs", "--runs-dir", root)
    assert code == 0 and "Traceback" not in out, out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 120, out  # every column still fits beside the others
    row = {name: next(line for line in lines if f"-{name}" in line) for name in values}
    assert row["huge-time"].startswith("20260101-000000-huge-time ") and row["huge-time"].endswith(" > 1000y")
    assert "> 999B" in row["huge-count"] and " ? " in row["huge-count"]
    assert row["negative"].split()[-1] == "?" and "completed" in row["negative"]
    assert row["fine"].split()[-3:] == ["50.0%", "50.0%", "1.5m"]


# (id, config file content or override, every substring of the message)
BOOLEAN_NUMBERS = [
    ("override-steps-true", ["train.steps=true"],
     "train.steps = true: a boolean (true/false, yes/no, on/off) is not a number; allowed: a whole number from 1 to 1000000000 or null"),
    ("override-lr-true", ["train.lr=true"], "train.lr = true: a boolean (true/false, yes/no, on/off) is not a number; allowed: a number > 0 and <= 10"),
    ("file-seed-yes", _raw("seed", True), "seed = true: a boolean (true/false, yes/no, on/off) is not a number"),
    ("file-seq-len-false", _raw("task.seq_len", False), "task.seq_len = false: a boolean"),
    ("file-hidden-size-true", _raw("model.hidden_size", True), "model.hidden_size = true: a boolean"),
    ("file-clip-true", _raw("train.clip_grad_norm", True), "train.clip_grad_norm = true: a boolean"),
]  # fmt: skip


@pytest.mark.parametrize("given, message", [pytest.param(g, m, id=i) for i, g, m in BOOLEAN_NUMBERS])
def test_a_boolean_in_a_numeric_setting_is_refused(tmp_path, write_config, given, message):
    if isinstance(given, bytes):
        config, overrides = tmp_path / "bad.yaml", []
        config.write_bytes(given)
    else:
        config, overrides = write_config(tiny_raw()), given
    code, out = invoke("train", config, *overrides, "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 2 and "Traceback" not in out, out
    assert message in flat(out), out
    assert not (tmp_path / "runs").exists()
