"""The one training engine. `train`, `compare`, `probe-gradients` and every task go through `fit`.

    rnnlab train configs/long_dependency_lstm.yaml

Phases: setup (seed, device, task, model, optimizer) -> train (clip by global norm, evaluate every
`eval_every`, keep the best checkpoint on the validation metric, early stopping) -> test (the best
checkpoint, once) -> save (summary.json, plots, the final table).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .config import RunConfig, TrainConfig, config_to_dict
from .plots import plot_training_curves
from .registry import MODELS, TASKS
from .rundir import MetricsLog, create_run_dir, write_atomic, write_json
from .runtime import resolve_device, rng_state, seed_everything
from .tasks.base import Task

__all__ = ["fit", "FitResult", "TrainingStopped", "build", "evaluate", "count_params", "load_run_model"]


class TrainingStopped(Exception):
    """Training ended early (diverged, interrupted); the run directory is consistent."""

    def __init__(self, message: str, exit_code: int, result: "FitResult"):
        super().__init__(message)
        self.exit_code = exit_code
        self.result = result


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that the run is saved like on Ctrl-C."""


class _Diverged(Exception):
    def __init__(self, step: int, what: str, value: float):
        super().__init__(f"{what} is {value} at step {step}")
        self.step = step


@dataclass
class FitResult:
    run_dir: Path
    summary: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(cfg: RunConfig, device: torch.device) -> tuple[Task, nn.Module]:
    """Task first (it knows the sizes), then the model from the task's spec."""
    task = TASKS.build(cfg.task, cfg)
    model = MODELS.build(cfg.model, task.model_spec()).to(device)
    return task, model


def _optimizer(params: list[nn.Parameter], t: TrainConfig) -> torch.optim.Optimizer:
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=t.lr, weight_decay=t.weight_decay)


def _scheduler(opt: torch.optim.Optimizer, t: TrainConfig, total_steps: int | None) -> Any:
    if t.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=t.plateau_factor, patience=t.plateau_patience)
    if t.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps or 1, 1))
    return None


@torch.inference_mode()
def evaluate(model: nn.Module, task: Task, split: str, device: torch.device) -> dict[str, Any]:
    model.eval()
    sums: dict[str, float] = {}
    for batch in task.eval_batches(split):
        batch = batch.to(device)
        stats = task.batch_stats(model(batch.inputs, batch.lengths), batch)
        for k, v in stats.items():
            sums[k] = sums.get(k, 0) + (v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v)
    return task.summarize(sums)


def load_run_model(run_dir: Path, device: torch.device, which: str = "best") -> tuple[RunConfig, Task, nn.Module, dict]:
    """Rebuild task and model from a run's checkpoint alone (config and vocabulary are inside)."""
    from .config import resolve_config

    ckpt = load_checkpoint(Path(run_dir) / "checkpoints" / f"{which}.pt")
    cfg = resolve_config(ckpt["config"], source=f"inside {run_dir}/checkpoints/{which}.pt")
    task = TASKS.build(cfg.task, cfg)
    task.load_state_dict(ckpt.get("task_state") or {})  # e.g. the vocabulary, before the model's sizes
    model = MODELS.build(cfg.model, task.model_spec())
    model.load_state_dict(ckpt["model"])
    return cfg, task, model.to(device).eval(), ckpt


@contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        TextColumn("<"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not enabled,
        transient=False,
    )


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{100 * value:.2f}%" if pct else f"{value:.4f}"


def fit(
    cfg: RunConfig,
    *,
    runs_dir: str | Path = "runs",
    console: Console | None = None,
    progress: bool = True,
    final_table: bool = True,
    label: str | None = None,
) -> FitResult:
    """Train `cfg` in a new run directory under `runs_dir`; return its summary and history."""
    console = console or Console()
    t = cfg.train
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    task, model = build(cfg, device)
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = count_params(model)
    spe = task.steps_per_epoch()
    total = min(x for x in (t.steps, t.epochs * spe if (t.epochs and spe) else None) if x is not None)
    eval_every = t.eval_every or (spe if spe else max(1, min(100, total // 10)))
    eval_on_steps = t.eval_every is not None or spe is None  # else once per epoch
    optimizer = _optimizer(params, t)
    scheduler = _scheduler(optimizer, t, total)
    max_norm = t.clip_grad_norm if t.clip_grad_norm is not None else float("inf")

    run_dir = create_run_dir(runs_dir, cfg.run_name)
    config_dict = config_to_dict(cfg)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config_dict, sort_keys=False).encode())
    log = MetricsLog(run_dir / "metrics.jsonl")
    ckpt_dir = run_dir / "checkpoints"
    summary: dict[str, Any] = {
        "status": "running",
        "task": cfg.task.name,
        "model": cfg.model.name,
        "params": n_params,
        "device": str(device),
        "world_size": 1,
        "seed": cfg.seed,
        "run_dir": str(run_dir),
        "steps": 0,
        "epochs": 0,
        "wall_time_s": 0.0,
        "chance": task.chance,
    }
    write_json(run_dir / "summary.json", summary)
    console.print(
        f"[bold]{label or cfg.run_name}[/] · task [cyan]{cfg.task.name}[/] · model [cyan]{cfg.model.name}[/] "
        f"({n_params:,} params) · device [green]{device}[/] · {total:,} steps"
    )

    step = epoch = 0
    best: dict[str, Any] | None = None
    best_key: tuple[float, float] | None = None
    bad_evals = skipped = 0
    acc_loss = acc_norm = 0.0
    acc_n = 0
    acc_stats: dict[str, float] = {}
    started = time.perf_counter()
    higher = task.primary_metric != "loss"

    def payload(full: bool) -> dict[str, Any]:
        p: dict[str, Any] = {
            "config": config_dict,
            "model": model.state_dict(),
            "task_state": task.state_dict(),
            "step": step,
            "epoch": epoch,
            "val": best,
        }
        if full:  # what resuming needs on top
            p.update(
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict() if scheduler is not None else None,
                rng=rng_state(),
                best_key=best_key,
                bad_evals=bad_evals,
            )
        return p

    def do_eval() -> bool:
        """Log train/val rows, keep the best checkpoint; True when early stopping says stop."""
        nonlocal best, best_key, bad_evals, acc_loss, acc_norm, acc_n, acc_stats
        elapsed = time.perf_counter() - started
        lr = optimizer.param_groups[0]["lr"]
        if acc_n:
            train_metrics = task.summarize(acc_stats)
            log.append(
                {"step": step, "epoch": epoch, "split": "train", **train_metrics, "loss": acc_loss / acc_n,
                 "lr": lr, "grad_norm": acc_norm / acc_n, "elapsed_s": round(elapsed, 3)}
            )
        val = evaluate(model, task, "val", device)
        log.append({"step": step, "epoch": epoch, "split": "val", **val, "lr": lr, "grad_norm": None, "elapsed_s": round(elapsed, 3)})
        acc_loss = acc_norm = 0.0
        acc_n = 0
        acc_stats = {}
        primary = val[task.primary_metric]
        key = (primary if higher else -primary, -val["loss"])
        if best_key is None or key > best_key:
            best_key, best, bad_evals = key, {"step": step, **val}, 0
            save_checkpoint(ckpt_dir / "best.pt", payload(full=False))
        else:
            bad_evals += 1
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val["loss"])
        bar.update(bar_id, info=f"val {task.primary_metric} {_fmt(primary, pct=higher)} · best {_fmt(best[task.primary_metric], pct=higher)}")
        return t.early_stopping is not None and bad_evals >= t.early_stopping

    status, stop_message, exit_code = "completed", None, 0
    last_eval_step = -1
    with _sigterm_as_exception(), _progress(console, progress) as bar:
        bar_id = bar.add_task("train", total=total, info="")
        try:
            done = False
            while not done:
                for batch in task.train_batches(epoch):
                    batch = batch.to(device)
                    model.train()
                    logits = model(batch.inputs, batch.lengths)
                    loss = task.loss(logits, batch)
                    optimizer.zero_grad(set_to_none=True)
                    if not torch.isfinite(loss):
                        if t.skip_nonfinite:
                            skipped += 1
                            continue
                        raise _Diverged(step + 1, "the loss", loss.item())
                    loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)  # the norm before clipping
                    if not torch.isfinite(norm):
                        if t.skip_nonfinite:
                            skipped += 1
                            optimizer.zero_grad(set_to_none=True)
                            continue
                        raise _Diverged(step + 1, "the gradient norm", norm.item())
                    optimizer.step()
                    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                        scheduler.step()
                    step += 1
                    with torch.no_grad():
                        for k, v in task.batch_stats(logits.detach(), batch).items():
                            acc_stats[k] = acc_stats.get(k, 0) + float(v)
                    acc_loss += loss.item()
                    acc_norm += norm.item()
                    acc_n += 1
                    bar.update(bar_id, completed=step)
                    stop = False
                    if eval_on_steps and step % eval_every == 0:
                        stop = do_eval()
                        last_eval_step = step
                    if t.checkpoint_every and step % t.checkpoint_every == 0:
                        save_checkpoint(ckpt_dir / "last.pt", payload(full=True))
                    if stop or step >= total:
                        done = True
                        break
                else:  # the epoch ran out
                    epoch += 1
                    if spe is not None and step != last_eval_step:
                        done = do_eval()
                        last_eval_step = step
                    save_checkpoint(ckpt_dir / "last.pt", payload(full=True))
                    if t.epochs is not None and epoch >= t.epochs:
                        done = True
            if step != last_eval_step:
                do_eval()
        except _Diverged as e:
            status, exit_code = "diverged", 1
            stop_message = (
                f"training diverged: {e}. The best checkpoint so far is kept. Try a lower learning rate "
                f"(train.lr={t.lr / 10:g}), gradient clipping (train.clip_grad_norm=1.0), or "
                "train.skip_nonfinite=true to skip such batches."
            )
        except (KeyboardInterrupt, _Terminated) as e:
            status = "interrupted"
            exit_code = 143 if isinstance(e, _Terminated) else 130
            stop_message = f"interrupted at step {step}; the run is saved in {run_dir}"
        except BaseException:
            summary.update(status="failed", steps=step, epochs=epoch, wall_time_s=round(time.perf_counter() - started, 3))
            write_json(run_dir / "summary.json", summary)
            raise
        save_checkpoint(ckpt_dir / "last.pt", payload(full=True))

    wall = time.perf_counter() - started
    summary.update(status=status, steps=step, epochs=epoch, wall_time_s=round(wall, 3),
                   steps_per_s=round(step / wall, 3) if wall > 0 else None, skipped_batches=skipped, val=best)
    if status == "completed" and best is not None:
        # The test split is scored once, with the checkpoint chosen on validation.
        model.load_state_dict(load_checkpoint(ckpt_dir / "best.pt")["model"])
        test = evaluate(model, task, "test", device)
        summary["test"] = test
        log.append({"step": best["step"], "epoch": epoch, "split": "test", **test, "elapsed_s": round(wall, 3)})
    write_json(run_dir / "summary.json", summary)
    plot_training_curves(log.rows, run_dir / "plots", cfg.run_name, chance=task.chance)
    result = FitResult(run_dir, summary, log.rows)
    if final_table:
        _print_table(console, cfg, task, summary)
        if status == "completed":
            task.report(model, device, console)
    if stop_message:
        raise TrainingStopped(stop_message, exit_code, result)
    return result


def _print_table(console: Console, cfg: RunConfig, task: Task, summary: dict[str, Any]) -> None:
    metric = task.primary_metric
    pct = metric == "accuracy"
    table = Table(title=f"{cfg.run_name} · {cfg.model.name} on {cfg.task.name}", title_justify="left")
    table.add_column("split")
    table.add_column("loss", justify="right")
    table.add_column(metric, justify="right")
    extra = [k for k in ("perplexity",) if k in (summary.get("test") or summary.get("val") or {})]
    for k in extra:
        table.add_column(k, justify="right")
    for split, row in (("val (best, step %s)" % (summary["val"] or {}).get("step"), summary.get("val")), ("test", summary.get("test"))):
        if row:
            table.add_row(split, _fmt(row.get("loss")), _fmt(row.get(metric), pct), *(_fmt(row.get(k)) for k in extra))
    if task.chance is not None and pct:
        table.add_row("[dim]chance[/]", "", f"[dim]{100 * task.chance:.2f}%[/]")
    console.print(table)
    console.print(
        f"{summary['status']} · {summary['steps']:,} steps in {summary['wall_time_s']:.1f}s "
        f"({summary.get('steps_per_s') or 0:.1f} steps/s) · {summary['params']:,} params · run: [bold]{summary['run_dir']}[/]"
    )
