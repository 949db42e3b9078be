"""The `rnnlab` command. Thin: parse the arguments, then call the command's module in
rnnlab/commands/ (one module per command).

    rnnlab --help
"""

from __future__ import annotations

import functools
import inspect as _inspect
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import UserError
from .threads import quiet_openmp_waits, request_threads

__all__ = ["app", "main"]

console = Console()
err_console = Console(stderr=True)


def _load_plugins(paths: Optional[List[Path]]) -> Optional[List[Path]]:
    """--user-dir and $RNNLAB_USER_DIR: import the user's plugins before the command runs."""
    import os

    from .plugins import ENV

    if paths or os.environ.get(ENV):
        from .plugins import load_configured, load_user_dirs

        with _user_errors():
            load_user_dirs([str(p) for p in paths or []])
            load_configured()
    return paths


USER_DIR_OPTION = typer.Option(
    None, "--user-dir", callback=_load_plugins, is_eager=True, show_default=False,
    help="Import your own models and tasks first: a Python package directory or a .py file (repeatable; also $RNNLAB_USER_DIR). See docs/custom_cell.md.",
)  # fmt: skip


def _with_user_dir(command):
    """The command with a --user-dir option: one option and one callback for every command, not
    a line in each signature. The value is consumed by the callback, not passed on."""

    @functools.wraps(command)
    def run(*args, user_dir: Optional[List[Path]] = None, **kwargs):
        return command(*args, **kwargs)

    signature = _inspect.signature(command, eval_str=True)
    extra = _inspect.Parameter("user_dir", _inspect.Parameter.KEYWORD_ONLY, default=USER_DIR_OPTION, annotation=Optional[List[Path]])
    run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), extra])  # type: ignore[attr-defined]
    run.__annotations__ = {**command.__annotations__, "user_dir": Optional[List[Path]]}
    return run


class _Typer(typer.Typer):
    """typer.Typer whose every command also takes --user-dir (see _with_user_dir)."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorate(command):
            register(_with_user_dir(command))
            return command

        return decorate


app = _Typer(
    name="rnnlab",
    help="A lab for recurrent neural networks: every classic RNN/LSTM/GRU experiment one command away.\n\n"
    "Start with:  rnnlab train configs/long_dependency_lstm.yaml   (or by name: rnnlab train long_dependency_lstm)",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

OVERRIDES_HELP = "Dotted overrides applied after the file, values parsed as YAML: train.lr=3e-3 model.bidirectional=true"
RUNS_DIR_HELP = "Parent directory of the run directory."
THREADS_OPTION = typer.Option(
    None, "--threads", show_default=False,
    help="CPU threads: auto (the default: idle cores, one for small models) or N. Beats OMP_NUM_THREADS and runtime.threads.",
)  # fmt: skip


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
    except Exception as e:
        # A fault inside a user's plugin (--user-dir, entry point): its file and line, not our traceback.
        from .plugins import blame

        where = blame(e)
        if where is None:
            raise
        err_console.print(f"[bold red]error:[/] plugin {_escape(where)}: {type(e).__name__}: {_escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


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
    config: Optional[Path] = typer.Argument(None, help="YAML config (e.g. configs/long_dependency_lstm.yaml) or a shipped config's name (rnnlab list).", show_default=False),
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_HELP),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue an interrupted run from its checkpoints/last.pt, exactly.", show_default=False
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No live progress bar (for logs)."),
    threads: Optional[str] = THREADS_OPTION,
) -> None:
    """Train a model on a task from a YAML config; writes runs/<time>-<name>/.

    The run directory holds config.yaml (resolved), metrics.jsonl, checkpoints/best.pt and last.pt,
    plots/loss.png and plots/accuracy.png, and summary.json with validation and test metrics.
    Ctrl-C saves the run and prints the command that resumes it.

    Examples:
      rnnlab train configs/long_dependency_lstm.yaml task.seq_len=100 train.steps=500
      rnnlab train long_dependency_lstm
      rnnlab train --resume runs/20261124-093000-long_dependency_lstm
    """
    from .commands.train import train as run_train

    with _user_errors():
        request_threads(threads)
        run_train(config, overrides or [], runs_dir=runs_dir, resume=resume, progress=not no_progress, console=console)


@app.command("config")
def show_config(
    config: Path = typer.Argument(..., help="YAML config, or a shipped config's name.", show_default=False),
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """Print the resolved config (file + overrides + defaults) as YAML, after validation.

    Example: rnnlab config configs/long_dependency_lstm.yaml model.name=gru
    """
    from .commands.configs import show_config as run_show

    with _user_errors():
        run_show(config, overrides or [])


@app.command("list")
def list_registered() -> None:
    """List the registered tasks and models with their parameters and defaults, and the shipped configs."""
    from .commands.configs import list_registered as run_list

    with _user_errors():
        run_list(console)


@app.command()
def evaluate(
    runs: Optional[List[Path]] = typer.Argument(None, metavar="RUN...", help="A run directory, e.g. runs/20261124-093000-imdb_bilstm; several: their ensemble.", show_default=False),
    run_opts: Optional[List[Path]] = typer.Option(None, "--run", help="Another run (repeatable): the same as naming it as an argument.", show_default=False),
    split: str = typer.Option("val", "--split", help="val or test. Choose on val; test is the explicit choice, for the final figure."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    threads: Optional[str] = THREADS_OPTION,
) -> None:
    """Recompute a run's metrics from its best checkpoint and print them; with several runs, each
    run's and their ensemble's (the mean of their class probabilities). Validation by default.

    Examples:
      rnnlab evaluate runs/20261124-093000-long_dependency_lstm
      rnnlab evaluate --run runs/<bilstm run> --run runs/<bow run>
      rnnlab evaluate runs/<chosen run> --split test
    """
    from .commands.evaluate import evaluate as run_evaluate

    with _user_errors():
        request_threads(threads)
        run_evaluate([*(runs or []), *(run_opts or [])], split=split, device=device, console=console)


@app.command()
def compare(
    args: Optional[List[str]] = typer.Argument(None, metavar="MODEL...", help="Registered models (rnnlab list), then any key=value overrides applied to every run, e.g. train.lr=3e-3", show_default=False),
    task: Optional[str] = typer.Option(None, "--task", help="Task to compare on (default long_dependency); each model starts from configs/<task>_<model>.yaml, or configs/<task>_lstm.yaml with the model swapped in.", show_default=False),
    seq_len: Optional[str] = typer.Option(None, "--seq-len", help="Sequence length, or several to sweep: 10,50,100,200.", show_default=False),
    seeds: int = typer.Option(1, "--seeds", help="Repeat every run with seeds 0..K-1."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per run (default: each config's).", show_default=False),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Hidden size of every model (default: each config's).", show_default=False),
    init: Optional[str] = typer.Option(None, "--init", help="Gate init of every model: default (PyTorch's), forget_bias or chrono; default: each model's shipped setting.", show_default=False),
    config: Optional[Path] = typer.Option(None, "--config", help="Base config for every model instead of the shipped ones (any task).", show_default=False),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_HELP),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Trainings at once, each in its own process with its share of the cores."),
    plan_only: bool = typer.Option(False, "--plan", help="Only write every run's config and print one rnnlab train command per run (for Slurm, GNU parallel, ...)."),
    collect_dir: Optional[Path] = typer.Option(None, "--collect", help="Build results.csv, results.md and plots from the finished runs of a --plan directory.", show_default=False),
    no_progress: bool = typer.Option(False, "--no-progress", help="No live progress bars (for logs)."),
    threads: Optional[str] = THREADS_OPTION,
) -> None:
    """Train several models side by side on the same data; writes runs/<time>-compare-<models>/.

    Each model starts from its shipped config configs/<task>_<model>.yaml (long_dependency: the
    settings that work, LSTM chrono init, GRU chrono on its update gate) or from --config; every model sees
    the same data for a seed. The directory holds one run directory per model x seq_len x seed,
    results.csv, results.md and plots/curves.png (+ plots/accuracy_vs_seq_len.png for several lengths).

    Examples:
      rnnlab compare lstm gru rnn --seq-len 100 --seeds 2
      rnnlab compare lstm gru rnn --seq-len 50,100 --seeds 2 --jobs 2
      rnnlab compare lstm gru --plan      (then run the printed commands anywhere, then:)
      rnnlab compare --collect runs/20261124-093000-compare-lstm-gru
    """
    from .commands.compare import collect, parse_seq_lens, plan, plan_runs
    from .commands.compare import compare as run_compare

    args = list(args or [])
    with _user_errors():
        request_threads(threads)
        if collect_dir is not None:
            if args or plan_only:
                raise UserError("--collect DIR builds the results of a planned comparison: give it alone, without models or --plan")
            collect(collect_dir, console=console)
            return
        problems: list[str] = []
        lens = parse_seq_lens(seq_len, problems)
        runs = plan_runs(
            [a for a in args if "=" not in a], task=task, seq_lens=lens, seeds=seeds, steps=steps, hidden=hidden,
            init=init, config=config, overrides=[a for a in args if "=" in a], problems=problems,
        )  # fmt: skip
        if plan_only:
            plan(runs, runs_dir=runs_dir, console=console)
        else:
            run_compare(runs, runs_dir=runs_dir, console=console, progress=not no_progress, jobs=jobs)


@app.command("probe-gradients")
def probe_gradients(
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    config: Optional[Path] = typer.Option(None, "--config", help="A probe config; default: the shipped configs/probe_gradients.yaml.", show_default=False),
    models: Optional[str] = typer.Option(None, "--models", help="Models to probe, comma-separated, e.g. rnn,lstm,gru.", show_default=False),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length T.", show_default=False),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Input features.", show_default=False),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Hidden size of every model.", show_default=False),
    loss: Optional[str] = typer.Option(None, "--loss", help="task: recall cross-entropy at the last step; sum: the chapter's sum of all outputs; last: sum of the last outputs.", show_default=False),
    trials: Optional[int] = typer.Option(None, "--trials", help="Seeds to probe; median and 10-90% spread.", show_default=False),
    after_steps: Optional[int] = typer.Option(None, "--after-steps", help="0 = at initialisation; N = after N training steps on long_dependency.", show_default=False),
    init: Optional[str] = typer.Option(None, "--init", help="shipped (each model's long-dependency config: LSTM and GRU chrono), default (PyTorch's), forget_bias or chrono.", show_default=False),
    seed: Optional[int] = typer.Option(None, "--seed", help="First seed; trial k uses seed + k.", show_default=False),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help="No live progress bars (for logs)."),
    threads: Optional[str] = THREADS_OPTION,
) -> None:
    """Measure how the gradient dL/dx_t shrinks back through time, model by model (the chapter's probe).

    Writes runs/<time>-probe_gradients/ with gradients.csv (median, 10% and 90% of the norm at
    every t), plots/gradient_norms.png and summary.json; prints the norm at t=0, T/2, T-1 per model.
    The settings come from configs/probe_gradients.yaml (or --config); flags override the file,
    key=value overrides come last.

    Example: rnnlab probe-gradients --loss sum --init default
    """
    from .commands.probe import probe_config
    from .commands.probe import probe_gradients as run_probe

    flags = {
        "probe.models": [m.strip() for m in models.split(",") if m.strip()] if models is not None else None,
        "probe.seq_len": seq_len,
        "probe.input_size": input_size,
        "model.hidden_size": hidden,
        "probe.loss": loss,
        "probe.trials": trials,
        "probe.after_steps": after_steps,
        "probe.init": init,
        "seed": seed,
    }
    with _user_errors():
        request_threads(threads)
        cfg = probe_config(config, list(overrides or []), flags={k: v for k, v in flags.items() if v is not None})
        run_probe(cfg, runs_dir=runs_dir, console=console, progress=not no_progress)


@app.command()
def predict(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to label, each in quotes.", show_default=False),
    run: Optional[List[Path]] = typer.Option(None, "--run", help="Run directory; default: the newest run that classifies or tags text under --runs-dir. Repeat it for an ensemble (mean of the runs' probabilities)."),
    file: Optional[str] = typer.Option(None, "--file", "-f", help="Read one text per line from this file; - reads stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where to look for the newest run."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    onnx: Optional[Path] = typer.Option(None, "--onnx", help="Answer with an exported model (rnnlab export RUN) on onnxruntime instead of a run.", show_default=False),
    threads: Optional[str] = THREADS_OPTION,
) -> None:
    """Classify the sentiment of texts with a trained IMDb model: label and confidence per text
    (a tagging run prints each word with its tag).

    Example: rnnlab predict "great movie" "terrible film, a waste of time"
    """
    from .commands.predict import predict as run_predict
    from .commands.predict import predict_onnx

    with _user_errors():
        request_threads(threads)
        if onnx is not None:
            if run:
                raise UserError("--onnx PATH answers with the exported model alone: give it without --run")
            predict_onnx(onnx, list(texts or []), file=file, as_json=as_json, console=console)
            return
        run_predict(list(texts or []), run=run, file=file, as_json=as_json, runs_dir=runs_dir, device=device, console=console)


@app.command()
def generate(
    run: Path = typer.Argument(..., help="Run directory of a next_token task.", show_default=False),
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p", help="Text to continue; default: the corpus's usual first token."),
    tokens: int = typer.Option(50, "--tokens", "-n", help="How many tokens to sample (stops early at EOS); at most 100,000."),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Below 1: safer, above 1: wilder; 0 = always the likeliest."),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", help="Sample only among the K likeliest tokens."),
    seed: int = typer.Option(0, "--seed", help="The same seed gives the same text."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    threads: Optional[str] = THREADS_OPTION,
) -> None:
    """Sample text from a trained next-token language model, printed as it is sampled.

    Example: rnnlab generate runs/20261124-093000-next_token_imdb_lstm --prompt "this movie" --top-k 20
    """
    from .commands.generate import generate as run_generate

    with _user_errors():
        request_threads(threads)
        run_generate(run, prompt=prompt, tokens=tokens, temperature=temperature, top_k=top_k, seed=seed, device=device, console=console)


@app.command()
def inspect(
    run: Path = typer.Argument(..., help="Run directory of a recurrent model (rnn, lstm, gru, bilstm, bigru).", show_default=False),
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to read (IMDb, next-token or tagging runs), each in quotes; each gets its own output.", show_default=False),
    example: Optional[int] = typer.Option(None, "--example", "-e", help="Inspect example N of --split instead of a text (default: example 0).", show_default=False),
    split: str = typer.Option("val", "--split", help="val or test: where --example is taken from; choose on val, read test when you mean it (--split test)."),
    units: int = typer.Option(4, "--units", "-k", help="How many memory carriers (units whose state changes least) to plot."),
    html: bool = typer.Option(False, "--html", help="Also write index.html: an interactive, self-contained page (hover steps, plot units, threshold search)."),
    examples: int = typer.Option(20, "--examples", help="With --html: how many examples of --split the threshold search reads."),
    threads: Optional[str] = THREADS_OPTION,
) -> None:
    """Watch the gates and the memory of a trained LSTM, GRU or RNN at work on one input.

    Runs the readable reference cells (same weights as the run's best checkpoint) and writes
    RUN/inspect/<time>-<what>/: a heat map per gate and for the cell state (units x time),
    gate_means.png, memory_carriers.png, gates.npz (every recorded array) and summary.json;
    prints each gate's mean and saturation, the memory carriers and the parameters per gate block.

    Examples:
      rnnlab inspect runs/20261124-093000-long_dependency_lstm             # validation example 0
      rnnlab inspect runs/20261124-093000-long_dependency_lstm --split test --example 3
      rnnlab inspect runs/20261124-093000-imdb_bilstm "a great film, I loved it" --units 6
      rnnlab inspect runs/20261124-093000-long_dependency_lstm --html     # then open .../index.html
    """
    from .commands.inspect import inspect as run_inspect

    with _user_errors():
        request_threads(threads)
        run_inspect(run, list(texts or []), example=example, split=split, units=units, console=console, html=html, examples=examples)


@app.command("runs")
def list_runs(
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Directory searched (recursively) for runs."),
    task: Optional[str] = typer.Option(None, "--task", help="Only runs of this task.", show_default=False),
    model: Optional[str] = typer.Option(None, "--model", help="Only runs of this model (and comparisons that include it).", show_default=False),
    status: Optional[str] = typer.Option(None, "--status", help="running, completed, interrupted, diverged, failed, stopped or unreadable.", show_default=False),
    sort: str = typer.Option("start", "--sort", help="start, name, task, model, status, steps, val, test, wall_time or params."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table."),
    html: bool = typer.Option(False, "--html", help="Also write RUNS_DIR/index.html linking every run's report.html (written too)."),
) -> None:
    """List every run under --runs-dir: status, steps, best validation and test metric, time.

    A comparison or probe directory is one row and its runs are listed beneath it. A run whose
    process died is shown as "stopped" (and can be continued with rnnlab train --resume RUN).

    Example: rnnlab runs --status completed --sort val
    """
    from .commands.runs import runs as run_runs

    with _user_errors():
        run_runs(runs_dir, task=task, model=model, status=status, sort=sort, as_json=as_json, console=console, html=html)


@app.command()
def report(
    runs: List[Path] = typer.Argument(..., metavar="RUN", help="Run directories (a comparison directory stands for its runs).", show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Page to write; default: RUN/report.html for one run, report-<time>.html beside several. Never over another file.", show_default=False),
) -> None:
    """Write an HTML report of one or more runs: config, interactive curves, final table,
    checkpoints, status and links to the inspect pages. One file; it opens with no network.

    Examples:
      rnnlab report runs/20261124-093000-long_dependency_lstm
      rnnlab report runs/*-long_dependency_* --out long_dependency.html
    """
    from .commands.report import report as run_report

    with _user_errors():
        run_report(list(runs), out=out, console=console)


@app.command()
def plot(
    runs: List[Path] = typer.Argument(..., metavar="RUN", help="Run directories (a comparison directory stands for its runs).", show_default=False),
    metric: str = typer.Option("val.accuracy", "--metric", "-m", help="split.name from metrics.jsonl, e.g. val.loss, train.loss, val.accuracy."),
    x: str = typer.Option("step", "--x", help="step or epoch."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Image file to write; default: plots/compare-<metric>-<time>.png beside the runs. Never overwritten.", show_default=False),
) -> None:
    """Draw one metric of several runs in one figure, each line labelled by the settings that differ.

    Example: rnnlab plot runs/*-long_dependency_lstm* --metric val.loss
    """
    from .commands.plot import plot as run_plot

    with _user_errors():
        run_plot(runs, metric=metric, x=x, out=out, console=console)


@app.command()
def reproduce(
    names: Optional[List[str]] = typer.Argument(None, metavar="NAME...", help="Experiments to run (rnnlab reproduce --list).", show_default=False),
    seeds: Optional[int] = typer.Option(None, "--seeds", min=1, max=100, help="Seeds per arm (0..K-1); default: the experiment's own.", show_default=False),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Runs at once, each a process with cores // jobs threads."),
    list_: bool = typer.Option(False, "--list", help="List the declared experiments with their expected wall time."),
    check: bool = typer.Option(False, "--check", help="Train nothing: name the artifacts whose configs no longer match today's (exit 1 if any)."),
    render: bool = typer.Option(False, "--render", help="Re-render the marked tables of README.md and docs/*.md from the artifacts."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Write artifacts from a tree with uncommitted changes (the artifact says so)."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Where the runs themselves go (default: runs/ of the checkout).", show_default=False),
    threads: Optional[str] = typer.Option(None, "--threads", show_default=False, help="Threads of each job: N, or auto (the default: the usable cores shared among the jobs)."),
) -> None:
    """Rerun the experiments behind the docs' numbers over several seeds; check and render the pages.

    Each experiment is declared once in experiments/<name>.yaml; its artifact (per-seed configs,
    summaries and metrics, mean ± std over seeds, provenance) goes to docs/results/<name>/.

    Examples:
      rnnlab reproduce --list
      rnnlab reproduce long_dependency_cells --seeds 3 --jobs 2
      rnnlab reproduce --check
      rnnlab reproduce --render
    """
    from .commands import reproduce as rep

    with _user_errors():
        if list_ + check + render > 1:
            raise UserError("give one of --list, --check and --render at a time")
        if list_:
            rep.list_experiments(list(names or []), console)
        elif check:
            raise typer.Exit(rep.check(list(names or []), console))
        elif render:
            rep.render(console)
        else:
            from .threads import parse_threads

            per_job = parse_threads(threads) if threads is not None else "auto"
            rep.reproduce(list(names or []), seeds=seeds, jobs=jobs, allow_dirty=allow_dirty, runs_dir=runs_dir, console=console,
                          threads=None if per_job == "auto" else int(per_job))  # fmt: skip


@app.command()
def export(
    run: Path = typer.Argument(..., help="Run directory of a text classifier, e.g. runs/20261124-093000-imdb_bilstm.", show_default=False),
    fmt: str = typer.Option("onnx", "--format", help="onnx (needs pip install 'rnnlab\\[export]') or torchscript."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Model file to write, or a folder (a name without an extension) to write model.onnx / model.pt into; default RUN/export/onnx/model.onnx (or RUN/export/torchscript/model.pt). The JSON goes beside it.", show_default=False),
) -> None:
    """Write a run's best model as ONNX or TorchScript, with a JSON of what inference needs
    (vocabulary, tokenizer steps, labels, max length and truncation); see docs/export.md.

    The model takes token ids (batch, time) and their lengths (batch,), any batch size and
    length, and gives the logits rnnlab's own evaluation gives; each export is checked for that.

    Examples:
      rnnlab export runs/20261124-093000-imdb_bilstm --format onnx
      rnnlab predict --onnx runs/20261124-093000-imdb_bilstm/export/onnx/model.onnx "a great film"
    """
    from .commands.export import export as run_export

    with _user_errors():
        run_export(run, fmt=fmt, out=out, console=console)


def main() -> None:
    from .malloc import keep_freed_memory

    keep_freed_memory()  # before any tensor exists: a training step reuses its memory (malloc.py)
    quiet_openmp_waits()  # before torch loads: waiting threads give a shared core back (threads.py)
    app(prog_name="rnnlab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
