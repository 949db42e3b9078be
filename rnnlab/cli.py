"""The `rnnlab` command. Thin: parse, then hand over to the engine and the task modules.

    rnnlab --help
"""

from __future__ import annotations

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
    config: Path = typer.Argument(..., help="YAML config, e.g. configs/long_dependency_lstm.yaml", show_default=False),
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help="No live progress bar (for logs)."),
) -> None:
    """Train a model on a task from a YAML config; writes runs/<time>-<name>/.

    The run directory holds config.yaml (resolved), metrics.jsonl, checkpoints/best.pt and last.pt,
    plots/loss.png and plots/accuracy.png, and summary.json with validation and test metrics.

    Example: rnnlab train configs/long_dependency_lstm.yaml task.seq_len=100 train.steps=500
    """
    from .config import load_config
    from .engine import fit

    with _user_errors():
        cfg = load_config(config, overrides or [])
        fit(cfg, runs_dir=runs_dir, console=console, progress=not no_progress)


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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def compare() -> None:
    """Train several models side by side on the same data and compare them (not available yet)."""
    _not_yet("compare", "planned: side-by-side LSTM/GRU/RNN experiments")


@app.command("probe-gradients", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def probe_gradients() -> None:
    """Measure how the gradient dL/dx_t shrinks back through time (not available yet)."""
    _not_yet("probe-gradients", "planned: the chapter's gradient-norm probe")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def predict() -> None:
    """Classify the sentiment of texts with a trained IMDb model (not available yet)."""
    _not_yet("predict", "planned with the IMDb task")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def generate() -> None:
    """Sample text from a trained next-token language model (not available yet)."""
    _not_yet("generate", "planned with the next-token language model")


def main() -> None:
    app(prog_name="rnnlab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
