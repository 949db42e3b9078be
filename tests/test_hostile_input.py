"""Hostile input: bad configs, bad `predict` input, hostile archives. Each is refused with exit
code 2 and a message that names the problem, never a traceback, and nothing is written.

    python -m pytest tests/test_hostile_input.py -q

The tables are the release note's "bad inputs tried x message shown"; the function-level checks
of archives and of the tokenizer live in test_imdb_data.py and test_properties.py.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
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
# past Python's limit), which rnnlab does not catch: a traceback and exit 1.
YAML_CRASHERS = [
    ("file-date-out-of-range", b"name: 2001-02-30\n", []),
    ("file-hex-without-digits", b"seed: 0x_\n", []),
    ("file-deep-nesting", b"task: " + b"[" * 3000 + b"]" * 3000 + b"\n", []),
    ("override-exponent-without-digits", None, ["train.lr=-e5"]),
]


def test_an_override_pyyaml_cannot_construct_is_kept_as_the_text_typed(tmp_path, write_config):
    """`name=2024-13-01` looks like a date to YAML but is no date: the user meant the text."""
    code, out = invoke("train", write_config(tiny_raw()), "name=2024-13-01", "--runs-dir", tmp_path / "runs")
    assert code == 0, out
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-2024-13-01")


@pytest.mark.parametrize("content, overrides", [pytest.param(c, o, id=i) for i, c, o in YAML_CRASHERS])
def test_yaml_that_pyyaml_cannot_construct_exits_2(tmp_path, write_config, content, overrides):
    if content is None:
        config = write_config(tiny_raw())
    else:
        config = tmp_path / "bad.yaml"
        config.write_bytes(content)
    code, out = invoke("train", config, *overrides, "--runs-dir", tmp_path / "runs")
    assert code == 2 and "Traceback" not in out


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
     ["is a run of task 'long_dependency', which does not classify text; train one with: rnnlab train configs/imdb_bilstm_cpu.yaml"]),
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
