"""README.md's results against the artifacts their commands wrote (issue 14, point 4).

Every figure the README's results state comes from a file kept in `docs/results/<experiment>/`
(a run's `summary.json` / `metrics.jsonl`, a comparison's `results.csv` / `summary.json`, a probe's
`summary.json`), written by the command in that folder's `command.txt`. CLAIMS lists them, one
entry per figure: where the README states it, how it writes it, which artifact holds it and how to
read it there. A new figure is one more entry; nothing here trains anything.

Wall times and steps/s are not checked: they depend on the load on the machine.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _docs() -> str:
    """README.md and the docs pages as one text: the earlier single-seed figures moved from the
    README to the pages (docs/memory.md, imdb.md, ...) with their headings unchanged, so each claim
    is still found under its heading. Issue 26 replaces them with rendered tables as the reruns land."""
    pages = [README, *sorted(DOCS.glob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


def _legacy_folders() -> list[Path]:
    """The folders of docs/results written before `rnnlab reproduce` (those have provenance.json)."""
    return sorted(p for p in RESULTS.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and not (p / "provenance.json").exists())  # .NAME.partial: a rerun under way
RESULTS = ROOT / "docs" / "results"

# Folders of docs/results whose command README does not show (yet), with the reason.
NOT_IN_README = {
    "silver_pos": "the silver POS corpus that benchmarks/make_silver_pos.py builds; the README shows the comparison trained on it",
    "imdb_flagship_export": "issue 31's check of the exported flagship; docs/export.md quotes it (no single-seed claim)",
}


# --- where a figure stands in README.md ------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A table cell: in `section` (a heading's text, with its #s), the first table after the text
    `after` (or the section's first table), the row whose cell in the column headed `key_column`
    (the first column if None) is `key` (backticks stripped), the column headed `column`."""

    section: str
    key: str
    column: str
    after: str | None = None
    key_column: str | None = None

    def __str__(self) -> str:
        table = f", table after {self.after!r}" if self.after else ""
        return f"{self.section!r}{table}, row {self.key!r}, column {self.column!r}"


@dataclass(frozen=True)
class Prose:
    """The paragraph of `section` that contains `anchor` (whitespace may differ: lines wrap)."""

    section: str
    anchor: str

    def __str__(self) -> str:
        return f"{self.section!r}, paragraph with {self.anchor!r}"


def _loose(text: str) -> str:
    """A regex for `text` in which any run of whitespace matches any run of whitespace."""
    return "".join(r"\s+" if part.isspace() else re.escape(part) for part in re.split(r"(\s+)", text) if part)


def _section(readme: str, heading: str) -> tuple[int, int]:
    level = len(heading) - len(heading.lstrip("#"))
    found = [m for m in re.finditer(rf"^{re.escape(heading)}[ \t]*$", readme, re.M)]
    if len(found) != 1:
        raise LookupError(f"heading {heading!r} found {len(found)} times")
    start = found[0].end()
    following = re.compile(rf"^#{{1,{level}}} ", re.M).search(readme, start)
    return start, following.start() if following else len(readme)


def _span(readme: str, where: Row | Prose) -> tuple[int, int]:
    """(start, end) of the cell or paragraph in `readme`; LookupError when it is not there."""
    start, end = _section(readme, where.section)
    if isinstance(where, Prose):
        anchor = re.compile(_loose(where.anchor)).search(readme, start, end)
        if not anchor:
            raise LookupError(f"no paragraph with {where.anchor!r}")
        para_start = max(readme.rfind("\n\n", start, anchor.start()) + 2, start)
        blank = re.compile(r"\n[ \t]*\n").search(readme, anchor.end(), end)
        return para_start, blank.start() if blank else end
    if where.after:
        anchor = readme.find(where.after, start, end)
        if anchor < 0:
            raise LookupError(f"no {where.after!r}")
        start = anchor + len(where.after)
    lines = [m for m in re.finditer(r"^[ \t]*\|.*$", readme[:end], re.M) if m.start() >= start]
    table = lines[:1]
    for m in lines[1:]:  # the table: consecutive lines from the first
        if readme[table[-1].end() : m.start()] != "\n":
            break
        table.append(m)
    if not table:
        raise LookupError("no table")

    def cells(line: re.Match) -> list[tuple[str, int, int]]:
        bars = [line.start() + b.start() for b in re.finditer(r"(?<!\\)\|", line.group())]
        return [(readme[a + 1 : b].strip(), a + 1, b) for a, b in zip(bars, bars[1:])]

    head = [c[0] for c in cells(table[0])]
    for column in (where.column, where.key_column or head[0]):
        if column not in head:
            raise LookupError(f"no column {column!r} in {head}")
    k = head.index(where.key_column or head[0])
    rows = [c for c in map(cells, table[2:]) if len(c) > k and c[k][0].strip("`") == where.key]
    if len(rows) != 1 or len(rows[0]) != len(head):
        raise LookupError(f"{len(rows)} rows with a cell {where.key!r}" if len(rows) != 1 else f"row {where.key!r}: not {len(head)} cells")
    _, a, b = rows[0][head.index(where.column)]
    return a, b


# --- reading the artifacts -------------------------------------------------------------------


@cache
def load(rel: str) -> Any:
    """docs/results/<rel>: JSON as a dict, CSV as a list of dicts (strings), JSONL as a list of dicts,
    text (a benchmark's output) as it is."""
    path = RESULTS / rel
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if path.suffix == ".txt":  # a benchmark's printed output
        return path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    raise ValueError(f"unknown artifact type: {rel}")


def field(dotted: str) -> Callable[[dict], Any]:
    """A JSON field by its dotted path: field('test.accuracy')."""

    def get(data: dict) -> Any:
        for key in dotted.split("."):
            data = data[key]
        return data

    return get


def rows(data: list[dict], **match: Any) -> list[dict]:
    """The CSV rows whose columns equal `match` (compared as text)."""
    return [r for r in data if all(r[k] == str(v) for k, v in match.items())]


def cell(column: str, **match: Any) -> Callable[[list[dict]], str]:
    """One CSV cell: the `column` of the one row matching `match`."""

    def get(data: list[dict]) -> str:
        (row,) = rows(data, **match)
        return row[column]

    return get


def aggregate(model: str, seq_len: int) -> Callable[[dict], dict]:
    """A comparison's summary.json: the aggregated entry (mean over seeds) of one model and length."""

    def get(data: dict) -> dict:
        (entry,) = [a for a in data["aggregate"] if a["model"] == model and a["seq_len"] == seq_len]
        return entry

    return get


def printed(pattern: str) -> Callable[[str], Any]:
    """The groups of `pattern` in a benchmark's output (one value, or a tuple for several)."""

    def get(text: str) -> Any:
        m = re.search(pattern, text, re.M)
        if not m:
            raise LookupError(f"{pattern!r} not in the output")
        return m.group(1) if len(m.groups()) == 1 else m.groups()

    return get


def the_same(values: list[Any]) -> Any:
    """The one value all of `values` share (a claim like "all train 1500 steps")."""
    if len(set(values)) != 1:
        raise ValueError(f"not all equal: {values}")
    return values[0]


# --- how README writes them ------------------------------------------------------------------


def pct(x: Any) -> str:  # 0.103 -> 10.3%
    return f"{100 * float(x):.1f}%"


def pct0(x: Any) -> str:  # 0.1 -> 10%
    return f"{100 * float(x):.0f}%"


def count(x: Any) -> str:  # 1050 -> 1,050
    return f"{int(x):,}"


def sci(digits: int) -> Callable[[Any], str]:  # sci(2)(5.6403e-13) -> 5.64e-13
    return lambda x: f"{float(x):.{digits}e}"


def sig(digits: int) -> Callable[[Any], str]:  # sig(2)(7.148) -> 7.1; sig(2)(1.31e-23) -> 1.3e-23
    return lambda x: f"{float(x):.{digits}g}"


def pm(entry: dict) -> str:  # an aggregate entry -> 100.0 ± 0.0%
    return f"{100 * entry['test_accuracy_mean']:.1f} ± {100 * entry['test_accuracy_std']:.1f}%"


def steps_to(key: str) -> Callable[[dict], str]:
    """An aggregate entry's steps to 90%/99%: the mean over the seeds that reached it, `(k/n)` when
    only k of n did, — when none did."""

    def fmt(entry: dict) -> str:
        reached, mean = entry[f"{key}_reached"], entry[f"{key}_mean"]
        if not reached:
            return "—"
        return f"{mean:,.0f}" + (f" ({reached}/{entry['runs']})" if reached < entry["runs"] else "")

    return fmt


def steps_or_dash(x: str) -> str:  # a results.csv steps_to_* cell: "" when never reached
    return "—" if x == "" else count(x)


WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split()


def orders_fallen(ratio: float) -> str:  # 2.7e-12 -> twelve (orders of magnitude)
    return WORDS[round(-math.log10(ratio))]


def power_of_ten(x: float) -> str:  # 1.6e10 -> 10¹⁰
    return "10" + str(round(math.log10(x))).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


# --- the claims ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """`text` (with `{}` for each figure) stands at `where`; the figures are
    `fmt(get(load(artifact)))` (`get` may return a tuple: one value per `{}`)."""

    where: Row | Prose
    text: str
    artifact: str
    get: Callable[[Any], Any]
    fmt: Callable[[Any], str] = str

    def values(self) -> tuple[str, ...]:
        value = self.get(load(self.artifact))
        return tuple(self.fmt(v) for v in (value if isinstance(value, tuple) else (value,)))

    def pattern(self) -> re.Pattern:
        """The expected text, one group per figure, not inside a longer number or word."""
        literal, values = self.text.split("{}"), self.values()
        if len(literal) != len(values) + 1:
            raise ValueError(f"{self.text!r} has {len(literal) - 1} {{}} for {len(values)} values")
        body = _loose(literal[0]) + "".join(f"({_loose(v)})" + _loose(lit) for v, lit in zip(values, literal[1:]))
        return re.compile(rf"(?<![\w.,]){body}(?![\w]|[.,]\d)")

    def __str__(self) -> str:
        return f"{self.where}: {self.text.format(*self.values())!r} (from docs/results/{self.artifact})"


RESULTS_TABLE = "## Results"
LONG = "#### LSTM, GRU and vanilla RNN at seq_len 100"
SWEEP = "#### Against sequence length"
PROBE = "#### Gradient norms through time"


def _train_row(command: str, column: str = "result", section: str = RESULTS_TABLE) -> Row:
    """The row of a table keyed by its `command` column (the results table unless `section`)."""
    return Row(section, command, column, key_column="command")


LSTM_50 = "rnnlab train configs/long_dependency_lstm.yaml"
RNN_50 = "rnnlab train configs/long_dependency_rnn.yaml"
LSTM_50_DEFAULT = "rnnlab train configs/long_dependency_lstm.yaml model.init=default"
NEXT_TOKEN = "rnnlab train configs/next_token_lstm.yaml"

SEQ100 = "compare_seq100_2seeds/summary.json"
SEQ100_DEFAULT = "compare_seq100_2seeds_default_init/summary.json"
SWEEP_CSV = "compare_seq_len_sweep/results.csv"
RNN_LR = "compare_rnn_lr1e-2"
P_INIT, P_DEFAULT = "probe_gradients/summary.json", "probe_gradients_default_init/summary.json"
P_SUM, P_TRAINED = "probe_gradients_loss_sum/summary.json", "probe_gradients_after_300_steps/summary.json"
GATED = ("lstm", "gru")
LABEL = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}

# --- Inside the cell: rnnlab inspect ---
GATES = "#### What the gates do on `long_dependency`, seq_len 100"
SPEED = "#### Training on the reference cells: 5× slower per step; the same result (the LSTM: only without oneDNN)"
INSPECT = {"LSTM, chrono init": ("inspect_lstm_chrono", "forget_gate"), "LSTM, default init": ("inspect_lstm_default", "forget_gate"),
           "GRU, update-gate bias 3": ("inspect_gru", "update_gate")}
AN, IMP, SP = "inspect_symbol_imprint/analysis.json", "inspect_symbol_imprint/imprint.json", "inspect_speed/results.json"
ONEDNN = "onednn_lstm/output.txt"
f3 = lambda x: f"{float(x):.3f}"
f2 = lambda x: f"{float(x):.2f}"
e1 = lambda x: f"{float(x):.1e}".replace("e-0", "e-")
e4 = lambda x: f"{float(x):.4e}".replace("e-0", "e-")
def _carriers(d):
    c = d["memory_carriers"]["layer0.forward"]
    return tuple(v for m, n in zip(c["keep_gate_mean"], c["keep_gate_min"]) for v in (m, n))
def _speed(model, impl):
    return lambda d: tuple(r for r in d[model] if r["implementation"] == impl)
def _ratio(model):
    def get(d):
        f, r = _speed(model, "fused")(d), _speed(model, "reference")(d)
        ratios = [b["ms_per_step"] / a["ms_per_step"] for a, b in zip(f, r)]
        return min(ratios), max(ratios)
    return get


POS = "### Part-of-speech tagging: `rnnlab train configs/pos_bilstm.yaml`, the chapter's exercise 3"
POS_RUNS = {"LSTM": "lstm", "bi-LSTM": "bilstm", "GRU": "gru", "bi-GRU": "bigru"}


def _pos_summary(model: str) -> str:
    (run,) = (RESULTS / "pos_compare").glob(f"*-{model}-seed0")
    return f"pos_compare/{run.name}/summary.json"



# --- IMDb ---
COMPARE = "### `rnnlab compare`"
IMDB = "### IMDb sentiment: `rnnlab train configs/imdb_bilstm.yaml`, `rnnlab predict`"
CPU_SPEED = "### Speed on a CPU"
IMDB_CMD = "rnnlab train configs/imdb_bilstm.yaml task.data_path=../shared/data/aclImdb_v1.tar.gz"
IMDB_FP32_CMD = IMDB_CMD + " train.precision=fp32"
PIPELINE_CMD = "python benchmarks/imdb_pipeline.py --data ../shared/data/aclImdb_v1.tar.gz"
SPEED_CMD = "python benchmarks/train_speed.py --data ../shared/data/aclImdb_v1.tar.gz"
FLAG, FLAG32 = "imdb_bilstm/summary.json", "imdb_bilstm_fp32/summary.json"
PIPE, SPEED_OUT = "imdb_pipeline/output.txt", "train_speed/output.txt"
SPEED_PATHS = {"a": "(a) a plain fused `nn.LSTM(bidirectional=True)`, fp32", "b": "(b) rnnlab's step before issue 15 (batch 64), fp32",
               "b'": "(b') the same step, freed memory kept", "c": "(c) rnnlab's step now (batch 256), fp32", "d": "(d) rnnlab's step now, bf16"}


def pct2(x: Any) -> str:  # 0.89804 -> 89.80%
    return f"{100 * float(x):.2f}%"


def _pct2_or_int(x: Any) -> str:  # accuracies as pct2, steps as counts
    return count(x) if isinstance(x, int) else pct2(x)


# --- the IMDb language model ---
NEXT_TOKEN_SECTION = "### Next-token language model: `rnnlab train configs/next_token_lstm.yaml`, `rnnlab generate`"
LM_CMD = "rnnlab train configs/next_token_imdb_lstm.yaml task.data_path=../shared/data/aclImdb_v1.tar.gz"
LM = "next_token_imdb_lstm/summary.json"

# --- memory benchmarks ---
MEMORY = "### Memory benchmarks: distractors, copy, adding"
FIXED_COPY_RNN = "rnnlab train configs/copy_rnn.yaml task.min_train_lag=null"
B64_FP32 = "rnnlab train configs/copy_lstm.yaml task.min_train_lag=null train.batch_size=64 train.precision=fp32"  # the copy config before batch 128 + bf16
FIXED_COPY_1E3 = f"{B64_FP32} train.lr=0.001 train.steps=3000 train.early_stopping=10"
FIXED_COPY_4000 = f"{B64_FP32} train.steps=4000 train.early_stopping=null"
MEM_ADD = "rnnlab train configs/adding_lstm.yaml"
# the shipped copy configs: trained on lags 1..T (task.min_train_lag: 1)
COPY = "rnnlab train configs/copy_lstm.yaml"
COPY_2THREADS = f"OMP_NUM_THREADS=2 {COPY}"
COPY_GRU = "rnnlab train configs/copy_gru.yaml"
COPY_T200 = f"{COPY} task.seq_len=200 train.steps=10000"
COPY_T500 = f"{COPY} task.seq_len=500 train.steps=10000"
COPY_T1000 = f"{COPY} task.seq_len=1000 train.steps=12000 train.skip_nonfinite=true"
# the copy configs on lag T only, as they were before task.min_train_lag
FIXED_COPY = "rnnlab train configs/copy_lstm.yaml task.min_train_lag=null"
FIXED_COPY_H256 = f"{B64_FP32} model.hidden_size=256 train.steps=4000 train.early_stopping=null"
FIXED_COPY_COSINE = f"{B64_FP32} train.scheduler=cosine train.steps=10000 train.early_stopping=null"
# the shipped copy config at other seeds, steps, batch size and lags: (command, artifact)
FIXED_COPY_VARIANTS = [
    (f"{FIXED_COPY} seed=1", "copy_lstm_seed1"),
    (f"{FIXED_COPY} seed=2", "copy_lstm_seed2"),
    (f"{FIXED_COPY} seed=2 train.skip_spikes=100", "copy_lstm_seed2_skip_spikes"),
    (f"{FIXED_COPY} train.steps=10000", "copy_lstm_10k"),
    (f"{FIXED_COPY} seed=1 train.steps=10000", "copy_lstm_seed1_10k"),
    (f"{FIXED_COPY} seed=2 train.steps=10000", "copy_lstm_seed2_10k"),
    (f"{FIXED_COPY} train.batch_size=64 train.steps=10000", "copy_lstm_b64_bf16"),
    (f"{FIXED_COPY} task.seq_len=200 train.steps=10000", "copy_lstm_T200"),
    (f"{FIXED_COPY} task.seq_len=500 train.steps=10000", "copy_lstm_T500"),
    (f"{B64_FP32} train.steps=10000", "copy_lstm_b64_fp32"),
]
FIXED_COPY_GRU = "rnnlab train configs/copy_gru.yaml task.min_train_lag=null"
FIXED_COPY_2THREADS = f"OMP_NUM_THREADS=2 {FIXED_COPY}"
FIXED_COPY_2THREADS_10K = f"OMP_NUM_THREADS=2 {FIXED_COPY} train.steps=10000"
FIXED_COPY_T1000 = f"{FIXED_COPY} task.seq_len=1000 train.steps=10000 train.early_stopping=null"
FIXED_COPY_LAGS = {200: "copy_lstm_T200", 500: "copy_lstm_T500"}
COPY_RUNS = [(FIXED_COPY, "copy_lstm"), *FIXED_COPY_VARIANTS]
COPY_PROSE = Prose(MEMORY, "Copying ten symbols")
FIXED_TABLE = "The copy task trained on lag T only"
MIXED_PROSE = Prose(MEMORY, "Training on lags 1..T")
COPY_REACHED_99 = {"copy_lstm", "copy_lstm_seed1", "copy_lstm_10k"}


def _copy_result(d: dict) -> tuple:
    return pct2(d["test"]["accuracy"]), f4(d["test"]["loss"]), pct2(d["val"]["accuracy"]), count(d["val"]["step"])


def _first_val_row(rows: list[dict], at_least: float) -> dict:
    return next(r for r in rows if r["split"] == "val" and r["accuracy"] >= at_least)


def _first_val(rows: list[dict], at_least: float) -> int:
    return _first_val_row(rows, at_least)["step"]


def _first_99(rows: list[dict]) -> int:
    return _first_val(rows, 0.99)


def _first_99_when(rows: list[dict]) -> tuple:
    """The first validation at 99%: its step, and the minutes the run had taken by then."""
    first = _first_val_row(rows, 0.99)
    return count(first["step"]), f"{first['elapsed_s'] / 60:.1f}"


def _test_accuracy(rows: list[dict]) -> str:
    return pct2(next(r for r in rows if r["split"] == "test")["accuracy"])


def _largest_norm(rows: list[dict]) -> tuple:
    """The largest mean gradient norm of a logged window, and the step that ends the window."""
    top = max((r for r in rows if r["split"] == "train"), key=lambda r: r["grad_norm"])
    return f"{top['grad_norm']:.2f}", count(top["step"])


def _spike(rows: list[dict]) -> tuple:
    """The largest gradient norm of a run, its step and the validation accuracy right after."""
    top = max((r for r in rows if r["split"] == "train"), key=lambda r: r["grad_norm"])
    val = next(r for r in rows if r["split"] == "val" and r["step"] == top["step"])
    return count(top["step"]), count(round(top["grad_norm"])), pct(val["accuracy"])
def _val_at(rows: list[dict], step: int) -> float:
    return next(r["accuracy"] for r in rows if r["split"] == "val" and r["step"] == step)


def _lstm_seeds_at(step: int) -> list[float]:
    return [_val_at(load(f"{name}/metrics.jsonl"), step) for name in ("copy_lstm_10k", "copy_lstm_seed1_10k", "copy_lstm_seed2_10k")]


def _evaluated(text: str) -> tuple:
    """`rnnlab evaluate`'s printed table: (accuracy, loss) as printed."""
    return re.search(r"accuracy\s*│\s*([\d.]+%)", text)[1], re.search(r"loss\s*│\s*([\d.]+)", text)[1]


def _diverged_at(d: dict) -> str:
    assert d["status"] == "diverged"
    return count(d["steps"] + 1)


def _skip_windows(rows: list[dict]) -> list[tuple[int, int]]:
    return [(r["step"], r["spikes_skipped"]) for r in rows if r["split"] == "train" and r["spikes_skipped"]]


def _early_skips(rows: list[dict]) -> tuple:
    """All skipped updates, and those of the first two windows with any (the episodes on the plateau)."""
    windows = _skip_windows(rows)
    return str(sum(n for _, n in windows)), str(windows[0][1] + windows[1][1]), count(windows[0][0]), count(windows[1][0])


def _norm_around(rows: list[dict], step: int) -> tuple:
    """The mean gradient norm of the window ending at `step`, and of the window before it."""
    norms = {r["step"]: r["grad_norm"] for r in rows if r["split"] == "train"}
    return f"{norms[step]:.2f}", f"{norms[step - 100]:.2f}"


def _late_skips(rows: list[dict]) -> tuple:
    """Skips after the plateau's episodes, after the step that opens their first window, and validation's dip there."""
    later = _skip_windows(rows)[2:]
    first = later[0][0]
    dip = min((r for r in rows if r["split"] == "val" and first <= r["step"] <= first + 500), key=lambda r: r["accuracy"])
    return str(sum(n for _, n in later)), count(first - 100), pct(dip["accuracy"]), count(dip["step"])


DISTRACT = "distractors_compare/results.csv"
ADDING = "adding_compare/results.csv"


def _mem_row(command: str, column: str = "result") -> Row:
    return _train_row(command, column, section=MEMORY)


def _fixed_row(command: str, column: str = "result") -> Row:
    """A row of the table of copy runs on lag T only."""
    return Row(MEMORY, command, column, after=FIXED_TABLE, key_column="command")


def f4(x: Any) -> str:  # 0.17328 -> 0.1733
    return f"{float(x):.4f}"


# --- the IMDb cells ---
CELLS = "imdb_cells/results.csv"
CELLS_CMD = "rnnlab compare rnn lstm gru --config configs/imdb_lstm.yaml task.data_path=../shared/data/aclImdb_v1.tar.gz"

# --- the linear baseline and the ensemble ---
BOW_CMD = "rnnlab train configs/imdb_bow.yaml task.data_path=../shared/data/aclImdb_v1.tar.gz"
GLOVE_CMD = "rnnlab train configs/imdb_bilstm_glove.yaml task.data_path=../shared/data/aclImdb_v1.tar.gz"
GLOVE = "imdb_bilstm_glove/summary.json"
EXERCISE5 = "#### Exercise 5: past the linear baseline"
EXERCISE5_RUNS = {  # the table's train rows: command -> the run's summary
    "rnnlab train configs/imdb_bilstm.yaml model.pooling=attention name=imdb_bilstm_attention": "imdb_bilstm_attention/summary.json",
    "rnnlab train configs/imdb_bilstm.yaml model.hidden_size=256 name=imdb_bilstm_h256": "imdb_bilstm_h256/summary.json",
    "rnnlab train configs/imdb_lm.yaml`, then `rnnlab train configs/imdb_bilstm_pretrained.yaml": "imdb_bilstm_pretrained/summary.json",
    "rnnlab train configs/imdb_bilstm_pretrained.yaml model.init_lr_scale=0.25 name=imdb_bilstm_pretrained_lr025": "imdb_bilstm_pretrained_lr025/summary.json",
    "rnnlab train configs/imdb_lm.yaml task.reverse=true name=imdb_lm_backward`, then `rnnlab train configs/imdb_bilstm_pretrained.yaml "
    "model.init_backward_from=runs/imdb_lm_backward name=imdb_bilstm_pretrained_both": "imdb_bilstm_pretrained_both/summary.json",
}
BOW = "imdb_bow/summary.json"

# --- inspect on IMDb reviews ---
GATES_IMDB = "#### What the gates do on IMDb reviews"
GATE_WORDS = "inspect_imdb/input_gate_by_word.json"


def _gate_at(review: str, word: str, lowest: bool = False) -> Callable[[dict], str]:
    """The mean input gate at `word` in `review` (its highest occurrence, or its lowest)."""

    def get(d: dict) -> str:
        values = [v for w, v in d[review] if w == word]
        return f"{(min if lowest else max)(values):.3f}"

    return get


EXPRNN = "#### Copy at T = 1,000: expRNN"
EXPRNN_SHIPPED = "rnnlab train configs/copy_exprnn.yaml"
EXPRNN_ONE_RATE = "rnnlab train configs/copy_exprnn.yaml model.orthogonal_lr_scale=1 train.clip_grad_norm=null train.steps=4000"
CHRONO_RMSPROP = "rnnlab train configs/copy_lstm_chrono_rmsprop.yaml"

BI_LESSON = "#### A bidirectional model reads the answer last"
BIDIRECTIONAL_LESSON = [
    ("bilstm_t300", "rnnlab train configs/long_dependency_bilstm.yaml task.seq_len=300 train.steps=150"),
    ("bilstm_t300_default_init", "rnnlab train configs/long_dependency_bilstm.yaml task.seq_len=300 train.steps=150 model.init=default"),
    ("lstm_t50", "rnnlab train configs/long_dependency_lstm.yaml train.steps=150"),
    ("lstm_t300", "rnnlab train configs/long_dependency_lstm.yaml task.seq_len=300 train.steps=150"),
    ("lstm_t50_default_init", "rnnlab train configs/long_dependency_lstm.yaml train.steps=150 model.init=default"),
]

CLAIMS: list[Claim] = [
    # ## Results: the table's rows, found by their command
    Claim(_train_row(LSTM_50), "test accuracy {}", "long_dependency_lstm/summary.json", field("test.accuracy"), pct),
    Claim(_train_row(LSTM_50), "(chance {})", "long_dependency_lstm/summary.json", field("chance"), pct0),
    Claim(_train_row(LSTM_50, "wall time"), "({} steps", "long_dependency_lstm/summary.json", field("steps"), count),
    Claim(_train_row(RNN_50), "{}: chance", "long_dependency_rnn/summary.json", field("test.accuracy"), pct),
    Claim(_train_row(RNN_50, "wall time"), "early stopping at {} steps", "long_dependency_rnn/summary.json", field("steps"), count),
    Claim(_train_row(LSTM_50_DEFAULT), "{}: chance", "long_dependency_lstm_default_init/summary.json", field("test.accuracy"), pct),
    Claim(_train_row(LSTM_50_DEFAULT, "wall time"), "early stopping at {} steps", "long_dependency_lstm_default_init/summary.json", field("steps"), count),
    Claim(_train_row(NEXT_TOKEN), "determined accuracy {}", "next_token_lstm/summary.json", field("test.determined_accuracy"), pct),
    Claim(_train_row(NEXT_TOKEN), "next-token accuracy {}", "next_token_lstm/summary.json", field("test.accuracy"), pct),
    Claim(_train_row(NEXT_TOKEN), "perplexity {}", "next_token_lstm/summary.json", field("test.perplexity"), lambda x: f"{x:.2f}"),
    Claim(_train_row(NEXT_TOKEN, "wall time"), "early stopping at {} steps", "next_token_lstm/summary.json", field("steps"), count),
    # Copy at T = 1,000 (issue 29): single runs
    Claim(Row(EXPRNN, EXPRNN_SHIPPED, "test recall", key_column="command"), "{}", "copy_exprnn_T1000/summary.json", field("test.accuracy"), pct),
    Claim(Row(EXPRNN, EXPRNN_SHIPPED, "best validation recall", key_column="command"), "{} (step {})", "copy_exprnn_T1000/summary.json",
          lambda d: (pct(d["val"]["accuracy"]), count(d["val"]["step"]))),  # fmt: skip
    Claim(Row(EXPRNN, EXPRNN_SHIPPED, "wall time", key_column="command"), "{} min", "copy_exprnn_T1000/summary.json",
          field("wall_time_s"), lambda x: f"{x / 60:.1f}"),  # fmt: skip
    Claim(Prose(EXPRNN, "The shipped config solves it"), "99% validation recall first at step {}, {} minutes", "copy_exprnn_T1000/metrics.jsonl",
          lambda rows: (lambda r: (count(r["step"]), f"{r['elapsed_s'] / 60:.1f}"))(
              next(r for r in rows if r["split"] == "val" and r["accuracy"] >= 0.99))),  # fmt: skip
    Claim(Row(EXPRNN, EXPRNN_ONE_RATE, "test recall", key_column="command"), "{}", "copy_exprnn_T1000_one_rate/summary.json", field("test.accuracy"), pct),
    Claim(Row(EXPRNN, EXPRNN_ONE_RATE, "best validation recall", key_column="command"), "{} (step {})", "copy_exprnn_T1000_one_rate/summary.json",
          lambda d: (pct(d["val"]["accuracy"]), count(d["val"]["step"]))),  # fmt: skip
    Claim(Row(EXPRNN, EXPRNN_ONE_RATE, "wall time", key_column="command"), "{} min", "copy_exprnn_T1000_one_rate/summary.json",
          field("wall_time_s"), lambda x: f"{x / 60:.1f}"),  # fmt: skip
    Claim(Row(EXPRNN, CHRONO_RMSPROP, "best validation recall", key_column="command"), "{} by step {},", "copy_lstm_chrono_rmsprop_T1000_stopped/metrics.jsonl",
          lambda rows: (pct(max(r["accuracy"] for r in rows if r["split"] == "val")), count(max(r["step"] for r in rows)))),  # fmt: skip
    Claim(Prose(EXPRNN, "The shipped config solves it"), "passed {} validation recall at step {},", "copy_exprnn_T1000_one_rate/metrics.jsonl",
          lambda rows: ("90%", count(min(r["step"] for r in rows if r["split"] == "val" and r["accuracy"] >= 0.9)))),  # fmt: skip
    Claim(Prose(EXPRNN, "The shipped config solves it"), "(to {} at step {} and {} at step {})", "copy_exprnn_T1000_one_rate/metrics.jsonl",
          lambda rows: tuple(x for step in (2600, 3900) for x in (pct(_val_at(rows, step)), count(step)))),  # fmt: skip
    # Part-of-speech tagging on the silver corpus: the compare's table
    *(
        Claim(Row(POS, label, column), "{}", _pos_summary(model), field(key), pct)
        for label, model in POS_RUNS.items()
        for column, key in (("test accuracy", "test.accuracy"), ("unknown-word accuracy", "test.unk_accuracy"),
                            ("unseen-word accuracy", "test.unseen_accuracy"))
    ),
    # Inside the cell: the inspect section's figures
    *(c for run, (folder, gate) in INSPECT.items() for c in (
        Claim(Row(GATES, run, "test accuracy"), "{}", f"{folder}/training_summary.json", field("test.accuracy"), pct),
        Claim(Row(GATES, run, "keep gate: mean, share above 0.9"), gate.replace("_", " ") + " {}, {}", f"{folder}/summary.json",
              lambda d, g=gate: (f3(d["gates"][f"layer0.forward.{g}"]["mean"]), pct(d["gates"][f"layer0.forward.{g}"]["above_0.9"]))),
        Claim(Row(GATES, run, "the 4 steadiest units: keep gate mean (min)"), "{} ({}), {} ({}), {} ({}), {} ({})", f"{folder}/summary.json", _carriers, f3),
    )),
    Claim(Prose(GATES, "With chrono initialisation"), "{} of its 32 units stay above 0.9", AN, lambda d: d["lstm_chrono"]["units_keep_above_0.9_at_every_step_after_t0"]),
    Claim(Prose(GATES, "With chrono initialisation"), "(mean {},", "inspect_lstm_chrono/summary.json", lambda d: d["gates"]["layer0.forward.input_gate"]["mean"], f3),
    Claim(Prose(GATES, "With chrono initialisation"), "{} of the values below 0.1", "inspect_lstm_chrono/summary.json", lambda d: d["gates"]["layer0.forward.input_gate"]["below_0.1"], lambda x: f"{100 * x:.0f}%"),
    Claim(Prose(GATES, "With chrono initialisation"), "from {} at t = 0", IMP, field("LSTM, chrono init (cell state).t=0"), lambda x: f"{x:.1f}"),
    Claim(Prose(GATES, "With chrono initialisation"), "to {} at t = 99", IMP, field("LSTM, chrono init (cell state).t=99"), lambda x: f"{x:.0f}"),
    Claim(Prose(GATES, "With PyTorch's default initialisation"), "between {} and {}", AN, lambda d: (d["lstm_default"]["keep_min"], d["lstm_default"]["keep_max"]), f2),
    Claim(Prose(GATES, "With PyTorch's default initialisation"), "mean {} (its", "inspect_lstm_default/summary.json", lambda d: d["gates"]["layer0.forward.forget_gate"]["mean"], f2),
    Claim(Prose(GATES, "With PyTorch's default initialisation"), "last step, {}, the mean is", AN, field("lstm_default.last_checkpoint.step")),
    Claim(Prose(GATES, "With PyTorch's default initialisation"), "lower still, {})", AN, field("lstm_default.last_checkpoint.forget_gate_mean"), f2),
    Claim(Prose(GATES, "With PyTorch's default initialisation"), "states is {} at t = 0", IMP, field("LSTM, default init (cell state).t=0"), f2),
    Claim(Prose(GATES, "With PyTorch's default initialisation"), "{} at t = 10, {} at t = 20 and {} (float32 rounding)", IMP,
          lambda d: tuple(d["LSTM, default init (cell state)"][t] for t in ("t=10", "t=20", "t=99")), e1),
    Claim(Prose(GATES, "With PyTorch's default initialisation"), "from t = {} on", AN, field("lstm_default.imprint_first_t_at_its_final_value")),
    Claim(Prose(GATES, "With PyTorch's default initialisation"), "a factor of {}–{} per step", AN, lambda d: tuple(d["lstm_default"]["imprint_shrink_per_step_t1_to_t20"]), f2),
    Claim(Prose(GATES, "The GRU does it differently"), "(mean {} at t = 1", AN, field("gru.keep_mean_over_units_at_t.1"), f2),
    Claim(Prose(GATES, "The GRU does it differently"), "({} of 32)", AN, lambda d: d["gru"]["units_keep_above_0.9_at_every_step_after_t0"]),
    Claim(Prose(GATES, "The GRU does it differently"), "unit {}: z {},", "inspect_gru/summary.json",
          lambda d: (d["memory_carriers"]["layer0.forward"]["units"][0], f3(d["memory_carriers"]["layer0.forward"]["keep_gate_mean"][0]))),
    Claim(Prose(GATES, "The GRU does it differently"), "falls to {} by t = 99", AN, field("gru.keep_mean_over_units_at_t.99"), f2),
    Claim(Prose(GATES, "The GRU does it differently"), "largest difference is {})", IMP, field("GRU, update-gate bias 3 (hidden state).t=99"), lambda x: f"{x:.1f}"),
    *(c for model, impl in (("lstm", "fused"), ("lstm", "reference"), ("gru", "fused"), ("gru", "reference")) for c in (
        Claim(Row(SPEED, f"{model.upper()}, {impl}", "test accuracy"), "{}", SP, lambda d, m=model, i=impl: _speed(m, i)(d)[0]["test_accuracy"], pct),
        Claim(Row(SPEED, f"{model.upper()}, {impl}", "test loss"), "{}", SP, lambda d, m=model, i=impl: _speed(m, i)(d)[0]["test_loss"], e4),
        Claim(Row(SPEED, f"{model.upper()}, {impl}", "ms per step (round 1, round 2)"), "{}, {}", SP,
              lambda d, m=model, i=impl: tuple(r["ms_per_step"] for r in _speed(m, i)(d)), f2),
    )),
    Claim(Prose(SPEED, "The\nreference LSTM takes"), "reference LSTM takes {}–{}× as long", SP, _ratio("lstm"), lambda x: f"{x:.1f}"),
    Claim(Prose(SPEED, "The\nreference LSTM takes"), "the reference GRU {}–{}×", SP, _ratio("gru"), lambda x: f"{x:.1f}"),
    Claim(Prose(SPEED, "Why rnnlab leaves oneDNN on"), "oneDNN takes {} ms, PyTorch's native kernel\n{} ms ({}× as long) and the reference cell {} ms", ONEDNN,
          lambda t: (*printed(r"^long dependency, T = 50\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")(t)[:2], printed(r"^native_over_onednn=([\d.]+)$")(t),
                     printed(r"^long dependency, T = 50\s+[\d.]+\s+[\d.]+\s+([\d.]+)")(t))),
    Claim(Prose(SPEED, "Why rnnlab leaves oneDNN on"), "copy task's size (at batch 64) the native\nkernel takes {}× as long, at the IMDb flagship's {}×", ONEDNN,
          lambda t: (printed(r"^copy task, T = 100(?:\s+\S+){3}\s+([\d.]+)")(t), printed(r"^IMDb flagship, one direction(?:\s+\S+){3}\s+([\d.]+)")(t))),
    Claim(Prose(SPEED, "Why rnnlab leaves oneDNN on"), "differ by at most {}.", ONEDNN,
          lambda t: max(re.findall(r"(\d\.\de-\d\d)$", t, re.M), key=float), lambda x: x.replace("e-0", "e-")),
    Claim(Prose(SPEED, "Each run repeats itself exactly"), "a difference of {},", SP,
          lambda d: abs(d["lstm"][0]["test_loss"] - d["lstm"][1]["test_loss"]), e1),
    Claim(Prose(SPEED, "Each run repeats itself exactly"), "the very same test loss, {}, the", SP,
          lambda d: d["same_seed_py"]["oneDNN off"]["fused"] if d["same_seed_py"]["oneDNN off"]["fused"] == d["same_seed_py"]["oneDNN off"]["reference"] else None,
          lambda x: f"{x:.16e}".replace("e-0", "e-")),
    # --- the IMDb language model ---
    Claim(_train_row(LM_CMD), "test perplexity **{}**", LM, field("test.perplexity"), lambda x: f"{x:.1f}"),
    Claim(_train_row(LM_CMD), "next-token accuracy {}", LM, field("test.accuracy"), pct),
    Claim(_train_row(LM_CMD, "wall time"), "({} steps)", LM, field("steps"), count),
    Claim(Prose(NEXT_TOKEN_SECTION, "after the IMDb language model"), "(test perplexity {})", LM, field("test.perplexity"), lambda x: f"{x:.1f}"),
    Claim(Prose(NEXT_TOKEN_SECTION, "this movie was a bit"), "{}", "next_token_imdb_lstm/generate.txt", lambda t: t.strip()),
    # --- memory benchmarks ---
    Claim(_fixed_row(FIXED_COPY_RNN), "recall {}, loss {}: the memoryless baseline ({}, {})", "copy_rnn/summary.json",
          lambda d: (pct(d["test"]["accuracy"]), f4(d["test"]["loss"]), pct(d["chance"]), f4(d["baseline_loss"]))),
    Claim(_fixed_row(FIXED_COPY_RNN, "wall time"), "(early stopping at {} steps,", "copy_rnn/summary.json", field("steps"), count),
    Claim(_fixed_row(FIXED_COPY_1E3), "recall {}, loss {}", "copy_lstm_lr1e-3/summary.json", lambda d: (pct(d["test"]["accuracy"]), f4(d["test"]["loss"]))),
    Claim(_fixed_row(FIXED_COPY_1E3, "wall time"), "({} steps)", "copy_lstm_lr1e-3/summary.json", field("steps"), count),
    Claim(_fixed_row(FIXED_COPY_4000), "recall {}, loss {}", "copy_lstm_4000/summary.json", lambda d: (pct(d["test"]["accuracy"]), f4(d["test"]["loss"]))),
    Claim(_fixed_row(FIXED_COPY_H256), "recall {}, loss {}: above the 128 units' {} at the same step", "copy_lstm_h256/summary.json",
          lambda d: (pct(d["test"]["accuracy"]), f4(d["test"]["loss"]), pct(load("copy_lstm_4000/summary.json")["test"]["accuracy"]))),
    Claim(_fixed_row(FIXED_COPY_COSINE), "recall {}, loss {} (best validation {} at step {})", "copy_lstm_cosine/summary.json",
          lambda d: (pct(d["test"]["accuracy"]), f4(d["test"]["loss"]), pct(d["val"]["accuracy"]), count(d["val"]["step"]))),
    Claim(COPY_PROSE, "A cosine schedule from the start ended lower in 10,000 steps ({})", "copy_lstm_cosine/summary.json", field("test.accuracy"), pct),
    Claim(COPY_PROSE, "({} against {} at 10,000 steps, both bf16)", "copy_lstm_10k/summary.json",
          lambda d: (pct2(d["test"]["accuracy"]), pct2(load("copy_lstm_b64_bf16/summary.json")["test"]["accuracy"]))),
    Claim(COPY_PROSE, "seed 0 is at {} (99% on validation first at step {}), seeds 1 and 2 at {} and {}.", "copy_lstm_10k/metrics.jsonl",
          lambda rows: (_test_accuracy(rows), count(_first_99(rows)),
                        pct2(load("copy_lstm_seed1_10k/summary.json")["test"]["accuracy"]),
                        pct2(load("copy_lstm_seed2_10k/summary.json")["test"]["accuracy"]))),
    Claim(COPY_PROSE, "Given 20,000 steps, seed 1 reaches {} as well", "copy_lstm_seed1/summary.json", field("test.accuracy"), pct2),
    Claim(COPY_PROSE, "Seed 2 was at {} on validation when a gradient spike threw it back to 0% at step {}; it ended at its best checkpoint, {} on test.",
          "copy_lstm_seed2/summary.json", lambda d: (pct2(d["val"]["accuracy"]), _spike(load("copy_lstm_seed2/metrics.jsonl"))[0],
                                                     pct2(d["test"]["accuracy"]))),
    Claim(_fixed_row(f"{FIXED_COPY} seed=2 train.skip_spikes=100"), "{} updates skipped, {} of them in the windows ending at steps {} and {}",
          "copy_lstm_seed2_skip_spikes/metrics.jsonl", _early_skips),
    Claim(_fixed_row(f"{FIXED_COPY} seed=2 train.skip_spikes=100"), "and {} after step {}; validation dipped to {} at step {} and recovered",
          "copy_lstm_seed2_skip_spikes/metrics.jsonl", _late_skips),
    Claim(_fixed_row(f"{FIXED_COPY} seed=2 train.skip_spikes=100"), "after {} skips each the median had risen", "copy_lstm_seed2_skip_spikes/metrics.jsonl",
          lambda rows: str(_skip_windows(rows)[0][1]) if _skip_windows(rows)[0][1] == _skip_windows(rows)[1][1] else "unequal"),
    Claim(_fixed_row(f"{FIXED_COPY} seed=2 train.skip_spikes=100"), "(the run without the guard had the first one too: mean norm {} over those 100 steps, against {})",
          "copy_lstm_seed2/metrics.jsonl", lambda rows: _norm_around(rows, _skip_windows(load("copy_lstm_seed2_skip_spikes/metrics.jsonl"))[0][0])),
    Claim(COPY_PROSE, "it skipped {} batches after step 13,400", "copy_lstm_seed2_skip_spikes/metrics.jsonl", lambda rows: _late_skips(rows)[0]),
    Claim(COPY_PROSE, "But it also skipped {} batches early on", "copy_lstm_seed2_skip_spikes/metrics.jsonl", lambda rows: _early_skips(rows)[1]),
    Claim(COPY_PROSE, "it ended at {} after 20,000 steps", "copy_lstm_seed2_skip_spikes/summary.json", field("test.accuracy"), pct2),
    Claim(_fixed_row(FIXED_COPY_GRU), "recall {}, loss {} (best validation {} at step {})", "copy_gru/summary.json", _copy_result),
    Claim(_fixed_row(FIXED_COPY_GRU), "{} on validation at step 1,000, 50% first at step {}, 80% at {}", "copy_gru/metrics.jsonl",
          lambda rows: (pct(_val_at(rows, 1000)), count(_first_val(rows, 0.5)), count(_first_val(rows, 0.8)))),
    Claim(_fixed_row(FIXED_COPY_GRU, "wall time"), "({} steps", "copy_gru/summary.json", field("steps"), count),
    Claim(COPY_PROSE, "({} on validation at step 1,000, where the LSTM's three seeds are at {} to {})", "copy_gru/metrics.jsonl",
          lambda rows: (pct(_val_at(rows, 1000)), pct(min(_lstm_seeds_at(1000))), pct(max(_lstm_seeds_at(1000))))),
    Claim(COPY_PROSE, "{} at step 5,000 and {} on test at 10,000, where the LSTM's seeds are at {}, {} and {} at 5,000", "copy_gru/metrics.jsonl",
          lambda rows: (pct(_val_at(rows, 5000)), _test_accuracy(rows),
                        *(pct(a) for a in _lstm_seeds_at(5000)))),
    Claim(_fixed_row(FIXED_COPY_2THREADS), "recall {}, loss {} (best validation {} at step {})", "copy_lstm_2threads/summary.json", _copy_result),
    Claim(_fixed_row(FIXED_COPY_2THREADS), "99% on validation first at step {}, {} min into the run", "copy_lstm_2threads/metrics.jsonl", _first_99_when),
    Claim(_fixed_row(FIXED_COPY_2THREADS, "wall time"), "{} min ({} steps)", "copy_lstm_2threads/summary.json",
          lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]))),
    Claim(_fixed_row(FIXED_COPY_2THREADS), "no gradient spike (the largest mean gradient norm over 100 steps: {}, at step {})",
          "copy_lstm_2threads/metrics.jsonl", _largest_norm),
    Claim(COPY_PROSE, "reached 99% on validation after {}\nminutes and ended at {} on test after {}", "copy_lstm_2threads/metrics.jsonl",
          lambda rows: (_first_99_when(rows)[1], _test_accuracy(rows),
                        f"{load('copy_lstm_2threads/summary.json')['wall_time_s'] / 60:.1f}")),
    Claim(COPY_PROSE, "99% on validation coming after {} to {}\nsteps", "copy_lstm_10k/metrics.jsonl",
          lambda rows: (count(_first_99(rows)), count(_first_99(load("copy_lstm_seed1/metrics.jsonl"))))),
    Claim(_fixed_row(FIXED_COPY_2THREADS_10K), "recall {}, loss {} (best validation {} at step {})", "copy_lstm_10k_2threads/summary.json", _copy_result),
    Claim(_fixed_row(FIXED_COPY_2THREADS_10K), "seed 0 took another path ({} on validation at step 5,000, against {})", "copy_lstm_10k_2threads/metrics.jsonl",
          lambda rows: (pct(_val_at(rows, 5000)), pct(_val_at(load("copy_lstm_10k/metrics.jsonl"), 5000)))),
    Claim(_fixed_row(FIXED_COPY_2THREADS_10K, "wall time"), "{} min ({} steps)", "copy_lstm_10k_2threads/summary.json",
          lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]))),
    Claim(_fixed_row(FIXED_COPY_T1000), "diverged at step {} (a gradient norm of inf). Best validation {} at step {}", "copy_lstm_T1000/summary.json",
          lambda d: (_diverged_at(d), pct2(d["val"]["accuracy"]), count(d["val"]["step"]))),
    Claim(_fixed_row(FIXED_COPY_T1000), "that checkpoint scores recall {}, loss {} on test", "copy_lstm_T1000/evaluate_test.txt", _evaluated),
    Claim(_fixed_row(FIXED_COPY_T1000), "against a memoryless loss of {} at T = 1,000", "copy_lstm_T1000/summary.json", field("baseline_loss"), f4),
    Claim(_fixed_row(FIXED_COPY_T1000), "20% on validation first at step {}, 40% at {}", "copy_lstm_T1000/metrics.jsonl",
          lambda rows: (count(_first_val(rows, 0.2)), count(_first_val(rows, 0.4)))),
    Claim(_fixed_row(FIXED_COPY_T1000), "a gradient spike at step {} (norm {}) threw validation back to {}", "copy_lstm_T1000/metrics.jsonl", _spike),
    Claim(_fixed_row(FIXED_COPY_T1000, "wall time"), "({} steps", "copy_lstm_T1000/summary.json", field("steps"), count),
    Claim(COPY_PROSE, "(40% on validation first at step {}, against {} at T = 500)", "copy_lstm_T1000/metrics.jsonl",
          lambda rows: (count(_first_val(rows, 0.4)), count(_first_val(load("copy_lstm_T500/metrics.jsonl"), 0.4)))),
    Claim(COPY_PROSE, "until a gradient spike at step {} threw it back from {} to {}, and at step {} a gradient norm of inf", "copy_lstm_T1000/metrics.jsonl",
          lambda rows: (_spike(rows)[0], pct(_val_at(rows, int(_spike(rows)[0].replace(",", "")) - 100)), _spike(rows)[2],
                        _diverged_at(load("copy_lstm_T1000/summary.json")))),
    Claim(COPY_PROSE, "at about {} s per step on one thread, 20,000 steps at T = 1,000\nare a run of {} hours", "copy_lstm_T1000/summary.json",
          lambda d: (f"{d['wall_time_s'] / d['steps']:.2f}", f"{20000 * d['wall_time_s'] / d['steps'] / 3600:.1f}")),
    Claim(COPY_PROSE, "its best checkpoint scores {} on test", "copy_lstm_T1000/evaluate_test.txt", lambda t: _evaluated(t)[0]),
    Claim(COPY_PROSE, "The GRU does not solve it at T = 100 in {} steps", "copy_gru/summary.json", field("steps"), count),
    Claim(COPY_PROSE, "At T = 200 the shipped config reaches {} in 10,000 steps, at T = 500 {} (still climbing", "copy_lstm_T200/summary.json",
          lambda d: (pct2(d["test"]["accuracy"]), pct2(load("copy_lstm_T500/summary.json")["test"]["accuracy"]))),
    *(Claim(_fixed_row(cmd), "recall {}, loss {} (best validation {} at step {})", f"{name}/summary.json", _copy_result) for cmd, name in COPY_RUNS),
    *(Claim(_fixed_row(cmd, "wall time"), "({} steps", f"{name}/summary.json", field("steps"), count) for cmd, name in COPY_RUNS),
    *(Claim(_fixed_row(cmd), "99% on validation first at step {}", f"{name}/metrics.jsonl", _first_99, count)
      for cmd, name in COPY_RUNS if name in COPY_REACHED_99),
    *(Claim(_fixed_row(f"{FIXED_COPY} task.seq_len={t} train.steps=10000"), f"against a memoryless loss of {{}} at T = {t}", f"{name}/summary.json",
            field("baseline_loss"), f4) for t, name in FIXED_COPY_LAGS.items()),  # fmt: skip
    *(Claim(_fixed_row(cmd), "a gradient spike at step {} (norm {}) threw validation back to {}", f"{name}/metrics.jsonl", _spike)
      for cmd, name in COPY_RUNS if name in ("copy_lstm", "copy_lstm_seed2")),
    Claim(_mem_row(COPY_2THREADS), "recall {}, loss {} (best validation {} at step {})", "copy_lstm_mixed_2threads/summary.json", _copy_result),
    Claim(_mem_row(COPY_2THREADS), "99% on validation first at step {}, {} min into the run", "copy_lstm_mixed_2threads/metrics.jsonl", _first_99_when),
    Claim(_mem_row(COPY_2THREADS), "a gradient spike at step {} (mean norm {} over 100 steps) threw validation back to {}", "copy_lstm_mixed_2threads/metrics.jsonl", _spike),
    Claim(MIXED_PROSE, "and 4.5 minutes (on lag T only: {} steps, {} minutes) and scored {} on test", "copy_lstm_2threads/metrics.jsonl",
          lambda rows: (*_first_99_when(rows), _test_accuracy(load("copy_lstm_mixed_2threads/metrics.jsonl")))),
    Claim(MIXED_PROSE, "reached 99% on validation after\n{} steps and {} minutes", "copy_lstm_mixed_2threads/metrics.jsonl", _first_99_when),
    Claim(MIXED_PROSE, "seed 1 after {} steps (on lag T only: {}), seed 2, which on\nlag T only never did, after {}", "copy_lstm_mixed_seed1/metrics.jsonl",
          lambda rows: (count(_first_99(rows)), count(_first_99(load("copy_lstm_seed1/metrics.jsonl"))),
                        count(_first_99(load("copy_lstm_mixed_seed2/metrics.jsonl"))))),
    Claim(MIXED_PROSE, "at\nsteps {}, {} and {}, that threw validation back to {}, {} and {}", "copy_lstm_mixed_2threads/metrics.jsonl",
          lambda rows: tuple(x for pair in zip(*[( _spike(load(f"{n}/metrics.jsonl"))[0], _spike(load(f"{n}/metrics.jsonl"))[2])
                                                 for n in ("copy_lstm_mixed_2threads", "copy_lstm_mixed_seed1", "copy_lstm_mixed_seed2")]) for x in pair)),
    Claim(MIXED_PROSE, "at the memoryless baseline with short lags in training as well ({})", "copy_rnn_mixed/summary.json", field("test.accuracy"), pct2),
    Claim(_mem_row(COPY_2THREADS, "wall time"), "{} min ({} steps;", "copy_lstm_mixed_2threads/summary.json",
          lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]))),
    Claim(_mem_row(f"{COPY} seed=1"), "recall {}, loss {} (best validation {} at step {})", "copy_lstm_mixed_seed1/summary.json", _copy_result),
    Claim(_mem_row(f"{COPY} seed=1"), "99% on validation first at step {} (on lag T only: {})", "copy_lstm_mixed_seed1/metrics.jsonl",
          lambda rows: (count(_first_99(rows)), count(_first_99(load("copy_lstm_seed1/metrics.jsonl"))))),
    Claim(_mem_row(f"{COPY} seed=1"), "a gradient spike at step {} (mean norm {} over 100 steps) threw validation back to {}", "copy_lstm_mixed_seed1/metrics.jsonl", _spike),
    Claim(_mem_row(f"{COPY} seed=1", "wall time"), "{} min ({} steps,", "copy_lstm_mixed_seed1/summary.json",
          lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]))),
    Claim(_mem_row(f"{COPY} seed=2"), "recall {}, loss {} (best validation {} at step {})", "copy_lstm_mixed_seed2/summary.json", _copy_result),
    Claim(_mem_row(f"{COPY} seed=2"), "99% on validation first at step {}, {} min into the run (on lag T only, seed 2 never reached 99%: {} at best)",
          "copy_lstm_mixed_seed2/metrics.jsonl", lambda rows: (*_first_99_when(rows), pct2(load("copy_lstm_seed2/summary.json")["val"]["accuracy"]))),
    Claim(_mem_row(f"{COPY} seed=2"), "a gradient spike at step {} (mean norm {} over 100 steps) threw validation back to {}", "copy_lstm_mixed_seed2/metrics.jsonl", _spike),
    Claim(_mem_row(f"{COPY} seed=2", "wall time"), "{} min ({} steps,", "copy_lstm_mixed_seed2/summary.json",
          lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]))),
    Claim(_mem_row(COPY_T200), "recall {}, loss {} (best validation {} at step {})", "copy_lstm_mixed_T200/summary.json", _copy_result),
    Claim(_mem_row(COPY_T200), "against a memoryless loss of {} at T = 200; on lag T only: {}", "copy_lstm_mixed_T200/summary.json",
          lambda d: (f4(d["baseline_loss"]), pct2(load("copy_lstm_T200/summary.json")["test"]["accuracy"]))),
    Claim(_mem_row(COPY_T200, "wall time"), "{} min ({} steps,", "copy_lstm_mixed_T200/summary.json", lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]))),
    Claim(_mem_row(COPY_T500), "recall {}, loss {} (best validation {} at step {})", "copy_lstm_mixed_T500/summary.json", _copy_result),
    Claim(_mem_row(COPY_T500), "against a memoryless loss of {} at T = 500; early stopping ended the run; on lag T only: {}", "copy_lstm_mixed_T500/summary.json",
          lambda d: (f4(d["baseline_loss"]), pct2(load("copy_lstm_T500/summary.json")["test"]["accuracy"]))),
    Claim(_mem_row(COPY_T500, "wall time"), "{} min ({} steps,", "copy_lstm_mixed_T500/summary.json", lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]))),
    Claim(MIXED_PROSE, "at T = 500 only {}, early stopping\nending the run at {} steps (on lag T only: {} in 10,000)", "copy_lstm_mixed_T500/summary.json",
          lambda d: (pct2(d["test"]["accuracy"]), count(d["steps"]), pct2(load("copy_lstm_T500/summary.json")["test"]["accuracy"]))),
    Claim(_mem_row(COPY_T1000), "recall {}, loss {} (best validation {} at step {}, still climbing)", "copy_lstm_mixed_T1000/summary.json", _copy_result),
    Claim(_mem_row(COPY_T1000), "against a memoryless loss of {}; 20% on validation first at step {}, 40% at {}, 60% at {}", "copy_lstm_mixed_T1000/metrics.jsonl",
          lambda rows: (f4(load("copy_lstm_mixed_T1000/summary.json")["baseline_loss"]), *(count(_first_val(rows, a)) for a in (0.2, 0.4, 0.6)))),
    Claim(_mem_row(COPY_T1000), "a gradient spike at step {} (mean norm {} over 100 steps) threw validation back to {}, and it recovered", "copy_lstm_mixed_T1000/metrics.jsonl", _spike),
    Claim(_mem_row(COPY_T1000), "{} batch skipped; on lag T only: {}, diverged at step {}", "copy_lstm_mixed_T1000/summary.json",
          lambda d: (d["skipped_batches"], _evaluated((RESULTS / "copy_lstm_T1000/evaluate_test.txt").read_text(encoding="utf-8"))[0],
                     _diverged_at(load("copy_lstm_T1000/summary.json")))),
    Claim(_mem_row(COPY_T1000, "wall time"), "{} min ({} steps: {} s per step, on lag T only {})", "copy_lstm_mixed_T1000/summary.json",
          lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]), f"{d['wall_time_s'] / d['steps']:.2f}",
                     f"{load('copy_lstm_T1000/summary.json')['wall_time_s'] / load('copy_lstm_T1000/summary.json')['steps']:.2f}")),
    Claim(MIXED_PROSE, "at T = 200 the LSTM reaches\n{} in 10,000 steps (on lag T only: {})", "copy_lstm_mixed_T200/summary.json",
          lambda d: (pct2(d["test"]["accuracy"]), pct2(load("copy_lstm_T200/summary.json")["test"]["accuracy"]))),
    Claim(MIXED_PROSE, "at T = 1,000 it reaches {} in {} steps and\n{} minutes", "copy_lstm_mixed_T1000/summary.json",
          lambda d: (pct2(d["test"]["accuracy"]), count(d["steps"]), f"{d['wall_time_s'] / 60:.0f}")),
    Claim(MIXED_PROSE, "(on lag T only: {}, diverged at step {}\nafter {} minutes)", "copy_lstm_T1000/summary.json",
          lambda d: (_evaluated((RESULTS / "copy_lstm_T1000/evaluate_test.txt").read_text(encoding="utf-8"))[0], _diverged_at(d), f"{d['wall_time_s'] / 60:.0f}")),
    Claim(_mem_row(COPY_GRU), "recall {}, loss {} (best validation {} at step {})", "copy_gru_mixed/summary.json", _copy_result),
    Claim(_mem_row(COPY_GRU), "{} on validation at step 1,000, 99% first at step {} (on lag T only it never got there: {} at best)", "copy_gru_mixed/metrics.jsonl",
          lambda rows: (pct(_val_at(rows, 1000)), count(_first_99(rows)), pct2(load("copy_gru/summary.json")["val"]["accuracy"]))),
    Claim(_mem_row(COPY_GRU), "a gradient spike at step {} (mean norm {} over 100 steps) threw validation back to {}", "copy_gru_mixed/metrics.jsonl", _spike),
    Claim(_mem_row(COPY_GRU, "wall time"), "{} min ({} steps,", "copy_gru_mixed/summary.json", lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]))),
    Claim(MIXED_PROSE, "on lag T only it ended at {} after 10,000 steps; on lags 1..T it is at\n99% after {} steps, fewer than any LSTM seed needed", "copy_gru/summary.json",
          lambda d: (pct2(d["test"]["accuracy"]), count(_first_99(load("copy_gru_mixed/metrics.jsonl"))))),
    Claim(MIXED_PROSE, "fewer than any LSTM seed needed, and scores {} on test", "copy_gru_mixed/summary.json", field("test.accuracy"), pct2),
    Claim(_mem_row("rnnlab train configs/copy_rnn.yaml"), "recall {}, loss {}: the memoryless baseline ({}, {})", "copy_rnn_mixed/summary.json",
          lambda d: (pct2(d["test"]["accuracy"]), f4(d["test"]["loss"]), pct(d["chance"]), f4(d["baseline_loss"]))),
    Claim(_mem_row("rnnlab train configs/copy_rnn.yaml", "wall time"), "{} min (early stopping at {} steps,", "copy_rnn_mixed/summary.json",
          lambda d: (f"{d['wall_time_s'] / 60:.1f}", count(d["steps"]))),
    Claim(_mem_row(MEM_ADD), "test MSE {} against {} for answering 1; {} of answers within 0.04 ({} for answering 1)", "adding_lstm/summary.json",
          lambda d: (f4(d["test"]["loss"]), f4(d["baseline_loss"]), pct(d["test"]["accuracy"]), pct(d["chance"]))),
    Claim(_mem_row(MEM_ADD, "wall time"), "({} steps)", "adding_lstm/summary.json", field("steps"), count),
    *(Claim(Row(MEMORY, LABEL[m], f"T = {t:,}", after="Where each cell breaks"), "{}", DISTRACT, cell("test_accuracy", model=m, seq_len=t), pct)
      for m in ("lstm", "gru", "rnn") for t in (100, 200, 500, 1000)),
    *(Claim(Row(MEMORY, LABEL[m], "steps to 99% at T = 1,000", after="Where each cell breaks"), "{}", DISTRACT,
            cell("steps_to_99", model=m, seq_len=1000), steps_or_dash) for m in ("lstm", "gru", "rnn")),
    Claim(Prose(MEMORY, "Where each cell breaks"), "({} runs,", "distractors_compare/summary.json", field("finished_runs")),
    Claim(Prose(MEMORY, "Where each cell breaks"), "up to\n{} steps)", DISTRACT, lambda rows: the_same([r["steps"] for r in rows if r["model"] == "lstm"]), count),
    # --- the IMDb cells ---
    *(Claim(Row(IMDB, name, column, after="The three cells compared on real text"), "{}", CELLS, cell(key, model=m), fmt)
      for m, name in (("rnn", "RNN (tanh)"), ("lstm", "LSTM"), ("gru", "GRU"))
      for column, key, fmt in (("params", "params", count), ("test accuracy", "test_accuracy", pct),
                               ("best validation accuracy", "best_val_accuracy", pct))),
    Claim(_train_row(CELLS_CMD), "test accuracy {} / {} / {}", CELLS, lambda rows: tuple(cell("test_accuracy", model=m)(rows) for m in ("rnn", "lstm", "gru")), pct),
    # --- the linear baseline and the ensemble ---
    Claim(_train_row(BOW_CMD), "test accuracy {} (best validation {}, step {})", BOW,
          lambda d: (pct2(d["test"]["accuracy"]), pct2(d["val"]["accuracy"]), count(d["val"]["step"]))),
    Claim(_train_row(GLOVE_CMD), "test accuracy {} (best validation {}, step {})", GLOVE,
          lambda d: (pct2(d["test"]["accuracy"]), pct2(d["val"]["accuracy"]), count(d["val"]["step"]))),
    # --- exercise 5: one row per technique, the candidate ensembles, the choice ---
    *(Claim(Row(EXERCISE5, command, column, key_column="command"), "{}", artifact, field(key), pct2)
      for command, artifact in EXERCISE5_RUNS.items() for column, key in (("best validation", "val.accuracy"), ("test accuracy", "test.accuracy"))),
    Claim(Prose(EXERCISE5, "None of them lifts"), "the forward\ndirection {} on validation", "imdb_bilstm_pretrained/summary.json", field("val.accuracy"), pct2),
    Claim(Prose(EXERCISE5, "None of them lifts"), "both directions {}", "imdb_bilstm_pretrained_both/summary.json", field("val.accuracy"), pct2),
    Claim(Prose(EXERCISE5, "None of them lifts"), "does not rescue it ({})", "imdb_bilstm_pretrained_lr025/summary.json", field("val.accuracy"), pct2),
    Claim(Prose(EXERCISE5, "None of them lifts"), "test perplexity {} over", "imdb_lm/summary.json", field("test.perplexity"), lambda x: f"{x:.1f}"),
    Claim(Prose(EXERCISE5, "None of them lifts"), "the backward model's {})", "imdb_lm_backward/summary.json", field("test.perplexity"), lambda x: f"{x:.1f}"),
    # --- inspect on IMDb reviews ---
    Claim(Prose(GATES_IMDB, "It answers positive"), "It answers positive ({}) and negative ({})", "inspect_imdb/positive.json",
          lambda d: (d["prediction"]["probability"], load("inspect_imdb/negative.json")["prediction"]["probability"]), pct2),
    *(Claim(Prose(GATES_IMDB, "It answers positive"), f"{word} {{}}", GATE_WORDS, _gate_at(review, word)) for review, word in
      (("a-dull-and-boring", "awful"), ("a-dull-and-boring", "waste"), ("a-dull-and-boring", "dull"), ("a-dull-and-boring", "boring"),
       ("one-of-the-best", "story"), ("one-of-the-best", "moving"), ("one-of-the-best", "wonderful"), ("one-of-the-best", "loved"),
       ("one-of-the-best", "best"))),
    Claim(Prose(GATES_IMDB, "It answers positive"), 'against {} at "." and {} at "and"', GATE_WORDS,
          lambda d: (_gate_at("a-dull-and-boring", ".")(d), _gate_at("a-dull-and-boring", "and", lowest=True)(d))),
    Claim(Prose(GATES_IMDB, "It answers positive"), 'against {} at "of"', GATE_WORDS, _gate_at("one-of-the-best", "of", lowest=True)),
    Claim(Prose(GATES_IMDB, "the answer is a sum over units"), "won at waste ({}), awful ({}), dull ({}) and awful again ({}),\nout of a margin of {}",
          "inspect_imdb/negative.json", lambda d: (*(f"{u['term']:+.3f}" for u in d["deciders"]["towards"]), f"{d['deciders']['margin']:.2f}")),
    Claim(Prose(GATES_IMDB, "the answer is a sum over units"), 'won at "and" ({}), best ({}), loved\n({}) and "," ({})',
          "inspect_imdb/positive.json", lambda d: tuple(f"{u['term']:+.3f}" for u in d["deciders"]["towards"])),
    *(Claim(Row(MEMORY, LABEL[m], f"T = {t}: {col}", after="The adding problem at two lags"), "{}", ADDING, cell(key, model=m, seq_len=t), fmt)
      for m in ("lstm", "gru", "rnn") for t in (100, 200)
      for col, key, fmt in (("test MSE", "test_loss", f4), ("within 0.04", "test_accuracy", pct))),
    Claim(Prose(MEMORY, "The adding problem at two lags"), "shipped config, {} steps)", ADDING, lambda rows: the_same([r["steps"] for r in rows if r["model"] != "rnn"]), count),
    # --- compare --jobs 2 against one run at a time ---
    Claim(Prose(COMPARE, "Two jobs on 2 cores"), "took\n{} s, against {} s for", "compare_jobs2/summary.json",
          lambda d: (d["wall_time_s"], load("compare_jobs1/summary.json")["wall_time_s"]), lambda x: f"{x:.1f}"),
    *(Claim(Prose(COMPARE, "Two jobs on 2 cores"), f"{LABEL[m]} {{}}", f"compare_jobs{j}/summary.json", aggregate(m, 100), pm)
      for m in ("lstm", "gru", "rnn") for j in (1, 2)),
    Claim(Prose(COMPARE, "Two jobs on 2 cores"), "(LSTM at seq_len 100: {} one at a time, {} with jobs)", "compare_jobs1/summary.json",
          lambda d: (aggregate("lstm", 100)(d), aggregate("lstm", 100)(load("compare_jobs2/summary.json"))), steps_to("steps_to_90")),
    # --- IMDb: the flagship in bf16 and fp32, the pipeline and the training-speed benchmarks ---
    Claim(_train_row(IMDB_CMD), "test accuracy **{}**", FLAG, field("test.accuracy"), pct2),
    Claim(_train_row(IMDB_CMD), "(best validation {}, step {} of {})", FLAG, lambda d: (d["val"]["accuracy"], d["val"]["step"], d["steps"]), _pct2_or_int),
    Claim(_train_row(IMDB_CMD, "experiment"), "CPU, {}", FLAG, field("precision")),
    Claim(_train_row(IMDB_FP32_CMD), "test accuracy {}", FLAG32, field("test.accuracy"), pct2),
    Claim(_train_row(IMDB_FP32_CMD), "(best validation {}, step {})", FLAG32, lambda d: (d["val"]["accuracy"], d["val"]["step"]), _pct2_or_int),
    Claim(_train_row(IMDB_FP32_CMD, "experiment"), "the same in {}", FLAG32, field("precision")),
    Claim(Prose(IMDB, "Training curves of that run"), "rises to {} at step {}", FLAG, lambda d: (d["val"]["accuracy"], d["val"]["step"]), _pct2_or_int),
    Claim(Prose(IMDB, "Training curves of that run"), "the test accuracy of that checkpoint is {}", FLAG, field("test.accuracy"), pct2),
    Claim(Prose(IMDB, "Training curves of that run"), "chose step {} at {}", FLAG32, lambda d: (d["val"]["step"], d["val"]["accuracy"]), _pct2_or_int),
    Claim(Prose(IMDB, "Training curves of that run"), "scores {} on test", FLAG32, field("test.accuracy"), pct2),
    Claim(Prose(IMDB, "Training curves of that run"), "({} s against", FLAG, field("wall_time_s"), lambda x: f"{x:.0f}"),
    Claim(Prose(IMDB, "Training curves of that run"), "against {} s of training", FLAG32, field("wall_time_s"), lambda x: f"{x:.0f}"),
    Claim(Prose(IMDB, "does\nbetter still"), "better still ({})", FLAG, field("test.accuracy"), pct),
    Claim(_train_row(PIPELINE_CMD), "`speedup_vs_naive={}`", PIPE, printed(r"^speedup_vs_naive=([\d.]+)$")),
    Claim(_train_row(PIPELINE_CMD), "{} against {} training samples/s", PIPE,
          lambda t: (printed(r"^rnnlab \(engine step\)\s+([\d.]+)")(t), printed(r"^naive \(chapter loop\)\s+([\d.]+)")(t))),
    Claim(_train_row(PIPELINE_CMD), "({} against {} padding;", PIPE,
          lambda t: (printed(r"^rnnlab \(engine step\)(?:\s+\S+){3}\s+([\d.]+%)")(t), printed(r"^naive \(chapter loop\)(?:\s+\S+){3}\s+([\d.]+%)")(t))),
    Claim(_train_row(PIPELINE_CMD), "{} s the first time, {} s cached", PIPE, printed(r"first ([\d.]+) s, cached ([\d.]+) s")),
    Claim(_train_row(SPEED_CMD), "`speedup={}`", SPEED_OUT, printed(r"^speedup=([\d.]+)$")),
    Claim(_train_row("OMP_NUM_THREADS=1 python benchmarks/onednn_lstm.py"), "`native_over_onednn={}`: PyTorch's native LSTM kernel takes {}×", ONEDNN,
          lambda t: (printed(r"^native_over_onednn=([\d.]+)$")(t),) * 2),
    Claim(_train_row(SPEED_CMD), "bf16 step {} tokens/s against {} for", SPEED_OUT,
          lambda t: (printed(r"^\(d\) now, bf16\s+([\d,]+)")(t), printed(r"^\(b\) before, fp32\s+([\d,]+)")(t))),
    *(Claim(Row(CPU_SPEED, path, "tokens/s", after="measured, on the same"), "{}", SPEED_OUT, printed(rf"^\({p}\) [^\n]*?\s([\d,]+)\s+[\d.]+\s+[\d.]+\s+[\d.]+%$"))
      for p, path in SPEED_PATHS.items()),
    *(Claim(Row(CPU_SPEED, path, "vs. before", after="measured, on the same"), "{}", SPEED_OUT, printed(rf"^\({p}\) [^\n]*?\s[\d,]+\s+([\d.]+)\s+[\d.]+\s+[\d.]+%$"))
      for p, path in SPEED_PATHS.items()),
    Claim(Prose(CPU_SPEED, "Matrix multiply peaks in that run"), "{} GFLOP/s in fp32 and {} in bf16", SPEED_OUT, printed(r"fp32 (\d+) GFLOP/s, bf16 (\d+) GFLOP/s")),
    *(Claim(Row(CPU_SPEED, path, "of the peak", after="measured, on the same"), "{}", SPEED_OUT, printed(rf"^\({p}\) [^\n]*?\s[\d,]+\s+[\d.]+\s+[\d.]+\s+([\d.]+%)$"))
      for p, path in SPEED_PATHS.items()),
    Claim(Prose(CPU_SPEED, "**Memory.**"), "that alone is (b'), {}×", SPEED_OUT, printed(r"^\(b'\) before, memory kept\s+[\d,]+\s+([\d.]+)")),
    Claim(Prose(CPU_SPEED, "The step."), "(c)\n{}× in fp32", SPEED_OUT, printed(r"^\(c\) now, fp32\s+[\d,]+\s+([\d.]+)")),
    Claim(Prose(CPU_SPEED, "**bf16.** (d)"), "(d): {}× the step before", SPEED_OUT, printed(r"^speedup=([\d.]+)$")),
    Claim(Prose(CPU_SPEED, "Matrix multiply peaks in that run"), "{} slower per step than the LSTM", SPEED_OUT, printed(r"GRU / LSTM time per step, fp32: ([\d.]+x)"), lambda x: x.replace("x", "×")),
    Claim(Prose(CPU_SPEED, "Matrix multiply peaks in that run"), "({} against {} steps/s", SPEED_OUT,
          lambda t: (printed(r"^  gru fp32\s+([\d.]+)$")(t), printed(r"^  lstm fp32\s+([\d.]+)$")(t))),
    Claim(Prose(CPU_SPEED, "Matrix multiply peaks in that run"), "slower still, {},", SPEED_OUT, printed(r"gru fp32, reference cell\s+([\d.]+)")),
    Claim(Prose(CPU_SPEED, "Matrix multiply peaks in that run"), "slower ({})", SPEED_OUT, printed(r"^  gru bf16\s+([\d.]+)$")),
]



def check(readme: str, claims: list[Claim] = CLAIMS) -> list[str]:
    """One line per claim that `readme` does not state as its artifact says."""
    problems = []
    for claim in claims:
        try:
            start, end = _span(readme, claim.where)
        except LookupError as e:
            problems.append(f"{claim}: not found in README ({e})")
            continue
        try:
            pattern = claim.pattern()
        except (OSError, LookupError, TypeError, ValueError) as e:  # the artifact is missing or lacks the figure
            problems.append(f"{claim.where}: {claim.text!r}: cannot read it from docs/results/{claim.artifact} ({e!r})")
            continue
        if not pattern.search(readme, start, end):
            found = " ".join(readme[start:end].split())
            words = max((" ".join(lit.split()) for lit in claim.text.split("{}")), key=len)
            at = found.find(words) if words else -1
            if at >= 0:  # show README's text around the claim's words
                found = found[max(at - 60, 0) : at + len(words) + 60]
            problems.append(f"{claim}; README has: {found[:300]!r}")
    return problems


# --- the tests -------------------------------------------------------------------------------


def test_readme_states_the_artifacts_numbers():
    problems = check(_docs())
    assert not problems, "README.md and docs/results/ disagree:\n" + "\n".join(problems)


def test_each_claim_is_found_once_where_it_is_meant():
    """A claim's text must stand once in its place, so that the mutation test below means something."""
    readme = _docs()
    for claim in CLAIMS:
        start, end = _span(readme, claim.where)
        assert len(claim.pattern().findall(readme, start, end)) == 1, str(claim)


def _mutate(figure: str) -> str:
    """A different figure: its first digit bumped, or a number where it had none."""
    digit = re.search(r"\d", figure)
    if not digit:
        return "0"
    i = digit.start()
    return figure[:i] + str((int(figure[i]) + 1) % 10) + figure[i + 1 :]


def _id(claim: Claim) -> str:
    where = claim.where
    return f"{where.key}|{where.column}" if isinstance(where, Row) else claim.text


@pytest.mark.parametrize("claim", CLAIMS, ids=[f"{i}:{_id(c)}" for i, c in enumerate(CLAIMS)])
def test_a_changed_readme_figure_is_caught(claim: Claim):
    """Change each figure of each claim in README's text (in memory): check() must report it."""
    readme = _docs()
    start, end = _span(readme, claim.where)
    match = claim.pattern().search(readme, start, end)
    assert match, str(claim)
    for group in range(1, len(claim.values()) + 1):
        a, b = match.span(group)
        changed = readme[:a] + _mutate(readme[a:b]) + readme[b:]
        assert check(changed, [claim]), f"changing {readme[a:b]!r} went unnoticed: {claim}"


@pytest.mark.parametrize(
    "claim",
    [
        next(c for c in CLAIMS if isinstance(c.where, Row) and c.where.section != RESULTS_TABLE),
        next(c for c in CLAIMS if isinstance(c.where, Prose)),
        next(c for c in CLAIMS if c.where == _train_row(NEXT_TOKEN) and "perplexity" in c.text),
    ],
    ids=["table cell", "prose", "results table"],
)
def test_an_edited_number_fails_the_whole_check(claim: Claim):
    """The issue's example: someone edits one number of README's (a table cell, a word in prose);
    the whole check reports that one claim, with the artifact's figure."""
    readme = _docs()
    assert not check(readme)
    start, end = _span(readme, claim.where)
    a, b = claim.pattern().search(readme, start, end).span(1)
    problems = check(readme[:a] + ("eleven" if readme[a:b] == "twelve" else _mutate(readme[a:b])) + readme[b:])
    assert len(problems) == 1 and str(claim) in problems[0], problems


def test_a_lost_heading_or_row_is_a_failure_too():
    readme = _docs()
    assert any("not found in README" in p for p in check(readme.replace("\n## Results\n", "\n## Measurements\n", 1)))
    cell = next(c.where for c in CLAIMS if isinstance(c.where, Row) and c.where.key_column is None and c.where.section != RESULTS_TABLE)
    row = next(line for line in readme.splitlines() if line.startswith(f"| {cell.key} |"))
    assert any("0 rows" in p for p in check(readme.replace(row + "\n", "", 1)))


def test_every_results_folder_has_a_command_that_readme_shows():
    folders = _legacy_folders()
    assert folders
    readme = _docs()
    for folder in folders:
        text = (folder / "command.txt").read_text(encoding="utf-8") if (folder / "command.txt").exists() else ""
        commands = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("command:")]
        assert commands, f"{folder.relative_to(ROOT)}: no command.txt with a 'command: ...' line"
        for line in ("commit:", "date:"):
            assert any(t.startswith(line) for t in text.splitlines()), f"{folder.name}/command.txt: no {line!r} line"
        if folder.name in NOT_IN_README:
            continue
        for command in commands:
            assert f"`{command}`" in readme, f"{folder.name}: README does not show `{command}`"
        assert not list(folder.rglob("*.pt")), f"{folder.name}: checkpoints do not belong in docs/results"


def test_every_results_folder_backs_a_claim_and_every_claim_has_its_artifact():
    used = {claim.artifact.split("/", 1)[0] for claim in CLAIMS}
    folders = {p.name for p in _legacy_folders()}
    assert used <= folders, f"claims without their folder: {sorted(used - folders)}"
    assert folders - used <= set(NOT_IN_README), f"folders no claim reads: {sorted(folders - used - set(NOT_IN_README))}"
    for claim in CLAIMS:
        assert (RESULTS / claim.artifact).is_file(), str(claim.artifact)


def test_on_lags_1_to_t_the_gru_reaches_99_in_fewer_steps_than_any_lstm_seed():
    """README, "Training on lags 1..T": "fewer than any LSTM seed needed"."""
    gru = _first_99(load("copy_gru_mixed/metrics.jsonl"))
    lstm = [_first_99(load(f"{n}/metrics.jsonl")) for n in ("copy_lstm_mixed_2threads", "copy_lstm_mixed_seed1", "copy_lstm_mixed_seed2")]
    assert gru < min(lstm), (gru, lstm)
