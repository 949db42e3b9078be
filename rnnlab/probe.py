"""`rnnlab probe-gradients`: how the gradient dL/dx_t shrinks back through time, model by model.

    rnnlab probe-gradients                       # = --config configs/probe_gradients.yaml
    rnnlab probe-gradients --loss sum --init default --after-steps 300

For every model and every trial (a seed: fresh weights and a fresh input) the probe computes
the norm of dL/dx_t at each step t with autograd, where x is the recurrent network's input
features and L the loss chosen in the `gradient_probe` task (rnnlab/tasks/gradient_probe.py).
With `after_steps > 0` each model is first trained through `fit` on long_dependency (a normal
run directory under `training/`), and that one trained network is probed on `trials` inputs.

    runs/<time>-probe_gradients/
        config.yaml  gradients.csv  summary.json  plots/gradient_norms.png  [training/<runs>]
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch import nn

from .compare import model_raw_config
from .config import RunConfig, apply_overrides, config_to_dict, read_yaml, resolve_config
from .engine import build, count_params, fit, load_run_model
from .errors import UserError
from .plots import line_plot
from .rundir import create_run_dir, write_atomic, write_json
from .runtime import seed_everything
from .tasks.base import Batch
from .tasks.gradient_probe import GradientProbeConfig, GradientProbeTask

__all__ = ["PROBE_CONFIG", "ProbeResult", "probe_config", "probed_model_configs", "step_grad_norms", "probe_gradients"]

# The same settings as configs/probe_gradients.yaml, so that the flags alone work from any directory.
PROBE_CONFIG: dict[str, Any] = {
    "name": "probe_gradients",
    "seed": 0,
    "task": {"name": "gradient_probe", "models": ["rnn", "lstm", "gru"], "seq_len": 50, "input_size": 10,
             "loss": "task", "trials": 20, "after_steps": 0, "init": "shipped"},
    "model": {"name": "rnn", "hidden_size": 20},
    "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "clip_grad_norm": 5.0, "steps": 1},
}  # fmt: skip

_LOSS_TEXT = {"task": "recall cross-entropy at t = T−1", "sum": "sum of all outputs (the chapter's)", "last": "sum of the outputs at t = T−1"}

# Keys of a model section that set the gate biases; `init: shipped` takes them from each model's
# shipped long-dependency config.
_GATE_KEYS = ("init", "forget_bias", "chrono_max")


@dataclass
class ProbeResult:
    run_dir: Path
    summary: dict[str, Any]
    norms: dict[str, torch.Tensor]  # model -> (trials, T)


def probe_config(config: Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """The probe's config: the file (or the built-in default), then the overrides; validated."""
    raw = read_yaml(config) if config is not None else apply_overrides(PROBE_CONFIG, [])
    cfg = resolve_config(apply_overrides(raw, list(overrides or [])), source=str(config) if config else "for probe-gradients")
    if not isinstance(cfg.task, GradientProbeConfig):
        raise UserError(
            f"{config}: task '{cfg.task.name}' is not a gradient probe; probe-gradients needs task: {{name: gradient_probe}}, "
            "e.g. configs/probe_gradients.yaml (train it with `rnnlab train` instead)"
        )
    return cfg


def probed_model_configs(cfg: RunConfig) -> dict[str, RunConfig]:
    """One RunConfig per probed model: the probe's task with that model.

    The keys set in the probe config's model section apply to every model (its `name` is
    replaced); the others keep each model's own defaults (e.g. `bilstm` stays bidirectional).
    With `task.init: shipped` the gate keys (init, forget_bias, chrono_max) come from the model's
    shipped configs/long_dependency_<model>.yaml, unless the probe config sets them itself;
    any other `task.init` sets model.init for every model.
    """
    probe: GradientProbeConfig = cfg.task  # type: ignore[assignment]
    base = cfg.model.model_dump(mode="json")
    explicit = set(cfg.model.model_fields_set) - {"name"}
    out = {}
    for name in probe.models:
        shipped_raw, _ = model_raw_config(name)
        shipped = shipped_raw.get("model") or {}
        section = {k: base[k] for k in explicit}
        for k in _GATE_KEYS:
            if k in shipped and k not in explicit:
                section[k] = shipped[k]
        if probe.init != "shipped":
            section["init"] = probe.init
        raw = config_to_dict(cfg)
        raw["model"] = {**section, "name": name}
        out[name] = resolve_config(raw, source=f"probe-gradients, model {name}")
    return out


def step_grad_norms(model: nn.Module, task: GradientProbeTask, batch: Batch) -> torch.Tensor:
    """(T,) the norm of dL/dx_t over the input features of each step t (batch of one), in float64.

    x is what enters the recurrent layers: the model's own `embed` of token ids (one-hot or an
    embedding), or the real-valued features themselves.
    """
    was_training = model.training
    model.eval()  # no dropout: the same network at every step of the probe
    with torch.no_grad():
        feats = model.embed(batch.inputs)
    feats = feats.to(torch.float64).clone().requires_grad_(True)  # (1, T, F)
    loss = task.probe_loss(model, feats, batch)
    (grad,) = torch.autograd.grad(loss, feats)
    model.train(was_training)
    return grad[0].norm(dim=-1).detach()


def _quantiles(norms: torch.Tensor) -> torch.Tensor:
    """(3, T): median, 10% and 90% over trials."""
    return torch.quantile(norms, torch.tensor([0.5, 0.1, 0.9], dtype=norms.dtype), dim=0)


def _init_label(cfg: RunConfig) -> str:
    m = cfg.model
    init = getattr(m, "init", "default")
    if cfg.model.name == "rnn":
        return "no gates"
    if init == "forget_bias":
        return f"gate bias {getattr(m, 'forget_bias', 1.0):g}"
    return init


def _sci(x: float) -> str:
    return f"{x:.2e}"


def probe_gradients(cfg: RunConfig, *, runs_dir: str | Path = "runs", console: Console | None = None, progress: bool = True) -> ProbeResult:
    """Probe every model of `cfg.task` and write gradients.csv, plots/gradient_norms.png, summary.json."""
    console = console or Console()
    probe: GradientProbeConfig = cfg.task  # type: ignore[assignment]
    per_model = probed_model_configs(cfg)  # validates everything before the run directory exists
    cpu = torch.device("cpu")  # tiny networks, batch of one, float64: the CPU is exact and fast
    run_dir = create_run_dir(runs_dir, cfg.run_name)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False).encode())
    T = probe.seq_len
    when = "at initialisation" if probe.after_steps == 0 else f"after {probe.after_steps:,} training steps"
    console.print(
        f"[bold]{cfg.run_name}[/] · ‖∂L/∂x_t‖ for t = 0..{T - 1} · loss [cyan]{probe.loss}[/] · "
        f"{', '.join(probe.models)} · hidden {getattr(cfg.model, 'hidden_size', '?')} · input {probe.input_size} · "
        f"{probe.trials} trials · {when} · [bold]{run_dir}[/]"
    )
    started = time.perf_counter()
    norms: dict[str, torch.Tensor] = {}
    info: dict[str, dict[str, Any]] = {}
    for name, mcfg in per_model.items():
        entry: dict[str, Any] = {"init": getattr(mcfg.model, "init", None), "label": _init_label(mcfg)}
        trained = None
        if probe.after_steps > 0:
            trained = _train(cfg, mcfg, run_dir / "training", console, progress)
            entry.update(trained_run=str(trained[0]), trained_val_accuracy=trained[1])
        rows = []
        task = None
        with Progress(TextColumn("[bold blue]probe " + name), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                      TimeElapsedColumn(), console=console, disable=not (progress and console.is_terminal), transient=True) as bar:
            bar_id = bar.add_task(name, total=probe.trials)
            for trial in range(probe.trials):
                if trained is not None:
                    model = trained[2]
                    task = task or GradientProbeTask(probe, mcfg)
                else:
                    # Trial k: weights from seed + k, through the same builders as training.
                    seed_everything(cfg.seed + trial)
                    task, model = build(mcfg, cpu)
                model = model.to(torch.float64)
                rows.append(step_grad_norms(model, task, task.probe_batch(trial, features=model.input_size)))
                bar.update(bar_id, completed=trial + 1)
        norms[name] = torch.stack(rows)  # (trials, T)
        entry["params"] = count_params(model)
        info[name] = entry
    wall = time.perf_counter() - started

    quant = {name: _quantiles(n) for name, n in norms.items()}
    _write_csv(run_dir / "gradients.csv", quant, probe.trials)
    mid = T // 2
    for name, q in quant.items():
        med = q[0]
        first, last = float(med[0]), float(med[T - 1])
        info[name].update(
            norm_t0=first, norm_mid=float(med[mid]), norm_last=last, t_mid=mid,
            ratio_first_last=first / last if last > 0 else None,
        )  # fmt: skip
    plot = line_plot(
        run_dir / "plots" / "gradient_norms.png",
        {f"{name} ({info[name]['label']})": (list(range(T)), q[0].tolist(), q[1].tolist(), q[2].tolist()) for name, q in quant.items()},
        title=f"‖∂L/∂x_t‖, L = {_LOSS_TEXT[probe.loss]}, {when}\n"
        f"median and 10–90% over {probe.trials} trials · seq_len {T} · input {probe.input_size} · hidden {getattr(cfg.model, 'hidden_size', '?')}",
        xlabel="time step t (the loss is at the end, t = T−1)" if probe.loss != "sum" else "time step t",
        ylabel="gradient norm (log scale)",
        logy=True,
    )
    summary = {
        "status": "completed",
        "task": "gradient_probe",
        "loss": probe.loss,
        "seq_len": T,
        "input_size": probe.input_size,
        "hidden_size": getattr(cfg.model, "hidden_size", None),
        "trials": probe.trials,
        "after_steps": probe.after_steps,
        "seed": cfg.seed,
        "run_dir": str(run_dir),
        "wall_time_s": round(wall, 3),
        "models": info,
        "plot": str(plot),
    }
    write_json(run_dir / "summary.json", summary)
    _print_table(console, probe, info, when)
    console.print(f"probed in {wall:.1f}s · run: [bold]{run_dir}[/] (gradients.csv, plots/gradient_norms.png)")
    return ProbeResult(run_dir, summary, norms)


def _train(cfg: RunConfig, mcfg: RunConfig, parent: Path, console: Console, progress: bool) -> tuple[Path, float | None, nn.Module]:
    """Train one model `after_steps` steps on long_dependency through `fit`; return the last weights."""
    probe: GradientProbeConfig = cfg.task  # type: ignore[assignment]
    n = probe.after_steps
    raw = config_to_dict(mcfg)
    raw["name"] = f"{mcfg.model.name}-trained"
    # num_classes = input_size: the trained network is the probe task's network (model_spec).
    raw["task"] = {"name": "long_dependency", "seq_len": probe.seq_len, "num_classes": probe.input_size}
    raw["train"] = {**raw["train"], "steps": n, "epochs": None, "early_stopping": None, "eval_every": max(1, min(50, n))}
    train_cfg = resolve_config(raw, source=f"probe-gradients training of {mcfg.model.name}")
    result = fit(train_cfg, runs_dir=parent, console=console, progress=progress, final_table=False,
                 label=f"{mcfg.model.name}: {n:,} training steps on long_dependency (seq_len {probe.seq_len})")
    # "After N steps" means the weights at step N, not the best checkpoint on validation.
    _, _, model, _ = load_run_model(result.run_dir, torch.device("cpu"), which="last")
    val = [r for r in result.history if r.get("split") == "val"]
    return result.run_dir, (val[-1].get("accuracy") if val else None), model


def _write_csv(path: Path, quant: dict[str, torch.Tensor], trials: int) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "t", "grad_norm_median", "grad_norm_p10", "grad_norm_p90", "trials"])
    for name, q in quant.items():
        for t in range(q.size(1)):
            writer.writerow([name, t, f"{q[0, t].item():.6e}", f"{q[1, t].item():.6e}", f"{q[2, t].item():.6e}", trials])
    write_atomic(path, buffer.getvalue().encode())


def _print_table(console: Console, probe: GradientProbeConfig, info: dict[str, dict[str, Any]], when: str) -> None:
    T = probe.seq_len
    table = Table(title=f"‖∂L/∂x_t‖ (median of {probe.trials} trials), loss '{probe.loss}', {when}", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
    for head in ("model", "init", "params", "t = 0", f"t = {T // 2}", f"t = {T - 1}", f"ratio t=0 / t={T - 1}"):
        table.add_column(head, justify="left" if head in ("model", "init") else "right")
    for name, e in info.items():
        ratio = e["ratio_first_last"]
        table.add_row(name, e["label"], f"{e['params']:,}", _sci(e["norm_t0"]), _sci(e["norm_mid"]), _sci(e["norm_last"]),
                      "—" if ratio is None else _sci(ratio))
    console.print(table)
    if any(e.get("trained_val_accuracy") is not None for e in info.values()):
        accs = ", ".join(f"{n} {100 * e['trained_val_accuracy']:.1f}%" for n, e in info.items() if e.get("trained_val_accuracy") is not None)
        console.print(f"[dim]validation accuracy after training: {accs}[/]")
