"""YAML config -> dotted `key=value` overrides -> one typed, validated `RunConfig`.

    rnnlab config configs/long_dependency_lstm.yaml task.seq_len=100 train.lr=3e-3
    rnnlab train long_dependency_lstm          # a shipped config by name, from any directory

Each task and model registers its own pydantic config class (see registry.py); this module
validates the `task` and `model` sections against the class their `name` selects, and reports
every problem of every section at once, each with its dotted key, the bad value and what is
allowed.

The shipped YAML files in the top-level `configs/` are the only source of shipped settings. They
travel inside the package (pyproject.toml maps `configs/` to `rnnlab.configs`), so an installed
rnnlab finds them too. Configs derived from others (compare's grid, the probe's models) are made
from validated configs with `derive_config`, never by printing values back into text.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from .errors import ConfigError, UserError
from .registry import MODELS, TASKS, Registry, suggest

__all__ = [
    "Section",
    "TaskConfig",
    "ModelConfig",
    "TrainConfig",
    "RunConfig",
    "ProbeSettings",
    "ProbeConfig",
    "load_config",
    "load_probe_config",
    "resolve_config",
    "resolve_probe_config",
    "derive_config",
    "apply_overrides",
    "read_yaml",
    "config_to_dict",
    "shipped_configs",
    "find_config",
    "shipped_config_for",
    "REFERENCE_MODEL",
]

# Generous bounds: large enough for any real experiment, small enough that a typo such as
# `hidden_size=1e9` is refused instead of exhausting memory.
MAX_SIZE = 1_000_000


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class TaskConfig(Section):
    name: str
    # Tasks that generate fresh batches forever have no epochs: they need `train.steps`.
    streaming: ClassVar[bool] = False


class ModelConfig(Section):
    name: str
    init_from: str | None = Field(None, description="a run directory: start from its embedding and layers (matched by word, name and shape)")
    init_backward_from: str | None = Field(None, description="a run of a backward language model (task.reverse): its layers into the backward direction")
    pretrained_embeddings: str | None = Field(None, description="word vectors, GloVe/word2vec text or a folder with vectors.npy + vocab.txt")
    freeze_embeddings: bool = Field(False, description="with pretrained_embeddings: keep the vectors fixed")
    init_lr_scale: float = Field(
        1.0, ge=0, le=1, description="with init_from: the learning rate of the layers it started, as a share of train.lr (0 = frozen)"
    )


class TrainConfig(Section):
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0, le=10, description="learning rate")
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1, description="sgd only")
    batch_size: int = Field(32, ge=1, le=MAX_SIZE)
    epochs: int | None = Field(None, ge=1, le=MAX_SIZE, description="passes over the training set")
    steps: int | None = Field(None, ge=1, le=10**9, description="optimizer steps; stops first if epochs also set")
    clip_grad_norm: float | None = Field(5.0, gt=0, description="max global gradient norm; null = no clipping")
    scheduler: Literal["none", "plateau", "cosine"] = "none"
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = Field(2, ge=0, description="evaluations without val-loss improvement")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations; null = each epoch")
    early_stopping: int | None = Field(None, ge=1, description="stop after this many evaluations without improvement")
    checkpoint_every: int | None = Field(None, ge=1, description="steps between checkpoints/last.pt")
    skip_nonfinite: bool = Field(False, description="skip batches with a non-finite loss instead of stopping")
    skip_spikes: float | None = Field(
        None, gt=1, description="skip the update of a batch whose gradient norm exceeds this many times the median of the last 100 (e.g. 100)"
    )
    tensorboard: bool = Field(False, description="also write the metrics to RUN/tensorboard/ (pip install 'rnnlab[tensorboard]')")
    precision: Literal["fp32", "bf16", "fp16", "auto"] = Field(
        "fp32", description="bf16: autocast on CUDA or a CPU with native bf16; fp16: CUDA, with a gradient scaler; auto: bf16 where native, else fp32"
    )


class RunConfig(Section):
    name: str | None = Field(None, description="run name; default <task>_<model>")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N | mps")
    task: SerializeAsAny[TaskConfig]
    model: SerializeAsAny[ModelConfig]
    train: TrainConfig = TrainConfig()

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda|cuda:\d+|mps", v):
            raise ValueError("must be one of auto, cpu, cuda, cuda:N, mps")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}", v):
            raise ValueError("use letters, digits, '_', '-', '.' (at most 81 characters)")
        return v

    @model_validator(mode="after")
    def _length(self) -> "RunConfig":
        if self.train.steps is None and (self.task.streaming or self.train.epochs is None):
            what = "train.steps" if self.task.streaming else "train.epochs or train.steps"
            why = f"task '{self.task.name}' generates data without end" if self.task.streaming else "training needs a length"
            raise ValueError(f"{what} is not set: {why}; e.g. add {what.split(' ')[0]}=1000")
        return self

    @property
    def run_name(self) -> str:
        return self.name or f"{self.task.name}_{self.model.name}"


class ProbeSettings(Section):
    """The `probe:` section of `rnnlab probe-gradients`; configs/probe_gradients.yaml sets every key."""

    models: list[str] = Field(min_length=1, description="registered models to probe")
    seq_len: int = Field(ge=2, le=100_000, description="steps T; norms are reported for t = 0..T-1")
    input_size: int = Field(ge=2, le=65_536, description="input features (= symbols of the recall task)")
    loss: Literal["task", "sum", "last"] = Field(description="task: recall cross-entropy; sum: the chapter's sum of outputs; last: sum of the last outputs")
    trials: int = Field(ge=1, le=100_000, description="seeds (fresh weights and inputs); median and 10-90% spread")
    after_steps: int = Field(ge=0, le=10**7, description="0 = probe at initialisation; N = after N training steps on long_dependency")
    init: Literal["shipped", "default", "forget_bias", "chrono"] = Field(
        description="gate init of every probed model; shipped = its configs/long_dependency_<model>.yaml"
    )

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        unknown = [m for m in v if m not in MODELS]
        if unknown:
            raise ValueError("; ".join(MODELS.unknown_message(m) for m in unknown))
        if len(set(v)) != len(v):
            raise ValueError("each model once")
        # The probe differentiates through time steps: only models with a hidden state qualify.
        stateless = [m for m in v if "hidden_size" not in MODELS.get(m).config.model_fields]
        if stateless:
            raise ValueError(f"{', '.join(stateless)} has no recurrent state to probe; probe rnn, lstm, gru, bilstm or bigru")
        return v


class ProbeConfig(Section):
    """A gradient probe: its settings, the model section every probed model shares (its `name`
    is replaced by each of probe.models) and how they train when probe.after_steps > 0."""

    name: str = Field("probe_gradients", description="run name")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    probe: ProbeSettings
    model: SerializeAsAny[ModelConfig]
    train: TrainConfig = TrainConfig()

    @property
    def run_name(self) -> str:
        return self.name


_TOP_KEYS = ("name", "seed", "device", "task", "model", "train")
_PROBE_KEYS = ("name", "seed", "probe", "model", "train")


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{path} is a directory; give a YAML file, e.g. {p / 'experiment.yaml'} or configs/long_dependency_lstm.yaml")
    if not p.is_file():
        names = sorted(shipped_configs())
        close = suggest(p.name, [f"{n}.yaml" for n in names]) if p.suffix else suggest(p.name, names)
        hint = f"{close}; shipped configs (give one by name): {', '.join(names)}"
        raise UserError(f"config file not found: {path}{hint}")
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_NoAliasLoader)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None
    except (yaml.YAMLError, ValueError) as e:  # PyYAML's constructors raise ValueError too (dates, 0x_)
        raise UserError(f"{path}: not valid YAML: {e}") from None
    except RecursionError:
        raise UserError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config must be a mapping of sections (task:, model:, train:), got {type(data).__name__}")
    return data


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases, which can make a tiny file expand to gigabytes."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not allowed in rnnlab configs {event.start_mark}")
        return super().compose_node(parent, index)


# YAML 1.1 reads `3e-3` and `1e9` as strings (it wants a dot); people mean numbers.
_NoAliasLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)[eE][-+]?\d+$"), list("-+0123456789.")
)

_SECTIONS = ("task", "model", "train", "probe")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`train.lr=3e-3` sets raw['train']['lr'] = 0.003 (values are YAML scalars)."""
    out = _deepcopy(raw)
    problems = []
    for text in overrides:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            problems.append(f"override '{text}': expected key=value with a dotted key, e.g. train.lr=3e-3")
            continue
        try:
            parsed = yaml.load(value, Loader=_NoAliasLoader) if value.strip() else None
        except (yaml.YAMLError, ValueError, RecursionError):
            parsed = value  # a bare string such as `name=my:run` is what the user meant
        if key in _SECTIONS and not isinstance(parsed, dict):
            problems.append(
                f"override '{text}': {key} is a section; {key}={value} would replace all of it. "
                f"Set one key instead, e.g. {key}.name={value}"
            )
            continue
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(f"override '{text}': {'.'.join(parts[: i + 1])} is {child!r}, not a section")
                break
            node = child
        else:
            node[parts[-1]] = parsed
    if problems:
        raise ConfigError(problems)
    return out


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def _problems(err: ValidationError, prefix: str, cls: type[BaseModel], raw: Any) -> list[str]:
    out = []
    for e in err.errors():
        loc = [prefix, *(str(x) for x in e["loc"])] if prefix else [str(x) for x in e["loc"]]
        where = ".".join(x for x in loc if x)
        if e["type"] == "extra_forbidden":
            allowed = list(cls.model_fields)
            out.append(f"{where}: unknown key{suggest(str(e['loc'][-1]), allowed)}; allowed: {', '.join(allowed)}")
        elif e["type"] == "missing":
            out.append(f"{where}: required but missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            value = e.get("input")
            if not where:  # a check of the whole config: its message names the keys itself
                out.append(msg)
                continue
            shown = f" = {value!r}" if e["loc"] and not isinstance(value, dict) else ""
            out.append(f"{where}{shown}: {msg}")
    return out


def _section(raw: dict, key: str, registry: Registry, problems: list[str]) -> BaseModel | None:
    section = raw.get(key)
    if section is None:
        example = registry.names()[0] if registry.names() else "..."
        problems.append(f"{key}: required section missing; e.g. {key}: {{name: {example}}}")
        return None
    if isinstance(section, str):  # `model: lstm` is shorthand for `model: {name: lstm}`
        section = {"name": section}
    if not isinstance(section, dict):
        problems.append(f"{key} = {section!r}: must be a mapping with a 'name'")
        return None
    name = section.get("name")
    if name is None:
        problems.append(f"{key}.name: required; available: {', '.join(registry.names())}")
        return None
    known = name in registry
    if not known:
        problems.append(f"{key}.name = {name!r}: {registry.unknown_message(name)}")
        # Still check the other keys, against the closest registered name's parameters.
        close = difflib.get_close_matches(str(name), registry.names(), n=1, cutoff=0.6)
        if not close:
            return None
        section = {**section, "name": close[0]}
    cls = registry.get(section["name"]).config
    try:
        validated = cls.model_validate(section)
    except ValidationError as e:
        problems.extend(_problems(e, key, cls, section))
        return None
    return validated if known else None


def resolve_config(raw: dict[str, Any], source: str | None = None) -> RunConfig:
    """Validate a raw mapping; raise ConfigError listing every problem."""
    if "probe" in raw and "task" not in raw:
        raise UserError(
            f"{source or 'this config'} describes a gradient probe (it has a probe: section), not a training run: "
            f"run it with `rnnlab probe-gradients --config {source or 'FILE'}`"
        )
    problems: list[str] = []
    for key in raw:
        if key not in _TOP_KEYS:
            problems.append(f"{key}: unknown section{suggest(str(key), _TOP_KEYS)}; allowed: {', '.join(_TOP_KEYS)}")
    task = _section(raw, "task", TASKS, problems)
    model = _section(raw, "model", MODELS, problems)
    train_raw = raw.get("train") or {}
    train = None
    if not isinstance(train_raw, dict):
        problems.append(f"train = {train_raw!r}: must be a mapping")
    else:
        try:
            train = TrainConfig.model_validate(train_raw)
        except ValidationError as e:
            problems.extend(_problems(e, "train", TrainConfig, train_raw))
    top = {k: raw[k] for k in ("name", "seed", "device") if k in raw}
    if task is None or model is None or train is None:
        # Still check the top-level scalars so that every problem is reported in one go.
        try:
            RunConfig.model_validate(
                {**top, "task": TaskConfig(name="x"), "model": ModelConfig(name="x"), "train": TrainConfig(steps=1)}
            )
        except ValidationError as e:
            problems.extend(_problems(e, "", RunConfig, top))
        raise ConfigError(problems, source)
    try:
        cfg = RunConfig.model_validate({**top, "task": task, "model": model, "train": train})
    except ValidationError as e:
        problems.extend(_problems(e, "", RunConfig, top))
    if problems:
        raise ConfigError(problems, source)
    return cfg


def resolve_probe_config(raw: dict[str, Any], source: str | None = None) -> ProbeConfig:
    """Validate a probe config (name, seed, probe, model, train); every problem at once."""
    if "task" in raw and "probe" not in raw:
        raise UserError(
            f"{source or 'this config'} describes a training run (it has a task: section), not a gradient probe: "
            f"train it with `rnnlab train {source or 'FILE'}`; a probe config looks like configs/probe_gradients.yaml"
        )
    problems: list[str] = []
    for key in raw:
        if key not in _PROBE_KEYS:
            problems.append(f"{key}: unknown section{suggest(str(key), _PROBE_KEYS)}; allowed: {', '.join(_PROBE_KEYS)}")
    model = _section(raw, "model", MODELS, problems)
    parts: dict[str, Any] = {}
    for key, cls in (("probe", ProbeSettings), ("train", TrainConfig)):
        section = raw.get(key) if key == "probe" else (raw.get(key) or {})
        if not isinstance(section, dict):
            problems.append(f"{key} = {section!r}: must be a mapping" if section is not None else f"{key}: required section missing")
            continue
        try:
            parts[key] = cls.model_validate(section)
        except ValidationError as e:
            problems.extend(_problems(e, key, cls, section))
    top = {k: raw[k] for k in ("name", "seed") if k in raw}
    try:
        cfg = ProbeConfig.model_validate(
            {**top, "probe": parts.get("probe") or ProbeSettings.model_construct(), "model": model or ModelConfig(name="x"),
             "train": parts.get("train") or TrainConfig()}
        )
    except ValidationError as e:
        problems.extend(_problems(e, "", ProbeConfig, top))
    if problems:
        raise ConfigError(problems, source)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    path = find_config(path)
    raw = apply_overrides(read_yaml(path), list(overrides or []))
    return resolve_config(raw, source=str(path))


def load_probe_config(path: str | Path, overrides: list[str] | None = None) -> ProbeConfig:
    path = find_config(path)
    raw = apply_overrides(read_yaml(path), list(overrides or []))
    return resolve_probe_config(raw, source=str(path))


def config_to_dict(cfg: RunConfig | ProbeConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def derive_config(cfg: RunConfig, changes: dict[str, Any], source: str | None = None) -> RunConfig:
    """`cfg` with dotted keys set to typed values (`{"model.hidden_size": 64}`), validated again.

    A key the section's class does not have is reported like any config problem, naming the
    key, so callers can tell the user which option does not apply.
    """
    raw = config_to_dict(cfg)
    for key, value in changes.items():
        *path, last = key.split(".")
        node = raw
        for part in path:
            node = node.setdefault(part, {})
        if last == "name" and path and path[0] in ("task", "model"):
            # Another model or task: keep only the keys it also has, so its own defaults apply.
            registry = TASKS if path[0] == "task" else MODELS
            allowed = registry.get(value).config.model_fields if value in registry else {}
            explicit = getattr(cfg, path[0]).model_fields_set
            node = raw[path[0]] = {k: v for k, v in node.items() if k in allowed and k in explicit}
        node[last] = value
    return resolve_config(raw, source)


# --- the shipped configs ------------------------------------------------------------------------

# A model without a shipped config for a task starts from the task's config for this model, with
# the model swapped in (keeping the model keys the other model also has, e.g. hidden_size, init).
REFERENCE_MODEL = "lstm"


def _shipped_dir() -> Path:
    installed = Path(__file__).resolve().parent / "configs"  # a wheel or `pip install .`
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "configs"  # a source checkout (editable install)


@lru_cache(maxsize=1)
def shipped_configs() -> dict[str, Path]:
    """Name (file name without .yaml) -> path of every shipped config."""
    folder = _shipped_dir()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def find_config(arg: str | Path) -> Path:
    """A config file as given, else the shipped config it names.

    `long_dependency_lstm`, `long_dependency_lstm.yaml` and `configs/long_dependency_lstm.yaml`
    (from a directory without that file) all find the shipped one.
    """
    p = Path(arg)
    if p.is_file() or p.is_dir():
        return p
    shipped = shipped_configs().get(p.stem if p.suffix in (".yaml", ".yml") else p.name)
    if shipped is not None and (len(p.parts) == 1 or p.parent.name == "configs"):
        return shipped
    return p  # read_yaml reports it missing, with the shipped names


def shipped_config_for(task: str, model: str) -> tuple[RunConfig, str]:
    """The validated config a model starts from on a task, and where it came from.

    `configs/<task>_<model>.yaml` if shipped; else `configs/<task>_lstm.yaml` with the model
    swapped in (REFERENCE_MODEL); neither -> a UserError asking for --config.
    """
    shipped = shipped_configs()
    own = f"{task}_{model}"
    if own in shipped:
        return load_config(shipped[own]), f"configs/{own}.yaml"
    ref = f"{task}_{REFERENCE_MODEL}"
    if ref not in shipped:
        have = sorted(n for n in shipped if n.startswith(f"{task}_"))
        raise UserError(
            f"no shipped config for task '{task}' (looked for configs/{own}.yaml and configs/{ref}.yaml"
            f"{'; found ' + ', '.join(have) if have else ''}); give one with --config FILE"
        )
    cfg = derive_config(load_config(shipped[ref]), {"model.name": model}, source=f"configs/{ref}.yaml with model {model}")
    return cfg, f"configs/{ref}.yaml with model {model} (no configs/{own}.yaml)"

