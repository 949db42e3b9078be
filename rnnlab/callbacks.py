"""What a training run shows and leaves behind besides its checkpoints: the progress bar, the
metric rows, the plots and the final table. `fit` calls each callback at setup, after each step,
after each evaluation and at the end; the engine itself only trains and saves.

    rnnlab train configs/long_dependency_lstm.yaml          # all four at work
    rnnlab compare lstm gru                                 # no final table per run
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .plots import plot_training_curves
from .errors import UserError
from .rundir import clean_json, write_atomic

if TYPE_CHECKING:  # pragma: no cover
    from .engine import FitResult, Run

__all__ = ["Callback", "ProgressDisplay", "MetricsFile", "TrainingPlots", "FinalTable", "TensorBoardLog", "default_callbacks", "fmt_metric"]


class Callback:
    """Override what you need; every hook is called on the main process only."""

    def on_setup(self, run: "Run") -> None: ...

    def on_step(self, run: "Run") -> None: ...

    def on_evaluate(self, run: "Run", rows: list[dict[str, Any]]) -> None: ...

    def on_end(self, run: "Run", result: "FitResult") -> None: ...

    def close(self) -> None:
        """Called on every exit path, after on_end or instead of it (an exception)."""


def fmt_metric(value: Any, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{100 * value:.2f}%" if pct else f"{value:.4f}"


class ProgressDisplay(Callback):
    """The run's header line, then a bar with the live validation metric."""

    def __init__(self, console: Console, show_bar: bool = True, label: str | None = None):
        self.console, self.show_bar, self.label = console, show_bar, label
        self.bar: Progress | None = None

    def on_setup(self, run: "Run") -> None:
        cfg = run.cfg
        what = f"resuming at step {run.step:,} of {run.total:,}" if run.resumed else f"{run.total:,} steps"
        self.console.print(
            f"[bold]{self.label or cfg.run_name}[/] · task [cyan]{cfg.task.name}[/] · model [cyan]{cfg.model.name}[/] "
            f"({run.summary['params']:,} params) · device [green]{run.device}[/]"
            + (f" · {run.precision_note}" if run.precision_note else "")
            + (f" × {run.dist.world_size} processes" if run.dist.enabled else "")
            + f" · {what}"
        )
        for note in getattr(run, "notes", []):
            self.console.print(f"  [dim]{note}[/]", highlight=False, soft_wrap=True)
        self.bar = Progress(
            TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
            TimeElapsedColumn(), TextColumn("<"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=self.console, disable=not self.show_bar, transient=False,
        )  # fmt: skip
        self.bar.start()
        self.bar_id = self.bar.add_task("train", total=run.total, completed=run.step, info="")

    def on_step(self, run: "Run") -> None:
        if self.bar is not None:
            self.bar.update(self.bar_id, completed=run.step)

    def on_evaluate(self, run: "Run", rows: list[dict[str, Any]]) -> None:
        val = next((r for r in rows if r.get("split") == "val"), None)
        if self.bar is None or val is None or run.best is None:
            return
        name, pct = run.task.primary_metric, run.higher and run.task.primary_metric.endswith("accuracy")
        self.bar.update(self.bar_id, info=f"val {name} {fmt_metric(val.get(name), pct)} · best {fmt_metric(run.best.get(name), pct)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class MetricsFile(Callback):
    """metrics.jsonl: one JSON object per row, appended and flushed as it happens."""

    def on_setup(self, run: "Run") -> None:
        self.path = run.run_dir / "metrics.jsonl"
        if run.resumed:  # rows after the checkpoint go away; the resumed run logs them again
            write_atomic(self.path, "".join(json.dumps(clean_json(r)) + "\n" for r in run.history).encode())

    def on_evaluate(self, run: "Run", rows: list[dict[str, Any]]) -> None:
        with self.path.open("a") as f:
            for row in rows:
                f.write(json.dumps(clean_json(row)) + "\n")
            f.flush()


class TrainingPlots(Callback):
    """plots/loss.png and plots/accuracy.png (or the task's metric) against step."""

    def on_end(self, run: "Run", result: "FitResult") -> None:
        task = run.task
        plot_training_curves(run.history, run.run_dir / "plots", run.cfg.run_name, chance=task.chance,
                             chance_label=task.chance_label, baseline=task.baseline)  # fmt: skip


class FinalTable(Callback):
    """Best validation and test metrics beside chance, then anything the task reports."""

    def __init__(self, console: Console):
        self.console = console

    def on_end(self, run: "Run", result: "FitResult") -> None:
        print_final_table(self.console, run, result.summary)
        if result.summary["status"] == "completed":
            run.task.report(run.model, run.device, self.console)


def print_final_table(console: Console, run: "Run", summary: dict[str, Any]) -> None:
    cfg, task = run.cfg, run.task
    metric = task.primary_metric
    table = Table(title=f"{cfg.run_name} · {cfg.model.name} on {cfg.task.name}", title_justify="left")
    table.add_column("split")
    shown = summary.get("test") or summary.get("val") or {}
    columns = ["loss", *([metric] if metric != "loss" else []), *(k for k, v in shown.items() if isinstance(v, float) and k not in ("loss", metric))]
    for k in columns:
        table.add_column(k.replace("_", " "), justify="right")
    val = summary.get("val")
    for split, row in ((f"val (best, step {(val or {}).get('step')})", val), ("test", summary.get("test"))):
        if row:
            table.add_row(split, *(fmt_metric(row.get(k), k.endswith("accuracy")) for k in columns))
    # What a model that learnt nothing gets: the chance accuracy and the task's baseline loss, on
    # one row when the same answer gives both (the copy task's memoryless model).
    floor: dict[str, dict[str, str]] = {}
    if task.chance is not None and "accuracy" in columns:
        floor.setdefault(task.chance_label, {})["accuracy"] = f"{100 * task.chance:.2f}%"
    if task.baseline is not None:
        floor.setdefault(task.baseline[1], {})["loss"] = f"{task.baseline[0]:.4f}"
    for label, cells in floor.items():
        table.add_row(f"[dim]{label}[/]", *(f"[dim]{cells[k]}[/]" if k in cells else "" for k in columns))
    console.print(table)
    skipped = summary.get("skipped_batches") or 0  # train.skip_nonfinite / train.skip_spikes
    said_skipped = f" · {skipped:,} {'batch' if skipped == 1 else 'batches'} skipped" if skipped else ""
    console.print(
        f"{summary['status']} · {summary['steps']:,} steps in {summary['wall_time_s']:.1f}s "
        f"({summary.get('steps_per_s') or 0:.1f} steps/s){said_skipped} · {summary['params']:,} params · run: [bold]{summary['run_dir']}[/]"
    )


class TensorBoardLog(Callback):
    """RUN/tensorboard/: every numeric metrics.jsonl value as a scalar `split/name` against step
    (`tensorboard --logdir runs` shows every run). Needs the optional tensorboard package."""

    def __init__(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError(
                "train.tensorboard = true needs the tensorboard package: pip install 'rnnlab[tensorboard]' "
                "(or pip install tensorboard), or set train.tensorboard=false"
            ) from None
        self._writer_class = SummaryWriter
        self.writer = None

    def on_setup(self, run: "Run") -> None:
        # A resumed run logs the rows after its checkpoint again: purge_step drops the old ones.
        purge = run.step + 1 if run.resumed else None
        self.writer = self._writer_class(log_dir=str(run.run_dir / "tensorboard"), purge_step=purge)

    def on_evaluate(self, run: "Run", rows: list[dict[str, Any]]) -> None:
        for row in rows:
            for key, value in row.items():
                if key in _NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                if math.isfinite(value):
                    self.writer.add_scalar(f"{row['split']}/{key}", value, row["step"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


_NOT_SCALARS = {"step", "epoch", "split"}


def default_callbacks(console: Console, *, progress: bool = True, final_table: bool = True, label: str | None = None) -> list[Callback]:
    out: list[Callback] = [ProgressDisplay(console, progress, label), MetricsFile(), TrainingPlots()]
    if final_table:
        out.append(FinalTable(console))
    return out
