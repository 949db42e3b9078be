"""The one training engine. `train`, `compare`, `probe-gradients` and every task go through `fit`.

    rnnlab train configs/long_dependency_lstm.yaml

Phases: setup (seed, device, task, model, optimizer) -> train (clip by global norm, evaluate every
`eval_every`, keep the best checkpoint on the validation metric, early stopping) -> finish (the
best checkpoint scored on the test split, once; summary.json). What the user sees and keeps
besides checkpoints and the summary (progress bar, metrics.jsonl, plots, the final table) hooks in
through callbacks (callbacks.py).

Resuming is exact: `last.pt` holds everything the loop's next step depends on (weights,
optimizer, scheduler, every random state, the sampler's place, the step of the last evaluation
and the training statistics gathered since it), so a run stopped anywhere and resumed writes the
same weights and the same metrics.jsonl as one that never stopped.
"""

from __future__ import annotations

import collections
import errno
import math
import shutil
import signal
import statistics
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import yaml
from rich.console import Console
from torch import nn

from .callbacks import Callback, TensorBoardLog, default_callbacks
from .models.transfer import apply_word_vectors, init_from_run
from .checkpoint import load_checkpoint, save_checkpoint
from .config import ModelConfig, RunConfig, TrainConfig, config_to_dict, resolve_config
from .contract import Batch, ModelSpec
from .errors import UserError
from .registry import MODELS, TASKS
from .rundir import (
    RunLock, create_run_dir, iter_run_dirs, partial_writes, read_json, read_metrics, write_atomic, write_error, write_json,
)
from .run_guards import out_of_memory, refuse_edited_config, remove_partial_writes
from .runtime import Dist, autocast_for, rng_state, seed_everything, set_rng_state, setup_distributed, teardown_distributed
from .threads import apply_threads, choose_threads, step_work
from .tasks.base import Task, bidirectional_warning

__all__ = [
    "fit",
    "FitResult",
    "Run",
    "TrainingStopped",
    "build",
    "build_task",
    "build_model",
    "evaluate",
    "count_params",
    "load_run_model",
    "find_latest_run",
    "task_class_of_run",
]


# With train.skip_nonfinite, this many non-finite batches in a row end the run as diverged.
MAX_SKIPPED_IN_A_ROW = 100
# train.skip_spikes compares each gradient norm with the median of the last SPIKE_WINDOW batches' norms,
# from the first full window on (the first steps' norms change the most).
SPIKE_WINDOW = 100
# last.pt is also saved after this much wall time without a save, so that a killed run of a task
# without epochs loses at most this much.
CHECKPOINT_SECONDS = 120.0


class TrainingStopped(Exception):
    """Training ended early (diverged, interrupted, failed); the run directory is consistent."""

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


def build_task(cfg: RunConfig) -> Task:
    """A task receives its own section, the seed and the global batch size; nothing else."""
    return TASKS.build(cfg.task, seed=cfg.seed, batch_size=cfg.train.batch_size)


def build_model(model_cfg: ModelConfig, spec: ModelSpec, device: torch.device) -> nn.Module:
    try:
        return MODELS.build(model_cfg, spec).to(device)
    except (RuntimeError, MemoryError) as e:  # torch.OutOfMemoryError is a RuntimeError
        if "memory" not in str(e).lower() and not isinstance(e, MemoryError):
            raise
        raise UserError(
            f"model '{model_cfg.name}' does not fit in memory on {device}: {str(e).splitlines()[0][:200]}. "
            "Use a smaller model.hidden_size, model.num_layers or model.embedding_dim"
        ) from None


def build(cfg: RunConfig, device: torch.device) -> tuple[Task, nn.Module]:
    """Task first (it knows the sizes), then the model from the task's spec."""
    task = build_task(cfg)
    return task, build_model(cfg.model, task.model_spec(), device)


def _start_weights(
    model_cfg: ModelConfig, model: nn.Module, vocab: Any, reader: dict[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """Weights from another run or word vectors, before training starts: one line each for the
    log, and the names of the parameters another run started (init_lr_scale applies to them).
    `reader` is this run's config: a run that split IMDb otherwise is refused (models/transfer.py)."""
    notes, started = [], []
    for key, backward in (("init_from", False), ("init_backward_from", True)):
        if getattr(model_cfg, key):
            note, copied = init_from_run(model, vocab, getattr(model_cfg, key), backward=backward, reader=reader)
            notes.append(note)
            started += copied
    if model_cfg.init_lr_scale != 1 and not started:
        raise UserError(f"model.init_lr_scale = {model_cfg.init_lr_scale}: it applies to the layers model.init_from starts; set that too")
    if model_cfg.pretrained_embeddings:
        notes.append(apply_word_vectors(model, vocab, model_cfg.pretrained_embeddings, model_cfg.freeze_embeddings))
    elif model_cfg.freeze_embeddings:
        raise UserError("model.freeze_embeddings = true: there is nothing to freeze without model.pretrained_embeddings=PATH")
    return notes, started


def _started_params(run_dir: Path) -> list[str]:
    """The parameters another run started, as a run's last checkpoint records them (the
    optimizer's groups depend on them); a missing or bad checkpoint is reported by the resume."""
    try:
        return list(load_checkpoint(Path(run_dir) / "checkpoints" / "last.pt").get("started_params", []))
    except Exception:
        return []


def _trainable(model: nn.Module, started: set[str], scale: float) -> list[dict[str, Any]]:
    """Parameter groups: the fresh ones at train.lr first (the lr the log shows), then those
    another run started, at `scale` times it; with scale 0 those are frozen instead. A model may
    ask for other rates for some of its own parameters (`lr_scales()`: name -> factor), e.g. the
    orthogonal part of expRNN."""
    own = model.lr_scales() if hasattr(model, "lr_scales") else {}
    fresh, pretrained, scaled = [], [], {}
    for name, p in model.named_parameters():
        if name in started and scale == 0:
            p.requires_grad_(False)
        if not p.requires_grad:
            continue
        if name in started:
            pretrained.append(p)
        elif own.get(name, 1.0) != 1.0:
            scaled.setdefault(own[name], []).append(p)
        else:
            fresh.append(p)
    groups = [{"params": fresh}, {"params": pretrained, "lr_scale": scale}]
    groups += [{"params": ps, "lr_scale": factor} for factor, ps in scaled.items()]
    return [g for g in groups if g["params"]]


def _optimizer(groups: list[dict[str, Any]], t: TrainConfig) -> torch.optim.Optimizer:
    groups = [{"params": g["params"], "lr": t.lr * g.get("lr_scale", 1.0)} for g in groups]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "rmsprop":  # torch's defaults (alpha 0.99, eps 1e-8), as the papers' reference code
        return torch.optim.RMSprop(groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    try:
        # One pass over each parameter instead of ten: under the plain loop, Adam's update of the
        # IMDb flagship's 3.2M-weight embedding took 12% of a training step on 2 CPU cores.
        return cls(groups, lr=t.lr, weight_decay=t.weight_decay, fused=True)
    except (RuntimeError, ValueError):  # torch < 2.4 on CPU, or a device without the fused kernel
        return cls(groups, lr=t.lr, weight_decay=t.weight_decay)


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
    path = Path(run_dir) / "checkpoints" / f"{which}.pt"
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt.get("config"), dict) or not isinstance(ckpt.get("model"), dict):
        raise UserError(f"{path}: damaged: it lacks the config or the weights of the run")
    cfg = resolve_config(ckpt["config"], source=f"inside {path}")
    cfg = _measured_precision(cfg, Path(run_dir))
    try:
        task = build_task(cfg)
        task.load_state_dict(ckpt.get("task_state") or {})  # e.g. the vocabulary, before the model's sizes
        model = build_model(cfg.model, task.model_spec(), device)
        model.load_state_dict(ckpt["model"])
        apply_threads(choose_threads(cfg.runtime.threads, step_work(model, cfg.train.batch_size)))
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise UserError(
            f"{path}: its weights or task state do not fit the model its config describes (damaged, or written by "
            f"another rnnlab version): {str(e).splitlines()[0][:300]}"
        ) from None
    return cfg, task, model.eval(), ckpt


def _measured_precision(cfg: RunConfig, run_dir: Path) -> RunConfig:
    """precision auto: the precision the run measured and trained in (summary.json), so that
    evaluate, predict and inspect answer as the run did, not in bf16 where fp32 was chosen."""
    if cfg.train.precision != "auto":
        return cfg
    try:
        trained = read_json(run_dir / "summary.json").get("precision")
    except (OSError, ValueError, AttributeError):
        return cfg
    if trained not in ("fp32", "bf16"):
        return cfg
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"precision": trained})})


def task_class_of_run(run: Path) -> type | None:
    """The registered task class a run directory was trained on, from its summary.json or else its
    config.yaml; None when neither names a registered task (damaged, foreign, a probe)."""
    for name in ("summary.json", "config.yaml"):
        path = Path(run) / name
        try:
            data = read_json(path) if name.endswith(".json") else yaml.safe_load(path.read_text())
            task = data.get("task")
            task = task.get("name") if isinstance(task, dict) else task
        except (OSError, ValueError, AttributeError, yaml.YAMLError):
            continue
        if isinstance(task, str) and task in TASKS:
            return TASKS.get(task).builder
    return None


def find_latest_run(runs_dir: Path, capability: type | tuple[type, ...], what: str, hint: str) -> Path:
    """The newest run under `runs_dir` (also inside compare directories) whose task declares
    `capability` (e.g. contract.ClassifiesText) and that has a best checkpoint."""
    runs_dir = Path(runs_dir)
    candidates = [
        run for run in iter_run_dirs(runs_dir)
        if (run / "checkpoints" / "best.pt").is_file() and isinstance(cls := task_class_of_run(run), type) and issubclass(cls, capability)
    ]  # fmt: skip
    if not candidates:
        raise UserError(f"no trained {what} found under {runs_dir}/; {hint} (or pass --run RUN_DIR)")
    # Run directory names start with their start time; the newest wherever it sits.
    return max(candidates, key=lambda p: (p.name[:15], p.stat().st_mtime))


# SIGHUP: the terminal closed. Like SIGTERM, finish the step, save, and leave a resumable run.
_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


class _StopRequest:
    """SIGINT/SIGTERM/SIGHUP set a flag that the loop reads between steps, so the saved state is
    always that of a whole step and resuming is exact. A second Ctrl-C stops at once."""

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

        previous = {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)


def fit(
    cfg: RunConfig,
    *,
    runs_dir: str | Path = "runs",
    resume: str | Path | None = None,
    console: Console | None = None,
    progress: bool = True,
    final_table: bool = True,
    label: str | None = None,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Train `cfg` in a new run directory under `runs_dir` (or continue the run `resume`).

    `callbacks` replaces the default display (progress bar, metrics.jsonl, plots, final table);
    without it those are built from `console`, `progress`, `final_table` and `label`.
    """
    console = console or Console()
    if callbacks is None:
        callbacks = default_callbacks(console, progress=progress, final_table=final_table, label=label)
    if cfg.train.tensorboard:  # a setting of the run, so kept whatever display the caller chose
        callbacks = [*callbacks, TensorBoardLog()]
    run = Run(cfg, callbacks)
    stop = _StopRequest()
    # The handler is in place before anything slow (data loading) starts: a signal during setup
    # still ends as an interrupted, resumable run.
    with stop.installed():
        try:
            try:
                run.setup(Path(runs_dir), Path(resume) if resume is not None else None)
                run.train(stop)
                return run.finish()
            finally:
                run.close()
        finally:
            teardown_distributed(run.dist)


class Run:
    """One training run's state; fit() walks it through setup -> train -> finish. Callbacks read
    its public fields: cfg, task, model, device, dist, run_dir, step, total, best, history, summary."""

    def __init__(self, cfg: RunConfig, callbacks: list[Callback]):
        self.cfg, self.t = cfg, cfg.train
        self.step = self.epoch = self.bad_evals = self.skipped = self.skipped_in_a_row = 0
        self.recent_norms: collections.deque[float] = collections.deque(maxlen=SPIKE_WINDOW)  # train.skip_spikes
        self.spikes_since_eval = 0
        self.last_eval = -1  # step of the latest evaluation
        self.best: dict[str, Any] | None = None
        self.best_key: tuple[float, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.elapsed_before = 0.0  # wall time of earlier sessions of a resumed run
        self.status, self.stop_message, self.exit_code = "completed", None, 0
        self.resumed = False
        self.precision_note = ""
        self.dist = Dist()
        self.lock: RunLock | None = None
        self.run_dir: Path | None = None
        self._callbacks = callbacks
        self._active: list[Callback] = []
        self.started = time.perf_counter()
        self._reset_train_stats()

    # --- setup ----------------------------------------------------------------------------------
    def setup(self, runs_dir: Path, resume: Path | None) -> None:
        cfg, t = self.cfg, self.t
        seed_everything(cfg.seed)  # the same on every process: identical initial weights
        self.dist, self.device = setup_distributed(cfg.device)
        self.main = self.dist.is_main
        self.autocast, self.scaler, self.precision_note, self.precision = autocast_for(t.precision, self.device)
        self.task, self.model = build(cfg, self.device)
        self.threads = apply_threads(choose_threads(cfg.runtime.threads, step_work(self.model, t.batch_size)))
        if t.precision == "auto" and self.precision == "bf16" and self.device.type == "cpu" and not self.dist.enabled:
            self._measure_precision(resume)
        if self.device.type == "cpu":  # the header line shows precision_note; the thread choice leads it
            self.precision_note = " · ".join(n for n in (self.threads.note, self.precision_note) if n)
        self.notes: list[str] = []
        self.pretrained: list[str] = []  # parameters another run started (model.init_from)
        if resume is None:  # a resumed run has its own weights already, and says which were started
            self.notes, self.pretrained = _start_weights(cfg.model, self.model, getattr(self.task, "vocab", None), config_to_dict(cfg))
        else:
            self.pretrained = _started_params(resume)
            if cfg.model.freeze_embeddings:  # as apply_word_vectors left it, so the optimizer's groups match
                self.model.embedding.weight.requires_grad_(False)
        self.task.shard(self.dist.rank, self.dist.world_size)
        self.net = self.model  # what the training step calls: the DDP wrapper when distributed
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        groups = _trainable(self.model, set(self.pretrained), cfg.model.init_lr_scale)
        self.params = [p for g in groups for p in g["params"]]
        self.spe = self.task.steps_per_epoch()
        lengths = [x for x in (t.steps, t.epochs * self.spe if (t.epochs and self.spe) else None) if x is not None]
        self.total = min(lengths)
        self.eval_every = t.eval_every or (self.spe if self.spe else max(1, min(100, self.total // 10)))
        self.eval_on_steps = t.eval_every is not None or self.spe is None  # else once per epoch
        self.optimizer = _optimizer(groups, t)
        self.scheduler = _scheduler(self.optimizer, t, self.total)
        self.max_norm = t.clip_grad_norm if t.clip_grad_norm is not None else float("inf")
        self.higher = self.task.primary_metric != "loss"
        self.config_dict = config_to_dict(cfg)
        if resume is not None:
            self.run_dir = resume
            if self.main:
                self.lock = RunLock(resume).acquire()
            self._restore(resume)
        elif self.main:
            self.run_dir = create_run_dir(runs_dir, cfg.run_name)
            try:
                self.lock = RunLock(self.run_dir).acquire()
                write_atomic(self.run_dir / "config.yaml", yaml.safe_dump(self.config_dict, sort_keys=False).encode())
            except (UserError, OSError) as e:  # e.g. a full disk: leave no empty run directory behind
                if self.lock is not None:
                    self.lock.release()
                shutil.rmtree(self.run_dir, ignore_errors=True)
                if isinstance(e, OSError):
                    raise write_error(e, f"cannot start a run in {self.run_dir}") from None
                raise
        else:  # other ranks write nothing
            self.run_dir = Path(runs_dir) / "(rank 0's run)"
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.summary: dict[str, Any] = {
            "status": "running",
            "task": cfg.task.name,
            "model": cfg.model.name,
            "params": count_params(self.model),
            "device": str(self.device),
            "precision": self.precision,
            "threads": self.threads.threads,
            "world_size": self.dist.world_size,
            "seed": cfg.seed,
            "run_dir": str(self.run_dir),
            "steps": self.step,
            "epochs": self.epoch,
            "wall_time_s": round(self.elapsed_before, 3),
            "chance": self.task.chance,
            **({"chance_label": self.task.chance_label} if self.task.chance_label != "chance" else {}),
            **({"baseline_loss": self.task.baseline[0], "baseline": self.task.baseline[1]} if self.task.baseline else {}),
            **({"start_weights": self.notes} if self.notes else {}),
        }
        warning = bidirectional_warning(self.task, cfg.model)
        if warning:  # among the run's first lines, and kept with its results: no silent memory score
            self.notes = [*self.notes, warning]
            self.summary["warning"] = warning
        if self.resumed and self.main:  # we hold the lock: no process is writing these any more
            self.notes = [*self.notes, *remove_partial_writes(self.run_dir)]
        try:
            self._write_summary()
        except OSError as e:
            raise write_error(e, f"cannot write {self.run_dir / 'summary.json'}") from None
        self._active = self._callbacks if self.main else []
        for cb in self._active:
            cb.on_setup(self)

    def _measure_precision(self, resume: Path | None) -> None:
        """precision auto on a CPU with native bf16: bf16 only where measured faster for this model
        (calibration.py). A resumed run keeps the precision its first session measured."""
        earlier = None
        if resume is not None:
            try:
                earlier = read_json(resume / "summary.json").get("precision")
            except (OSError, ValueError, AttributeError):
                earlier = None
        if earlier in ("fp32", "bf16"):
            pays, why = earlier == "bf16", "auto: as this run measured at its start"
        else:
            from .calibration import bf16_pays

            pays, why = bf16_pays(self.model, self.task.model_spec(), self.t.batch_size, self.threads.threads)
        if not pays:
            self.autocast, self.precision = nullcontext, "fp32"
        self.precision_note = f"{'bf16 autocast' if pays else 'fp32'} ({why})"

    def _restore(self, run_dir: Path) -> None:
        """Everything an uninterrupted run would have at the checkpoint's step, RNG states included."""
        summary_path = run_dir / "summary.json"
        try:
            status = read_json(summary_path).get("status") if summary_path.is_file() else None
        except (OSError, ValueError, AttributeError):
            status = None
        if status == "completed":
            raise UserError(f"{run_dir} has completed; there is nothing to resume and nothing was changed")
        path = run_dir / "checkpoints" / "last.pt"
        ckpt = load_checkpoint(path)
        if "optimizer" not in ckpt:
            raise UserError(f"{path} holds no training state to resume from")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if self.scheduler is not None and ckpt.get("scheduler") is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise UserError(
                f"{path} does not fit the model {run_dir}/config.yaml describes (was config.yaml edited?): "
                f"{str(e).splitlines()[0][:300]}. Restore config.yaml, or start a new run"
            ) from None
        refuse_edited_config(ckpt.get("config"), self.config_dict, run_dir)
        self.task.load_state_dict(ckpt.get("task_state") or {})
        self.step, self.epoch = ckpt["step"], ckpt["epoch"]
        self.best, self.bad_evals = ckpt.get("val"), ckpt.get("bad_evals", 0)
        if (run_dir / "checkpoints" / "best.pt").is_file():
            self.best_state = load_checkpoint(run_dir / "checkpoints" / "best.pt")["model"]
        self.best_key = tuple(ckpt["best_key"]) if ckpt.get("best_key") is not None else None
        self.elapsed_before = ckpt.get("elapsed_s", 0.0)
        self.skipped = ckpt.get("skipped", 0)
        self.skipped_in_a_row = ckpt.get("skipped_in_a_row", 0)
        self.recent_norms.extend(ckpt.get("recent_norms", []))
        self.spikes_since_eval = ckpt.get("spikes_since_eval", 0)
        # Checkpoints written before these were saved: the best step was the only evaluation known.
        self.last_eval = ckpt.get("last_eval", self.step if self.best is not None and self.best.get("step") == self.step else -1)
        stats = ckpt.get("train_stats")
        if stats is not None:
            self.acc_loss, self.acc_norm, self.acc_n = stats["loss"], stats["norm"], stats["n"]
            self.acc_stats = dict(stats["task"])
        set_rng_state(ckpt["rng"])
        # Rows logged after the checkpoint will be logged again, identically, by the resumed run.
        self.history = [r for r in read_metrics(run_dir) if r.get("step", 0) <= self.step and r.get("split") != "test"]
        self.resumed = True

    def _payload(self, full: bool) -> dict[str, Any]:
        p: dict[str, Any] = {
            "config": self.config_dict,
            "model": self.model.state_dict(),
            "task_state": self.task.state_dict() if full else _without(self.task.state_dict(), "sampler"),
            "step": self.step,
            "epoch": self.epoch,
            "val": self.best,
        }
        if self.pretrained:
            p["started_params"] = self.pretrained
        if full:  # what resuming needs on top
            p.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
                rng=rng_state(),
                best_key=self.best_key,
                bad_evals=self.bad_evals,
                skipped=self.skipped,
                skipped_in_a_row=self.skipped_in_a_row,
                recent_norms=list(self.recent_norms),
                spikes_since_eval=self.spikes_since_eval,
                last_eval=self.last_eval,
                train_stats={"loss": _cpu(self.acc_loss), "norm": _cpu(self.acc_norm), "n": self.acc_n,
                             "task": {k: _cpu(v) for k, v in self.acc_stats.items()}},
                elapsed_s=self._elapsed(),
            )  # fmt: skip
        return p

    def _save_last(self) -> None:
        if self.main:
            save_checkpoint(self.ckpt_dir / "last.pt", self._payload(full=True))
        self.last_saved = time.perf_counter()

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
    def train(self, stop: _StopRequest) -> None:
        self.started = time.perf_counter()
        self.last_saved = self.started
        try:
            if stop:
                raise KeyboardInterrupt
            done = self.step >= self.total
            while not done:
                for batch in self.task.train_batches(self.epoch):
                    if self._train_step(batch, bool(stop)):
                        stop.signum = stop.signum or signal.SIGTERM  # another process was stopped
                    early = False
                    saved = False
                    if self.eval_on_steps and self.step % self.eval_every == 0:
                        early = self._evaluate()
                        self._save_last()
                        saved = True
                    if not saved and self._checkpoint_due():
                        self._save_last()
                    if stop:
                        raise KeyboardInterrupt
                    if early or self.step >= self.total:
                        done = True
                        break
                else:  # the epoch ran out
                    self.epoch += 1
                    if self.spe is not None and self.step != self.last_eval:
                        done = self._evaluate()
                    self._save_last()
                    done = done or (self.t.epochs is not None and self.epoch >= self.t.epochs) or bool(stop)
                    if stop:
                        raise KeyboardInterrupt
            if self.step != self.last_eval:
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
            self.exit_code = 128 + int(stop.signum or signal.SIGINT)
            self.stop_message = (
                f"interrupted at step {self.step:,}; everything is saved. Continue with:\n"
                f"  rnnlab train --resume {self.run_dir}"
            )
        except OSError as e:
            self._fail_on_disk(e)
            return
        except BaseException as e:
            if out_of_memory(e):
                self._fail_on_memory(e)
                return
            self.summary.update(status="failed", steps=self.step, epochs=self.epoch, wall_time_s=round(self._elapsed(), 3))
            self._write_summary()
            raise
        try:
            self._save_last()
        except OSError as e:
            self._fail_on_disk(e)

    def _fail_on_disk(self, e: OSError) -> None:
        """A full disk or a vanished directory: the run fails with exit 1 and says what to do."""
        self.status, self.exit_code = "failed", 1
        resume = f"continue from the last saved checkpoint with: rnnlab train --resume {self.run_dir}"
        if not self.run_dir.is_dir():  # no space to free: the run itself is gone
            self.stop_message = (
                f"training stopped at step {self.step:,}: the run directory {self.run_dir} was deleted or moved while "
                "it trained, so nothing more could be saved. If it was moved, resume it where it is now "
                "(rnnlab train --resume NEW_PLACE); if it was deleted, start the run again with rnnlab train CONFIG"
            )
        elif e.errno == errno.ENOSPC:
            self.stop_message = (
                f"training stopped at step {self.step:,}: could not write to {self.run_dir} (the disk is full). "
                f"Free some space, then {resume}"
            )
        else:
            self.stop_message = (
                f"training stopped at step {self.step:,}: could not write to {self.run_dir} ({e.strerror or e}). "
                f"Fix that, then {resume}"
            )

    def _fail_on_memory(self, e: BaseException) -> None:
        """A batch or a model too big for the device: the run fails (exit 2: a setting to lower)."""
        self.status, self.exit_code = "failed", 2
        t, task = self.t, self.cfg.task
        length = next((f"task.{k} (now {getattr(task, k):,})" for k in ("seq_len", "max_len") if getattr(task, k, None)), None)
        self.stop_message = (
            f"training stopped at step {self.step:,}: out of memory on {self.device} "
            f"({(str(e).splitlines() or [type(e).__name__])[0][:200].strip()}). Start a new run with a lower "
            f"train.batch_size (now {t.batch_size:,}; e.g. train.batch_size={max(1, t.batch_size // 8)})"
            + (f", a shorter {length}" if length else "")
            + ", or a smaller model (model.hidden_size, model.num_layers)"
        )

    def _checkpoint_due(self) -> bool:
        every = self.t.checkpoint_every
        if every and self.step % every == 0:
            return True
        return time.perf_counter() - self.last_saved >= CHECKPOINT_SECONDS

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
        if self._is_spike(norm):
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:  # it was unscaled for this step; update() lets the next one unscale
                self.scaler.update()
            self.skipped += 1
            self.spikes_since_eval += 1
            return stop
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
        for cb in self._active:
            cb.on_step(self)
        return stop

    def _is_spike(self, norm: torch.Tensor) -> bool:
        """train.skip_spikes: is this gradient norm far above the recent ones?"""
        if self.t.skip_spikes is None:
            return False
        value = norm.item()  # gradients are all-reduced: every process sees the same norm and agrees
        if not math.isfinite(value):
            return False  # the non-finite checks own these
        recent = self.recent_norms
        spike = len(recent) == SPIKE_WINDOW and value > self.t.skip_spikes * statistics.median(recent)
        # Skipped norms count too: when the norms rise for good, the median follows them within half a
        # window, so a guard can never hold a run still.
        recent.append(value)
        return spike

    def _nonfinite(self, what: str, value: float) -> None:
        if not self.t.skip_nonfinite:
            raise _Diverged(self.step + 1, what, value)
        self.skipped += 1
        self.skipped_in_a_row += 1
        if self.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:  # skipping cannot help any more
            raise _Diverged(self.step + 1, f"{what} of {self.skipped_in_a_row} batches in a row", value)

    def _log(self, rows: list[dict[str, Any]]) -> None:
        self.history.extend(rows)
        for cb in self._active:
            cb.on_evaluate(self, rows)

    def _evaluate(self) -> bool:
        """Log train/val rows, keep the best checkpoint; True when early stopping says stop."""
        task, lr = self.task, self.optimizer.param_groups[0]["lr"]
        elapsed = round(self._elapsed(), 3)
        common = {"step": self.step, "epoch": self.epoch}
        local = {**self.acc_stats, "_loss": self.acc_loss, "_norm": self.acc_norm, "_n": self.acc_n}
        train = _sum_over_ranks({k: float(v) for k, v in local.items()}, self.dist)
        rows = []
        if train["_n"]:
            n = train.pop("_n")
            loss, norm = train.pop("_loss") / n, train.pop("_norm") / n
            rows.append({**common, "split": "train", **task.summarize(train), "loss": loss, "lr": lr, "grad_norm": norm, "elapsed_s": elapsed})
            if self.t.skip_spikes is not None:  # where the skipped updates fell
                rows[-1]["spikes_skipped"] = self.spikes_since_eval
                self.spikes_since_eval = 0
        self._reset_train_stats()
        val = evaluate(self.model, task, "val", self.device, self.dist, self.autocast())
        rows.append({**common, "split": "val", **val, "lr": lr, "grad_norm": None, "elapsed_s": elapsed})
        self.last_eval = self.step
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
        self._log(rows)
        return self.t.early_stopping is not None and self.bad_evals >= self.t.early_stopping

    # --- test and save --------------------------------------------------------------------------
    def finish(self) -> FitResult:
        wall = self._elapsed()
        s = self.summary
        s.update(status=self.status, steps=self.step, epochs=self.epoch, wall_time_s=round(wall, 3),
                 steps_per_s=round(self.step / wall, 3) if wall > 0 else None, skipped_batches=self.skipped, val=self.best)
        if self.status == "completed" and self.best_state is not None:
            # The test split is scored once, with the weights chosen on validation (best.pt).
            self.model.load_state_dict(self.best_state)
            s["test"] = evaluate(self.model, self.task, "test", self.device, self.dist, self.autocast())
            self._log([{"step": self.best["step"], "epoch": self.epoch, "split": "test", **s["test"], "elapsed_s": round(wall, 3)}])
        try:
            self._write_summary()
        except OSError:
            if self.status != "failed":
                raise
        result = FitResult(self.run_dir, s, self.history)
        if self.status != "failed":
            for cb in self._active:
                cb.on_end(self, result)
        if self.stop_message:
            raise TrainingStopped(self.stop_message, self.exit_code, result)
        return result

    def close(self) -> None:
        for cb in self._active:
            cb.close()
        if self.lock is not None:
            self.lock.release()


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _cpu(v: Any) -> Any:
    return v.detach().cpu() if isinstance(v, torch.Tensor) else v
