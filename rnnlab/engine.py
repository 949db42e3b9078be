"""The one training engine. `train`, `compare`, `probe-gradients` and every task go through `fit`.

    rnnlab train configs/long_dependency_lstm.yaml

Phases: setup (seed, device, task, model, optimizer) -> train (clip by global norm, evaluate every
`eval_every`, keep the best checkpoint on the validation metric, early stopping) -> test (the best
checkpoint, once) -> save (summary.json, plots, the final table).
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
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
from .errors import UserError
from .rundir import MetricsLog, create_run_dir, read_metrics, write_atomic, write_json
from .runtime import Dist, rng_state, seed_everything, set_rng_state, setup_distributed
from .tasks.base import Batch, Task

__all__ = ["fit", "FitResult", "TrainingStopped", "build", "evaluate", "count_params", "load_run_model"]


# With train.skip_nonfinite, this many non-finite batches in a row end the run as diverged.
MAX_SKIPPED_IN_A_ROW = 100


class TrainingStopped(Exception):
    """Training ended early (diverged, interrupted); the run directory is consistent."""

    def __init__(self, message: str, exit_code: int, result: "FitResult"):
        super().__init__(message)
        self.exit_code = exit_code
        self.result = result


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
    return task, _build_model(cfg, task, device)


def _build_model(cfg: RunConfig, task: Task, device: torch.device) -> nn.Module:
    try:
        return MODELS.build(cfg.model, task.model_spec()).to(device)
    except (RuntimeError, MemoryError) as e:  # torch.OutOfMemoryError is a RuntimeError
        if "memory" not in str(e).lower() and not isinstance(e, MemoryError):
            raise
        raise UserError(
            f"model '{cfg.model.name}' does not fit in memory on {device}: {str(e).splitlines()[0][:200]}. "
            "Use a smaller model.hidden_size, model.num_layers or model.embedding_dim"
        ) from None


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
def evaluate(
    model: nn.Module, task: Task, split: str, device: torch.device, dist: Dist = Dist(), autocast: Any = None
) -> dict[str, Any]:
    """Metrics of `split`; with several processes each scores every world_size-th batch."""
    model.eval()
    sums: dict[str, float] = {}
    for i, batch in enumerate(task.eval_batches(split)):
        if i % dist.world_size != dist.rank:
            continue
        batch = batch.to(device)
        with autocast or nullcontext():
            logits = model(batch.inputs, batch.lengths)
        for k, v in task.batch_stats(logits.float(), batch).items():
            sums[k] = sums.get(k, 0) + float(v)
    return task.summarize(_sum_over_ranks(sums, dist))


def _sum_over_ranks(sums: dict[str, float], dist: Dist) -> dict[str, float]:
    if not dist.enabled:
        return sums
    import torch.distributed as tdist

    gathered: list[dict[str, float]] = [{} for _ in range(dist.world_size)]
    tdist.all_gather_object(gathered, sums)
    total: dict[str, float] = {}
    for part in gathered:
        for k, v in part.items():
            total[k] = total.get(k, 0) + v
    return total


def load_run_model(run_dir: Path, device: torch.device, which: str = "best") -> tuple[RunConfig, Task, nn.Module, dict]:
    """Rebuild task and model from a run's checkpoint alone (config and vocabulary are inside)."""
    from .config import resolve_config

    path = Path(run_dir) / "checkpoints" / f"{which}.pt"
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt.get("config"), dict) or not isinstance(ckpt.get("model"), dict):
        raise UserError(f"{path}: damaged: it lacks the config or the weights of the run")
    cfg = resolve_config(ckpt["config"], source=f"inside {path}")
    try:
        task = TASKS.build(cfg.task, cfg)
        task.load_state_dict(ckpt.get("task_state") or {})  # e.g. the vocabulary, before the model's sizes
        model = _build_model(cfg, task, device)
        model.load_state_dict(ckpt["model"])
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise UserError(
            f"{path}: its weights or task state do not fit the model its config describes (damaged, or written by "
            f"another rnnlab version): {str(e).splitlines()[0][:300]}"
        ) from None
    return cfg, task, model.eval(), ckpt


class _StopRequest:
    """SIGINT/SIGTERM set a flag that the loop reads between steps, so the saved state is always
    that of a whole step and resuming is exact. A second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @contextmanager
    def installed(self) -> Iterator["_StopRequest"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum: int, frame: Any) -> None:
            if self.signum is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.signum = signum

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)


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
    resume: str | Path | None = None,
    console: Console | None = None,
    progress: bool = True,
    final_table: bool = True,
    label: str | None = None,
) -> FitResult:
    """Train `cfg` in a new run directory under `runs_dir` (or continue the run `resume`)."""
    run = _Run(cfg, console or Console(), label)
    run.setup(Path(runs_dir), Path(resume) if resume is not None else None)
    run.train(progress)
    return run.finish(final_table)


class _Run:
    """One training run's state; fit() walks it through setup -> train -> finish."""

    def __init__(self, cfg: RunConfig, console: Console, label: str | None):
        self.cfg, self.t, self.console, self.label = cfg, cfg.train, console, label
        self.step = self.epoch = self.bad_evals = self.skipped = self.skipped_in_a_row = 0
        self.best: dict[str, Any] | None = None
        self.best_key: tuple[float, float] | None = None
        self.elapsed_before = 0.0  # wall time of earlier sessions of a resumed run
        self.status, self.stop_message, self.exit_code = "completed", None, 0
        self._reset_train_stats()

    # --- setup ----------------------------------------------------------------------------------
    def setup(self, runs_dir: Path, resume: Path | None) -> None:
        cfg, t = self.cfg, self.t
        seed_everything(cfg.seed)  # the same on every process: identical initial weights
        self.dist, self.device = setup_distributed(cfg.device)
        self.main = self.dist.is_main
        if not self.main:
            self.console = Console(quiet=True)  # rank 0 alone prints and writes
        if t.precision != "fp32" and self.device.type != "cuda":
            raise UserError(
                f"train.precision = {t.precision!r} needs a CUDA device, and this run is on {self.device.type}; "
                "use train.precision=fp32"
            )
        self.task, self.model = build(cfg, self.device)
        self.task.shard(self.dist.rank, self.dist.world_size)
        self.net = self.model  # what the training step calls: the DDP wrapper when distributed
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.precision)
        self.autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp_dtype else nullcontext
        self.scaler = torch.amp.GradScaler("cuda") if t.precision == "fp16" else None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.spe = self.task.steps_per_epoch()
        lengths = [x for x in (t.steps, t.epochs * self.spe if (t.epochs and self.spe) else None) if x is not None]
        self.total = min(lengths)
        self.eval_every = t.eval_every or (self.spe if self.spe else max(1, min(100, self.total // 10)))
        self.eval_on_steps = t.eval_every is not None or self.spe is None  # else once per epoch
        self.optimizer = _optimizer(self.params, t)
        self.scheduler = _scheduler(self.optimizer, t, self.total)
        self.max_norm = t.clip_grad_norm if t.clip_grad_norm is not None else float("inf")
        self.higher = self.task.primary_metric != "loss"
        self.config_dict = config_to_dict(cfg)
        if resume is not None:
            self.run_dir = resume
            self._restore(resume)
        elif self.main:
            self.run_dir = create_run_dir(runs_dir, cfg.run_name)
            write_atomic(self.run_dir / "config.yaml", yaml.safe_dump(self.config_dict, sort_keys=False).encode())
            self.log = MetricsLog(self.run_dir / "metrics.jsonl")
        else:  # other ranks write nothing; their log stays in memory
            self.run_dir = Path(runs_dir) / "(rank 0's run)"
            self.log = MetricsLog(None)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.summary: dict[str, Any] = {
            "status": "running",
            "task": cfg.task.name,
            "model": cfg.model.name,
            "params": count_params(self.model),
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "seed": cfg.seed,
            "run_dir": str(self.run_dir),
            "steps": self.step,
            "epochs": self.epoch,
            "wall_time_s": round(self.elapsed_before, 3),
            "chance": self.task.chance,
        }
        self._write_summary()
        what = f"resuming at step {self.step:,} of {self.total:,}" if resume else f"{self.total:,} steps"
        self.console.print(
            f"[bold]{self.label or cfg.run_name}[/] · task [cyan]{cfg.task.name}[/] · model [cyan]{cfg.model.name}[/] "
            f"({self.summary['params']:,} params) · device [green]{self.device}[/]"
            + (f" × {self.dist.world_size} processes" if self.dist.enabled else "")
            + f" · {what}"
        )

    def _restore(self, run_dir: Path) -> None:
        """Everything an uninterrupted run would have at the checkpoint's step, RNG states included."""
        ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
        if "optimizer" not in ckpt:
            raise UserError(f"{run_dir}/checkpoints/last.pt holds no training state to resume from")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.task.load_state_dict(ckpt.get("task_state") or {})
        self.step, self.epoch = ckpt["step"], ckpt["epoch"]
        self.best, self.bad_evals = ckpt.get("val"), ckpt.get("bad_evals", 0)
        if (run_dir / "checkpoints" / "best.pt").is_file():
            self.best_state = load_checkpoint(run_dir / "checkpoints" / "best.pt")["model"]
        self.best_key = tuple(ckpt["best_key"]) if ckpt.get("best_key") is not None else None
        self.elapsed_before = ckpt.get("elapsed_s", 0.0)
        self.skipped = ckpt.get("skipped", 0)
        set_rng_state(ckpt["rng"])
        # Rows logged after the checkpoint will be logged again, identically, by the resumed run.
        rows = [r for r in read_metrics(run_dir) if r.get("step", 0) <= self.step and r.get("split") != "test"]
        if self.main:
            write_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
        self.log = MetricsLog(run_dir / "metrics.jsonl" if self.main else None)
        self.log.rows = rows

    def _payload(self, full: bool) -> dict[str, Any]:
        p: dict[str, Any] = {
            "config": self.config_dict,
            "model": self.model.state_dict(),
            "task_state": self.task.state_dict() if full else _without(self.task.state_dict(), "sampler"),
            "step": self.step,
            "epoch": self.epoch,
            "val": self.best,
        }
        if full:  # what resuming needs on top
            p.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
                rng=rng_state(),
                best_key=self.best_key,
                bad_evals=self.bad_evals,
                skipped=self.skipped,
                elapsed_s=self._elapsed(),
            )
        return p

    def _save_last(self) -> None:
        if self.main:
            save_checkpoint(self.ckpt_dir / "last.pt", self._payload(full=True))

    def _write_summary(self) -> None:
        if self.main:
            write_json(self.run_dir / "summary.json", self.summary)

    def _elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.started)

    def _reset_train_stats(self) -> None:
        self.acc_loss: torch.Tensor | float = 0.0
        self.acc_norm: torch.Tensor | float = 0.0
        self.acc_n = 0
        self.acc_stats: dict[str, Any] = {}

    # --- train ----------------------------------------------------------------------------------
    def train(self, show_progress: bool) -> None:
        self.started = time.perf_counter()
        stop = _StopRequest()
        last_eval = self.step if self.best is not None and self.best.get("step") == self.step else -1
        with stop.installed(), _progress(self.console, show_progress) as self.bar:
            self.bar_id = self.bar.add_task("train", total=self.total, completed=self.step, info="")
            try:
                done = self.step >= self.total
                while not done:
                    for batch in self.task.train_batches(self.epoch):
                        if self._train_step(batch, bool(stop)):
                            stop.signum = stop.signum or signal.SIGTERM  # another process was stopped
                        early = False
                        if self.eval_on_steps and self.step % self.eval_every == 0:
                            early, last_eval = self._evaluate(), self.step
                        if self.t.checkpoint_every and self.step % self.t.checkpoint_every == 0:
                            self._save_last()
                        if stop:
                            raise KeyboardInterrupt
                        if early or self.step >= self.total:
                            done = True
                            break
                    else:  # the epoch ran out
                        self.epoch += 1
                        if self.spe is not None and self.step != last_eval:
                            done, last_eval = self._evaluate(), self.step
                        self._save_last()
                        done = done or (self.t.epochs is not None and self.epoch >= self.t.epochs) or bool(stop)
                        if stop:
                            raise KeyboardInterrupt
                if self.step != last_eval:
                    self._evaluate()
            except _Diverged as e:
                self.status, self.exit_code = "diverged", 1
                kept = (
                    f"The best checkpoint so far (step {self.best['step']}) is kept."
                    if self.best is not None
                    else "No evaluation had happened yet, so there is no best checkpoint; last.pt holds the state before it."
                )
                self.stop_message = (
                    f"training diverged: {e}. {kept} Try a lower learning rate "
                    f"(train.lr={self.t.lr / 10:g}), gradient clipping (train.clip_grad_norm=1.0), or "
                    "train.skip_nonfinite=true to skip such batches."
                )
            except KeyboardInterrupt:
                self.status = "interrupted"
                self.exit_code = 143 if stop.signum == signal.SIGTERM else 130
                self.stop_message = (
                    f"interrupted at step {self.step:,}; everything is saved. Continue with:\n"
                    f"  rnnlab train --resume {self.run_dir}"
                )
            except BaseException:
                self.summary.update(status="failed", steps=self.step, epochs=self.epoch, wall_time_s=round(self._elapsed(), 3))
                self._write_summary()
                raise
            self._save_last()

    def _train_step(self, batch: Batch, stop: bool) -> bool:
        """One optimizer step; returns whether any process asked to stop."""
        task = self.task
        batch = batch.to(self.device)
        self.net.train()
        with self.autocast():
            logits = self.net(batch.inputs, batch.lengths)
        loss = task.loss(logits.float(), batch)
        self.optimizer.zero_grad(set_to_none=True)
        bad = not torch.isfinite(loss)
        if self.dist.enabled:  # every process must take the same branch, or the next all-reduce hangs
            flags = torch.tensor([float(bad), float(stop)], device=self.device)
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            bad, stop = bool(flags[0]), bool(flags[1])
        if bad:
            self._nonfinite("the loss", loss.item())
            return stop
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_norm)  # the norm before clipping
        if self.scaler is not None:  # fp16: an overflow makes the scaler skip the step and shrink
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif not torch.isfinite(norm):  # gradients are all-reduced: every process agrees
            self.optimizer.zero_grad(set_to_none=True)
            self._nonfinite("the gradient norm", norm.item())
            return stop
        else:
            self.optimizer.step()
        if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
            self.scheduler.step()
        self.step += 1
        self.skipped_in_a_row = 0
        # Summed on the device; read once per evaluation (a GPU waits for every .item()).
        with torch.no_grad():
            for k, v in task.batch_stats(logits.detach().float(), batch).items():
                self.acc_stats[k] = self.acc_stats.get(k, 0) + v
        self.acc_loss = self.acc_loss + loss.detach()
        self.acc_norm = self.acc_norm + norm.detach()
        self.acc_n += 1
        self.bar.update(self.bar_id, completed=self.step)
        return stop

    def _nonfinite(self, what: str, value: float) -> None:
        if not self.t.skip_nonfinite:
            raise _Diverged(self.step + 1, what, value)
        self.skipped += 1
        self.skipped_in_a_row += 1
        if self.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:  # skipping cannot help any more
            raise _Diverged(self.step + 1, f"{what} of {self.skipped_in_a_row} batches in a row", value)

    def _evaluate(self) -> bool:
        """Log train/val rows, keep the best checkpoint; True when early stopping says stop."""
        task, lr = self.task, self.optimizer.param_groups[0]["lr"]
        elapsed = round(self._elapsed(), 3)
        common = {"step": self.step, "epoch": self.epoch}
        local = {**self.acc_stats, "_loss": self.acc_loss, "_norm": self.acc_norm, "_n": self.acc_n}
        train = _sum_over_ranks({k: float(v) for k, v in local.items()}, self.dist)
        if train["_n"]:
            n = train.pop("_n")
            loss, norm = train.pop("_loss") / n, train.pop("_norm") / n
            self.log.append(
                {**common, "split": "train", **task.summarize(train), "loss": loss, "lr": lr, "grad_norm": norm, "elapsed_s": elapsed}
            )
        self._reset_train_stats()
        val = evaluate(self.model, task, "val", self.device, self.dist, self.autocast())
        self.log.append({**common, "split": "val", **val, "lr": lr, "grad_norm": None, "elapsed_s": elapsed})
        primary = val[task.primary_metric]
        key = (primary if self.higher else -primary, -val["loss"])
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best, self.bad_evals = key, {"step": self.step, **val}, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            if self.main:
                save_checkpoint(self.ckpt_dir / "best.pt", self._payload(full=False))
        else:
            self.bad_evals += 1
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val["loss"])
        name, pct = task.primary_metric, self.higher
        self.bar.update(self.bar_id, info=f"val {name} {_fmt(primary, pct)} · best {_fmt(self.best[name], pct)}")
        return self.t.early_stopping is not None and self.bad_evals >= self.t.early_stopping

    # --- test and save --------------------------------------------------------------------------
    def finish(self, final_table: bool) -> FitResult:
        wall = self._elapsed()
        s = self.summary
        s.update(status=self.status, steps=self.step, epochs=self.epoch, wall_time_s=round(wall, 3),
                 steps_per_s=round(self.step / wall, 3) if wall > 0 else None, skipped_batches=self.skipped, val=self.best)
        if self.status == "completed" and self.best_state is not None:
            # The test split is scored once, with the weights chosen on validation (best.pt).
            self.model.load_state_dict(self.best_state)
            s["test"] = evaluate(self.model, self.task, "test", self.device, self.dist, self.autocast())
            self.log.append({"step": self.best["step"], "epoch": self.epoch, "split": "test", **s["test"], "elapsed_s": round(wall, 3)})
        self._write_summary()
        if self.main:
            plot_training_curves(self.log.rows, self.run_dir / "plots", self.cfg.run_name, chance=self.task.chance)
        result = FitResult(self.run_dir, s, self.log.rows)
        if final_table and self.main:
            _print_table(self.console, self.cfg, self.task, s)
            if self.status == "completed":
                self.task.report(self.model, self.device, self.console)
        if self.stop_message:
            raise TrainingStopped(self.stop_message, self.exit_code, result)
        return result


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _print_table(console: Console, cfg: RunConfig, task: Task, summary: dict[str, Any]) -> None:
    metric = task.primary_metric
    pct = metric == "accuracy"
    table = Table(title=f"{cfg.run_name} · {cfg.model.name} on {cfg.task.name}", title_justify="left")
    table.add_column("split")
    table.add_column("loss", justify="right")
    table.add_column(metric, justify="right")
    shown = summary.get("test") or summary.get("val") or {}
    extra = [k for k, v in shown.items() if isinstance(v, float) and k not in ("loss", metric)]
    for k in extra:
        table.add_column(k.replace("_", " "), justify="right")
    val = summary.get("val")
    for split, row in ((f"val (best, step {(val or {}).get('step')})", val), ("test", summary.get("test"))):
        if row:
            cells = (_fmt(row.get(k), k.endswith("accuracy")) for k in extra)
            table.add_row(split, _fmt(row.get("loss")), _fmt(row.get(metric), pct), *cells)
    if task.chance is not None and pct:
        table.add_row("[dim]chance[/]", "", f"[dim]{100 * task.chance:.2f}%[/]")
    console.print(table)
    console.print(
        f"{summary['status']} · {summary['steps']:,} steps in {summary['wall_time_s']:.1f}s "
        f"({summary.get('steps_per_s') or 0:.1f} steps/s) · {summary['params']:,} params · run: [bold]{summary['run_dir']}[/]"
    )
