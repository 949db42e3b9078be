"""The `rnnlab` command. Thin: parse, then hand over to the engine and the task modules.

    rnnlab --help
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import UserError

__all__ = ["app", "main"]

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="rnnlab",
    help="A lab for recurrent neural networks: every classic RNN/LSTM/GRU experiment one command away.\n\n"
    "Start with:  rnnlab train configs/long_dependency_lstm.yaml",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

OVERRIDES_HELP = "Dotted overrides applied after the file, values parsed as YAML: train.lr=3e-3 model.bidirectional=true"
RUNS_DIR_HELP = "Parent directory of the run directory."


@contextmanager
def _user_errors() -> Iterator[None]:
    """A user's mistake: the message, exit code 2, no traceback."""
    from .engine import TrainingStopped

    try:
        yield
    except UserError as e:
        err_console.print(f"[bold red]error:[/] {_escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except TrainingStopped as e:
        err_console.print(f"[bold yellow]{_escape(str(e))}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _version(value: bool) -> None:
    if value:
        console.print(f"rnnlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    pass


@app.command()
def train(
    config: Optional[Path] = typer.Argument(None, help="YAML config, e.g. configs/long_dependency_lstm.yaml", show_default=False),
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_HELP),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue an interrupted run from its checkpoints/last.pt, exactly.", show_default=False
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No live progress bar (for logs)."),
) -> None:
    """Train a model on a task from a YAML config; writes runs/<time>-<name>/.

    The run directory holds config.yaml (resolved), metrics.jsonl, checkpoints/best.pt and last.pt,
    plots/loss.png and plots/accuracy.png, and summary.json with validation and test metrics.
    Ctrl-C saves the run and prints the command that resumes it.

    Examples:
      rnnlab train configs/long_dependency_lstm.yaml task.seq_len=100 train.steps=500
      rnnlab train --resume runs/20261124-093000-long_dependency_lstm
    """
    from .config import load_config
    from .engine import fit

    with _user_errors():
        if resume is not None:
            if config is not None or overrides:
                raise UserError("--resume continues a run with its own config.yaml; give no CONFIG or overrides with it")
            if not (resume / "config.yaml").is_file():
                raise UserError(f"--resume {resume}: not a run directory (no config.yaml there)")
            if not (resume / "checkpoints" / "last.pt").is_file():
                raise UserError(f"--resume {resume}: no checkpoints/last.pt yet, so nothing to resume; start it again instead")
            cfg = load_config(resume / "config.yaml")
        elif config is None:
            raise UserError("give a CONFIG, e.g. rnnlab train configs/long_dependency_lstm.yaml (or --resume RUN_DIR)")
        else:
            cfg = load_config(config, overrides or [])
        fit(cfg, runs_dir=runs_dir, resume=resume, console=console, progress=not no_progress)


@app.command("config")
def show_config(
    config: Path = typer.Argument(..., help="YAML config.", show_default=False),
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """Print the resolved config (file + overrides + defaults) as YAML, after validation.

    Example: rnnlab config configs/long_dependency_lstm.yaml model.name=gru
    """
    from .config import config_to_dict, load_config

    with _user_errors():
        cfg = load_config(config, overrides or [])
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")


@app.command("list")
def list_registered() -> None:
    """List the registered tasks and models with their parameters and defaults."""
    from .registry import MODELS, TASKS

    for registry in (TASKS, MODELS):
        table = Table(title=f"{registry.kind}s", title_justify="left", show_lines=True)
        table.add_column("name", style="bold cyan")
        table.add_column("what it is")
        table.add_column("parameters (default)")
        for entry in registry:
            fields = [
                f"{k} = {_show_default(f.default)}" + (f"  [dim]{f.description}[/]" if f.description else "")
                for k, f in entry.config.model_fields.items()
                if k != "name"
            ]
            table.add_row(entry.name, entry.help, "\n".join(fields))
        console.print(table)
    console.print("Set any parameter in a config's task:/model: section, or as task.KEY=VALUE / model.KEY=VALUE.")


def _show_default(value: object) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="A run directory, e.g. runs/20261124-093000-imdb_bilstm", show_default=False),
    split: str = typer.Option("test", "--split", help="val or test."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
) -> None:
    """Recompute a run's metrics from its best checkpoint and print them.

    Example: rnnlab evaluate runs/20261124-093000-long_dependency_lstm --split val
    """
    from .engine import evaluate as run_evaluate
    from .engine import load_run_model
    from .runtime import resolve_device

    with _user_errors():
        if split not in ("val", "test"):
            raise UserError(f"--split {split!r}: use val or test")
        if not run.is_dir():
            raise UserError(f"run directory not found: {run}")
        dev = resolve_device(device)
        cfg, task, model, _ = load_run_model(run, dev)
        metrics = run_evaluate(model, task, split, dev)
        table = Table(title=f"{run.name} · {split}", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in metrics.items():
            if isinstance(v, float):
                table.add_row(k, f"{100 * v:.2f}%" if k.endswith("accuracy") else f"{v:.4f}")
        console.print(table)
        if "confusion" in metrics:
            _print_confusion(metrics["confusion"], metrics.get("labels"))


def _print_confusion(matrix: list[list[int]], labels: list[str] | None) -> None:
    labels = labels or [str(i) for i in range(len(matrix))]
    table = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    table.add_column("")
    for name in labels:
        table.add_column(name, justify="right")
    for name, row in zip(labels, matrix):
        table.add_row(name, *(f"{int(v):,}" for v in row))
    console.print(table)


def _not_yet(command: str, issue: str) -> None:
    err_console.print(f"[bold red]error:[/] `rnnlab {command}` is not available yet ({issue}).", soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def compare(
    args: List[str] = typer.Argument(..., metavar="MODEL", help="Registered models (rnnlab list), then any key=value overrides applied to every run, e.g. train.lr=3e-3", show_default=False),
    task: Optional[str] = typer.Option(None, "--task", help="Task to compare on (default long_dependency); each model starts from configs/<task>_<model>.yaml when it exists.", show_default=False),
    seq_len: Optional[str] = typer.Option(None, "--seq-len", help="Sequence length, or several to sweep: 10,50,100,200.", show_default=False),
    seeds: int = typer.Option(1, "--seeds", help="Repeat every run with seeds 0..K-1."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per run (the shipped configs: 1500, with early stopping).", show_default=False),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Hidden size of every model (shipped: 32).", show_default=False),
    init: Optional[str] = typer.Option(None, "--init", help="Gate init of every model: default (PyTorch's), forget_bias or chrono; default: each model's shipped setting.", show_default=False),
    config: Optional[Path] = typer.Option(None, "--config", help="Base config for every model instead of the shipped long-dependency ones (any task).", show_default=False),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help="No live progress bars (for logs)."),
) -> None:
    """Train several models side by side on the same data; writes runs/<time>-compare-<models>/.

    Each model starts from configs/long_dependency_<model>.yaml (the settings that work: LSTM chrono
    init, GRU update-gate bias 3) or from --config; every model sees the same data for a seed. The
    directory holds one run directory per model x seq_len x seed, results.csv, results.md and
    plots/curves.png (+ plots/accuracy_vs_seq_len.png when several lengths are given).

    Example: rnnlab compare lstm gru rnn --seq-len 100 --seeds 2
    """
    from .compare import compare as run_compare
    from .compare import parse_seq_lens, plan_runs
    from .models.init import INIT_SCHEMES

    with _user_errors():
        models = [a for a in args if "=" not in a]
        overrides = [a for a in args if "=" in a]
        if init is not None and init not in INIT_SCHEMES:
            raise UserError(f"--init {init!r}: use one of {', '.join(INIT_SCHEMES)}")
        if seeds < 1:
            raise UserError(f"--seeds {seeds}: must be at least 1 (runs use seeds 0..K-1)")
        runs = plan_runs(
            models, task=task, seq_lens=parse_seq_lens(seq_len), seeds=seeds, steps=steps, hidden=hidden, init=init,
            config=config, overrides=overrides,
        )
        run_compare(runs, runs_dir=runs_dir, console=console, progress=not no_progress)


@app.command("probe-gradients")
def probe_gradients(
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    config: Optional[Path] = typer.Option(None, "--config", help="A gradient_probe config; default: the settings of configs/probe_gradients.yaml.", show_default=False),
    models: Optional[str] = typer.Option(None, "--models", help="Models to probe, comma-separated (default: rnn,lstm,gru).", show_default=False),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length T (default: 50).", show_default=False),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Input features (default: 10).", show_default=False),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Hidden size (default: 20).", show_default=False),
    loss: Optional[str] = typer.Option(None, "--loss", help="task (default): recall cross-entropy at the last step; sum: the chapter's sum of all outputs; last: sum of the last outputs.", show_default=False),
    trials: Optional[int] = typer.Option(None, "--trials", help="Seeds to probe; median and 10-90% spread (default: 20).", show_default=False),
    after_steps: Optional[int] = typer.Option(None, "--after-steps", help="0 (default) = at initialisation; N = after N training steps on long_dependency.", show_default=False),
    init: Optional[str] = typer.Option(None, "--init", help="shipped (default: LSTM chrono, GRU gate bias 3), default (PyTorch's), forget_bias or chrono.", show_default=False),
    seed: Optional[int] = typer.Option(None, "--seed", help="First seed; trial k uses seed + k (default: 0).", show_default=False),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help="No live progress bars (for logs)."),
) -> None:
    """Measure how the gradient dL/dx_t shrinks back through time, model by model (the chapter's probe).

    Writes runs/<time>-probe_gradients/ with gradients.csv (median, 10% and 90% of the norm at
    every t), plots/gradient_norms.png and summary.json; prints the norm at t=0, T/2, T-1 per model.
    Flags override the config file; key=value overrides come last.

    Example: rnnlab probe-gradients --loss sum --init default
    """
    from .probe import probe_config
    from .probe import probe_gradients as run_probe

    flags = {
        "task.models": f"[{models}]" if models is not None else None,
        "task.seq_len": seq_len,
        "task.input_size": input_size,
        "model.hidden_size": hidden,
        "task.loss": loss,
        "task.trials": trials,
        "task.after_steps": after_steps,
        "task.init": init,
        "seed": seed,
    }
    with _user_errors():
        extra = [f"{k}={v}" for k, v in flags.items() if v is not None]
        cfg = probe_config(config, extra + list(overrides or []))
        run_probe(cfg, runs_dir=runs_dir, console=console, progress=not no_progress)


@app.command()
def predict(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to classify, each in quotes.", show_default=False),
    run: Optional[Path] = typer.Option(None, "--run", help="Run directory; default: the newest IMDb run under --runs-dir."),
    file: Optional[str] = typer.Option(None, "--file", "-f", help="Read one text per line from this file; - reads stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where to look for the newest run."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
) -> None:
    """Classify the sentiment of texts with a trained IMDb model: label and confidence per text.

    Example: rnnlab predict "great movie" "terrible film, a waste of time"
    """
    import json

    from .predict import find_latest_run, predict_texts

    with _user_errors():
        all_texts = list(texts or []) + (_read_lines(file) if file is not None else [])
        if not all_texts:
            raise UserError('no text given: rnnlab predict "great movie", or --file F with one text per line (- = stdin)')
        run_dir = run if run is not None else find_latest_run(runs_dir, "imdb")
        if not run_dir.is_dir():
            raise UserError(f"run directory not found: {run_dir}")
        results = predict_texts(run_dir, all_texts, device)
        if as_json:
            print(json.dumps({"run": str(run_dir), "predictions": results}, indent=2))
            return
        table = Table(title=f"predictions of {run_dir.name}", title_justify="left")
        table.add_column("text", overflow="fold", max_width=60)
        table.add_column("label")
        table.add_column("confidence", justify="right")
        for r in results:
            short = r["text"] if len(r["text"]) <= 120 else r["text"][:117] + "..."
            note = "" if r["known_tokens"] else "  [dim](no known words: a guess)[/]"
            color = "green" if r["label"] == "positive" else "red"
            table.add_row(_escape(_printable(short)), f"[{color}]{r['label']}[/]{note}", f"{100 * r['confidence']:.1f}%")
        console.print(table)


def _printable(text: str) -> str:
    """Control characters (terminal escape sequences) shown as '?', so a text cannot drive the terminal."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: " " if m.group() in "\n\t" else "?", text)


def _read_lines(file: str) -> list[str]:
    """One text per line; blank lines are skipped. Invalid UTF-8 is an error that says where."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except FileNotFoundError:
        raise UserError(f"--file {file}: no such file") from None
    except OSError as e:
        raise UserError(f"--file {file}: cannot read: {e.strerror}") from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the first word
    except UnicodeDecodeError as e:
        where = "stdin" if file == "-" else file
        raise UserError(f"{where} is not valid UTF-8 (byte {data[e.start]:#04x} at offset {e.start}); save it as UTF-8") from None
    return [line for line in text.splitlines() if line.strip()]


@app.command()
def generate(
    run: Path = typer.Argument(..., help="Run directory of a next_token task.", show_default=False),
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p", help="Text to continue; default: the corpus's usual first token."),
    tokens: int = typer.Option(50, "--tokens", "-n", help="How many tokens to sample (stops early at EOS)."),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Below 1: safer, above 1: wilder; 0 = always the likeliest."),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", help="Sample only among the K likeliest tokens."),
    seed: int = typer.Option(0, "--seed", help="The same seed gives the same text."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
) -> None:
    """Sample text from a trained next-token language model.

    Example: rnnlab generate runs/20261124-093000-next_token_imdb_lstm --prompt "this movie" --top-k 20
    """
    from .generate import generate_text

    with _user_errors():
        if not run.is_dir():
            raise UserError(f"run directory not found: {run}")
        shown, text = generate_text(run, prompt, tokens, temperature, top_k, seed, device)
        console.print(f"[dim]{_escape(shown)}[/] [bold]{_escape(text)}[/]", soft_wrap=True)


def main() -> None:
    app(prog_name="rnnlab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
