"""`rnnlab probe-gradients`: how the gradient dL/dx_t shrinks back through time, model by model.

    rnnlab probe-gradients                       # = --config configs/probe_gradients.yaml
    rnnlab probe-gradients --loss sum --init default --after-steps 300

For every model and every trial (a seed: fresh weights and a fresh input) the probe computes
the norm of dL/dx_t at each step t with autograd, where x is the recurrent network's input
features and L the loss chosen in the config's `probe:` section (config.ProbeSettings).
With `after_steps > 0` each model is first trained through `fit` on long_dependency (a normal
run directory under `training/`), and that one trained network is probed on `trials` inputs.

    runs/<time>-probe_gradients/
        config.yaml  gradients.csv  summary.json  plots/gradient_norms.png  [training/<runs>]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from ..config import (
    ModelConfig,
    ProbeConfig,
    ProbeSettings,
    apply_overrides,
    config_to_dict,
    find_config,
    read_yaml,
    resolve_config,
    resolve_probe_config,
    shipped_config_for,
    shipped_configs,
)
from ..contract import Batch, ModelSpec
from ..engine import build_model, count_params, fit, load_run_model
from ..plots import line_plot
from ..registry import TASKS
from ..report import print_table, write_csv
from ..rundir import create_run_dir, write_atomic, write_json
from ..runtime import seed_everything
from ..threads import ThreadChoice, apply_threads, choose_threads, step_work

__all__ = ["ProbeResult", "probe_config", "probed_models", "probe_spec", "probe_batch", "probe_loss", "step_grad_norms", "probe_gradients"]

SHIPPED = "probe_gradients"  # configs/probe_gradients.yaml: the settings when no --config is given

_LOSS_TEXT = {"task": "recall cross-entropy at t = T−1", "sum": "sum of all outputs (the chapter's)", "last": "sum of the outputs at t = T−1"}

# Keys of a model section that set the gate biases; `init: shipped` takes them from each model's
# shipped long-dependency config.
_GATE_KEYS = ("init", "forget_bias", "chrono_max")


@dataclass
class ProbeResult:
    run_dir: Path
    summary: dict[str, Any]
    norms: dict[str, torch.Tensor]  # model -> (trials, T)


def probe_config(config: Path | None = None, overrides: list[str] | None = None, flags: dict[str, Any] | None = None) -> ProbeConfig:
    """The probe's config: the file (default: the shipped probe_gradients.yaml), then the flags
    (typed values, keyed by dotted name), then the `key=value` overrides; validated once, every
    problem reported together."""
    path = find_config(config) if config is not None else shipped_configs()[SHIPPED]
    raw = read_yaml(path)
    for key, value in (flags or {}).items():
        section, _, leaf = key.rpartition(".")
        node = raw.setdefault(section, {}) if section else raw
        if isinstance(node, dict):
            node[leaf] = value
    raw = apply_overrides(raw, list(overrides or []))
    return resolve_probe_config(raw, source=str(config) if config is not None else f"configs/{SHIPPED}.yaml")


def probed_models(cfg: ProbeConfig) -> dict[str, ModelConfig]:
    """One model section per probed model.

    The keys set in the probe config's model section apply to every model (its `name` is
    replaced); the others keep each model's own defaults (e.g. `bilstm` stays bidirectional).
    With `probe.init: shipped` the gate keys (init, forget_bias, chrono_max) come from the
    model's shipped long-dependency config, unless the probe config sets them itself; any other
    `probe.init` sets model.init for every model.
    """
    base = cfg.model.model_dump(mode="json")
    explicit = set(cfg.model.model_fields_set) - {"name"}
    out = {}
    for name in cfg.probe.models:
        section = {k: base[k] for k in explicit}
        if cfg.probe.init == "shipped":
            shipped, _ = shipped_config_for("long_dependency", name)
            for k in _GATE_KEYS:
                if k in shipped.model.model_fields_set and k not in explicit:
                    section[k] = getattr(shipped.model, k)
        else:
            section["init"] = cfg.probe.init
        raw = {"task": {"name": "long_dependency"}, "model": {**section, "name": name}, "train": {"steps": 1}}
        out[name] = resolve_config(raw, source=f"probe-gradients, model {name}").model
    return out


def _recall_task(p: ProbeSettings) -> Any:
    """The long-dependency task whose network the probe's `task` loss differentiates."""
    entry = TASKS.get("long_dependency")
    return entry.builder(entry.config(seq_len=p.seq_len, num_classes=p.input_size))


def probe_spec(p: ProbeSettings) -> ModelSpec:
    if p.loss == "task":
        # Exactly a long_dependency network with num_classes = input_size, so that a network
        # trained there (`after_steps`) and one fresh from initialisation are the same thing.
        return _recall_task(p).model_spec()
    # The chapter's probe: real-valued features of `input_size` (nn.RNN(input_size, hidden)).
    return ModelSpec(num_outputs=p.input_size, input_size=p.input_size, max_len=p.seq_len)


def probe_batch(p: ProbeSettings, seed: int, trial: int, features: int | None = None) -> Batch:
    """One trial's input, drawn from its own seeded stream: the same for every model.

    `task`: the recall sequence as token ids (1, T), encoded as long_dependency does; the
    model's own `embed` turns them into its input features. `sum`/`last`: standard normal
    features (1, T, features), `features` defaulting to input_size.
    """
    g = torch.Generator().manual_seed(seed * 100_003 + trial)
    target = torch.randint(p.input_size, (1,), generator=g)
    if p.loss == "task":
        from ..tasks.long_dependency import recall_batch

        return recall_batch(target, p.seq_len)
    return Batch(torch.randn(1, p.seq_len, features or p.input_size, generator=g), target)


def probe_loss(p: ProbeSettings, model: nn.Module, feats: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The scalar whose gradient with respect to `feats` (B, T, F) is probed.

    task: the cross-entropy of the answer at the last step; sum: the chapter's literal probe,
    the sum of the recurrent outputs at every step (dL/dx_t then includes the direct term
    d(out_t)/dx_t, so it hardly shrinks); last: the sum of the outputs at the last step only.
    """
    if p.loss == "task":
        return F.cross_entropy(model.forward_features(feats), batch.targets)
    out = model.encode(feats)  # (B, T, dirs * H): the last layer's outputs at every step
    if p.loss == "sum":
        return out.sum()
    return model.final_states(out, None).sum()


def step_grad_norms(model: nn.Module, p: ProbeSettings, batch: Batch) -> torch.Tensor:
    """(T,) the norm of dL/dx_t over the input features of each step t (batch of one), in float64.

    x is what enters the recurrent layers: the model's own `embed` of token ids (one-hot or an
    embedding), or the real-valued features themselves.
    """
    was_training = model.training
    model.eval()  # no dropout: the same network at every step of the probe
    with torch.no_grad():
        feats = model.embed(batch.inputs)
    feats = feats.to(torch.float64).clone().requires_grad_(True)  # (1, T, F)
    loss = probe_loss(p, model, feats, batch)
    (grad,) = torch.autograd.grad(loss, feats)
    model.train(was_training)
    return grad[0].norm(dim=-1).detach()


def _quantiles(norms: torch.Tensor) -> torch.Tensor:
    """(3, T): median, 10% and 90% over trials."""
    return torch.quantile(norms, torch.tensor([0.5, 0.1, 0.9], dtype=norms.dtype), dim=0)


def _init_label(m: ModelConfig) -> str:
    init = getattr(m, "init", "default")
    if m.name == "rnn":
        return "no gates"
    if init == "forget_bias":
        return f"gate bias {getattr(m, 'forget_bias', 1.0):g}"
    return init


def _sci(x: float) -> str:
    return f"{x:.2e}"


def probe_gradients(cfg: ProbeConfig, *, runs_dir: str | Path = "runs", console: Console | None = None, progress: bool = True) -> ProbeResult:
    """Probe every model of `cfg.probe` and write gradients.csv, plots/gradient_norms.png, summary.json."""
    console = console or Console()
    p = cfg.probe
    per_model = probed_models(cfg)  # validates everything before the run directory exists
    spec = probe_spec(p)
    cpu = torch.device("cpu")  # tiny networks, batch of one, float64: the CPU is exact and fast
    run_dir = create_run_dir(runs_dir, cfg.run_name)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False).encode())
    T = p.seq_len
    hidden = getattr(cfg.model, "hidden_size", "?")
    when = "at initialisation" if p.after_steps == 0 else f"after {p.after_steps:,} training steps"
    console.print(
        f"[bold]{cfg.run_name}[/] · ‖∂L/∂x_t‖ for t = 0..{T - 1} · loss [cyan]{p.loss}[/] · "
        f"{', '.join(p.models)} · hidden {hidden} · input {p.input_size} · {p.trials} trials · {when} · [bold]{run_dir}[/]"
    )
    started = time.perf_counter()
    norms: dict[str, torch.Tensor] = {}
    info: dict[str, dict[str, Any]] = {}
    threads: ThreadChoice | None = None
    for name, mcfg in per_model.items():
        entry: dict[str, Any] = {"init": getattr(mcfg, "init", None), "label": _init_label(mcfg)}
        trained = None
        if p.after_steps > 0:
            trained = _train(cfg, mcfg, run_dir / "training", console, progress)
            entry.update(trained_run=str(trained[0]), trained_val_accuracy=trained[1])
        rows = []
        with Progress(TextColumn("[bold blue]probe " + name), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                      TimeElapsedColumn(), console=console, disable=not (progress and console.is_terminal), transient=True) as bar:
            bar_id = bar.add_task(name, total=p.trials)
            for trial in range(p.trials):
                if trained is not None:
                    model = trained[2]
                else:
                    # Trial k: weights from seed + k, through the same builders as training.
                    seed_everything(cfg.seed + trial)
                    model = build_model(mcfg, spec, cpu)
                model = model.to(torch.float64)
                if threads is None:  # a batch of one: auto takes one thread; --threads or runtime.threads may say otherwise
                    threads = apply_threads(choose_threads(cfg.runtime.threads, step_work(model, 1)))
                rows.append(step_grad_norms(model, p, probe_batch(p, cfg.seed, trial, features=model.input_size)))
                bar.update(bar_id, completed=trial + 1)
        norms[name] = torch.stack(rows)  # (trials, T)
        entry["params"] = count_params(model)
        info[name] = entry
    wall = time.perf_counter() - started

    quant = {name: _quantiles(n) for name, n in norms.items()}
    write_csv(
        run_dir / "gradients.csv",
        [{"model": name, "t": t, "grad_norm_median": f"{q[0, t].item():.6e}", "grad_norm_p10": f"{q[1, t].item():.6e}",
          "grad_norm_p90": f"{q[2, t].item():.6e}", "trials": p.trials} for name, q in quant.items() for t in range(q.size(1))],
        ["model", "t", "grad_norm_median", "grad_norm_p10", "grad_norm_p90", "trials"],
    )  # fmt: skip
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
        title=f"‖∂L/∂x_t‖, L = {_LOSS_TEXT[p.loss]}, {when}\n"
        f"median and 10–90% over {p.trials} trials · seq_len {T} · input {p.input_size} · hidden {hidden}",
        xlabel="time step t (the loss is at the end, t = T−1)" if p.loss != "sum" else "time step t",
        ylabel="gradient norm (log scale)",
        logy=True,
    )
    summary = {
        "status": "completed",
        "task": "gradient_probe",
        "loss": p.loss,
        "seq_len": T,
        "input_size": p.input_size,
        "hidden_size": getattr(cfg.model, "hidden_size", None),
        "trials": p.trials,
        "after_steps": p.after_steps,
        "seed": cfg.seed,
        "run_dir": str(run_dir),
        "wall_time_s": round(wall, 3),
        "models": info,
        "plot": str(plot),
    }
    write_json(run_dir / "summary.json", summary)
    print_table(
        console,
        f"‖∂L/∂x_t‖ (median of {p.trials} trials), loss '{p.loss}', {when}",
        ["model", "init", "params", "t = 0", f"t = {T // 2}", f"t = {T - 1}", f"ratio t=0 / t={T - 1}"],
        [[name, e["label"], f"{e['params']:,}", _sci(e["norm_t0"]), _sci(e["norm_mid"]), _sci(e["norm_last"]),
          "—" if e["ratio_first_last"] is None else _sci(e["ratio_first_last"])] for name, e in info.items()],
        left=2,
    )  # fmt: skip
    if any(e.get("trained_val_accuracy") is not None for e in info.values()):
        accs = ", ".join(f"{n} {100 * e['trained_val_accuracy']:.1f}%" for n, e in info.items() if e.get("trained_val_accuracy") is not None)
        console.print(f"[dim]validation accuracy after training: {accs}[/]")
    console.print(f"probed in {wall:.1f}s{f' · {threads.note}' if threads else ''} · run: [bold]{run_dir}[/] (gradients.csv, plots/gradient_norms.png)")
    return ProbeResult(run_dir, summary, norms)


def _train(cfg: ProbeConfig, mcfg: ModelConfig, parent: Path, console: Console, progress: bool) -> tuple[Path, float | None, nn.Module]:
    """Train one model `after_steps` steps on long_dependency through `fit`; return the last weights."""
    p = cfg.probe
    n = p.after_steps
    train = {**cfg.train.model_dump(mode="json"), "steps": n, "epochs": None, "early_stopping": None, "eval_every": max(1, min(50, n))}
    # num_classes = input_size: the trained network is the probe's network (probe_spec).
    raw = {"name": f"{mcfg.name}-trained", "seed": cfg.seed, "task": _recall_task(p).cfg.model_dump(mode="json"),
           "model": mcfg.model_dump(mode="json"), "train": train, "runtime": cfg.runtime.model_dump(mode="json")}  # fmt: skip
    train_cfg = resolve_config(raw, source=f"probe-gradients training of {mcfg.name}")
    result = fit(train_cfg, runs_dir=parent, console=console, progress=progress, final_table=False,
                 label=f"{mcfg.name}: {n:,} training steps on long_dependency (seq_len {p.seq_len})")
    # "After N steps" means the weights at step N, not the best checkpoint on validation.
    _, _, model, _ = load_run_model(result.run_dir, torch.device("cpu"), which="last")
    val = [r for r in result.history if r.get("split") == "val"]
    return result.run_dir, (val[-1].get("accuracy") if val else None), model
