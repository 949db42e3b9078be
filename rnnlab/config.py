"""YAML config -> dotted `key=value` overrides -> one typed, validated `RunConfig`.

    rnnlab config configs/long_dependency_lstm.yaml task.seq_len=100 train.lr=3e-3

Each task and model registers its own pydantic config class (see registry.py); this module
validates the `task` and `model` sections against the class their `name` selects, and reports
every problem of every section at once, each with its dotted key, the bad value and what is
allowed.
"""

from __future__ import annotations

import difflib
import re
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
    "load_config",
    "resolve_config",
    "apply_overrides",
    "read_yaml",
    "config_to_dict",
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
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="CUDA only: bf16/fp16 autocast (fp16 with a gradient scaler)")


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


_TOP_KEYS = ("name", "seed", "device", "task", "model", "train")


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{path} is a directory; give a YAML file, e.g. {p / 'experiment.yaml'} or configs/long_dependency_lstm.yaml")
    if not p.is_file():
        hint = ""
        configs = Path("configs")
        if configs.is_dir():
            names = sorted(f.name for f in configs.glob("*.yaml"))
            hint = f"{suggest(p.name, names)}; shipped configs: {', '.join('configs/' + n for n in names)}"
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


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    raw = apply_overrides(read_yaml(path), list(overrides or []))
    return resolve_config(raw, source=str(path))


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")

