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
import types
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from .errors import ConfigError, UserError
from .registry import MODELS, TASKS, Registry, suggest

__all__ = [
    "Section",
    "TaskConfig",
    "ModelConfig",
    "TrainConfig",
    "RunConfig",
    "RuntimeConfig",
    "ProbeSettings",
    "ProbeConfig",
    "load_config",
    "load_probe_config",
    "load_any_config",
    "resolve_config",
    "dotted",
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
# The devices rnnlab runs on: the config's `device` and every --device (runtime.resolve_device).
DEVICES = "auto, cpu, cuda, cuda:N (N = 0, 1, ...) or mps"
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda|cuda:\d{1,4}|mps")
MAX_SIZE = 1_000_000


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    # pydantic's lax mode reads `true` as 1 in an int or float field: `train.steps=true` would
    # train one step. Every section inherits this check, plugins' too, whatever the field's
    # type (`int | None`, `Literal["auto"] | int`, ...), so no numeric field needs its own.
    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _is_numeric(field.annotation):
            raise ValueError(f"a boolean (true/false, yes/no, on/off) is not a number; allowed: {_allowed(field)}")
        return value


def _kinds(annotation: Any) -> set[Any]:
    """The types a field accepts: `int | None` -> {int, NoneType}; `Literal["auto"] | int` -> {str, int}."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return set().union(*(_kinds(a) for a in get_args(annotation)))
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin is Literal:
        return {type(a) for a in get_args(annotation)}
    return {annotation}


def _is_numeric(annotation: Any) -> bool:
    kinds = _kinds(annotation)
    return bool(kinds & {int, float}) and bool not in kinds


def _allowed(field: FieldInfo) -> str:
    """What a numeric field takes, in words: "a whole number >= 1 or null", "'auto' or a whole number >= 1"."""
    kinds = _kinds(field.annotation)
    bounds = {}
    for m in [*field.metadata, *_metadata(field.annotation)]:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(m, getattr(annotated_types, attr.capitalize())):
                bounds[sign] = getattr(m, attr)
    if ">=" in bounds and "<=" in bounds:
        bounds = {"from": f"{bounds.pop('>=')} to {bounds.pop('<=')}", **bounds}
    number = ("a whole number" if float not in kinds else "a number") + (" " if bounds else "") + " and ".join(f"{k} {v}" for k, v in bounds.items())
    words = [repr(a) for a in _literals(field.annotation)] + [number] + (["null"] if type(None) in kinds else [])
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else number


def _metadata(annotation: Any) -> list[Any]:
    """Constraints inside a union, as in `Literal["auto"] | Annotated[int, Field(ge=1)]`."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return [m for extra in annotation.__metadata__ for m in (extra.metadata if isinstance(extra, FieldInfo) else [extra])]
    if origin in (Union, types.UnionType):
        return [m for a in get_args(annotation) for m in _metadata(a)]
    return []


def _literals(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin is Literal:
        return list(get_args(annotation))
    if origin in (Union, types.UnionType):
        return [v for a in get_args(annotation) for v in _literals(a)]
    return []


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
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field(
        "adam", description="rmsprop: the optimiser of the chrono-init and expRNN papers' copy-task recipes"
    )
    lr: float = Field(1e-3, gt=0, le=10, description="learning rate")
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1, description="sgd and rmsprop")
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


class RuntimeConfig(Section):
    """How this machine runs the experiment; not part of its results."""

    threads: Literal["auto"] | Annotated[int, Field(ge=1, le=4096)] = Field(
        "auto", description="CPU threads: auto (idle cores, one for small models; rnnlab/threads.py) or N; --threads and OMP_NUM_THREADS win"
    )

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, v: Any) -> Any:
        # One message for every wrong value (a union would report each of its members' complaints).
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096):
            return v
        raise ValueError("give auto or a whole number of threads from 1 to 4096, e.g. runtime.threads=1")


class RunConfig(Section):
    name: str | None = Field(None, description="run name; default <task>_<model>")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N | mps")
    task: SerializeAsAny[TaskConfig]
    model: SerializeAsAny[ModelConfig]
    train: TrainConfig = TrainConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not DEVICE_PATTERN.fullmatch(v):
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
    runtime: RuntimeConfig = RuntimeConfig()

    @property
    def run_name(self) -> str:
        return self.name


_TOP_KEYS = ("name", "seed", "device", "task", "model", "train", "runtime")
_PROBE_KEYS = ("name", "seed", "probe", "model", "train", "runtime")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping; UserError when it cannot be one, ConfigError when part of it is too big to read."""
    data, cut = _read(path)
    if cut:
        raise ConfigError(cut, str(path))
    return data


def _read(path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """The mapping, and a problem for each mapping or list cut at `_MAX_ENTRIES` (see _NoAliasLoader)."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{path} is a directory; give a YAML file, e.g. {p / 'experiment.yaml'} or configs/long_dependency_lstm.yaml")
    if not p.is_file():
        names = sorted(shipped_configs())
        close = suggest(p.name, [f"{n}.yaml" for n in names]) if p.suffix else suggest(p.name, names)
        hint = f"{close}; shipped configs (give one by name): {', '.join(names)}"
        raise UserError(f"config file not found: {path}{hint}")
    try:
        loader = _NoAliasLoader(p.read_text(encoding="utf-8"))
        try:
            data, cut = loader.get_single_data(), loader.cut
        finally:
            loader.dispose()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None
    except (yaml.YAMLError, ValueError) as e:  # PyYAML's constructors raise ValueError too (dates, 0x_)
        # libyaml stops at 1,000 levels with its own words; Python's composer would recurse past its limit.
        too_deep = "maximum nesting depth" in str(e)
        raise UserError(f"{path}: not valid YAML: {'nested too deeply' if too_deep else e}") from None
    except RecursionError:
        raise UserError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config must be a mapping of sections (task:, model:, train:), got {type(data).__name__}")
    return data, cut


# A config holds a few dozen settings. Past this many entries a mapping or list is not built,
# only counted: a file of 400,000 keys is then refused in about a second, not after a minute of
# building and validating keys whose problems nobody would read.
_MAX_ENTRIES = 1_000

if yaml.__with_libyaml__:  # the usual wheels: libyaml parses in C, about 20 times faster
    from yaml.cyaml import CParser

    class _Loader(Composer, CParser, SafeConstructor, Resolver):
        """libyaml's events, composed in Python (Composer first), so that the checks below apply."""

        def __init__(self, stream: str):
            yaml.reader.Reader(stream)  # the pure-Python reader's check for special characters, and its message
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

else:
    _Loader = yaml.SafeLoader  # type: ignore[assignment,misc]


class _NoAliasLoader(_Loader):  # type: ignore[valid-type,misc]
    """Safe YAML without anchors/aliases, which can make a tiny file expand to gigabytes, and
    with at most `_MAX_ENTRIES` entries read per mapping or list (`cut` says where and how many)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.cut: list[str] = []
        self._keys: list[Any] = []

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not allowed in rnnlab configs {event.start_mark}")
        self._keys.append(index.value if isinstance(index, yaml.ScalarNode) else index)
        try:
            return super().compose_node(parent, index)
        finally:
            self._keys.pop()

    def compose_sequence_node(self, anchor):  # type: ignore[override]
        return self._compose_collection(yaml.SequenceNode, yaml.SequenceEndEvent, 1)

    def compose_mapping_node(self, anchor):  # type: ignore[override]
        return self._compose_collection(yaml.MappingNode, yaml.MappingEndEvent, 2)

    def _compose_collection(self, kind: type, end: type, nodes_per_entry: int) -> yaml.Node:
        """Composer.compose_sequence_node / compose_mapping_node (no anchors), up to `_MAX_ENTRIES`."""
        start = self.get_event()
        tag = start.tag if start.tag not in (None, "!") else self.resolve(kind, None, start.implicit)
        node = kind(tag, [], start.start_mark, None, flow_style=start.flow_style)
        while not self.check_event(end):
            if len(node.value) == _MAX_ENTRIES:
                entries, end_event = self._skip_rest()
                entries = _MAX_ENTRIES + entries // nodes_per_entry
                where = ".".join(str(k) for k in self._keys if k is not None) or "the file"
                what = "keys" if kind is yaml.MappingNode else "items"
                self.cut.append(f"{where}: {entries:,} {what} (line {start.start_mark.line + 1}); a config holds a few dozen "
                                f"settings, so only the first {_MAX_ENTRIES:,} were read: is this the right file?")  # fmt: skip
                node.end_mark = end_event.end_mark
                return node
            if kind is yaml.MappingNode:
                key = self.compose_node(node, None)
                node.value.append((key, self.compose_node(node, key)))
            else:
                node.value.append(self.compose_node(node, len(node.value)))
        node.end_mark = self.get_event().end_mark
        return node

    def _skip_rest(self) -> tuple[int, yaml.Event]:
        """Consume the rest of a collection's events without building anything (the hot loop
        of a huge file): how many nodes it held, and its end event."""
        nodes = depth = 0
        get_event = self.get_event
        while True:
            event = get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent or kind is yaml.AliasEvent:
                nodes += depth == 0
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                depth += 1
            elif depth == 0:
                return nodes, event
            else:
                depth -= 1
                nodes += depth == 0


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
            shown = f" = {_shown(value)}" if e["loc"] and not isinstance(value, dict) else ""
            out.append(f"{where}{shown}: {msg}")
    return out


def _shown(value: Any) -> str:
    """A value as the user wrote it (`true`, not `True`), cut short: a message quotes it, it never floods."""
    if isinstance(value, bool) or value is None:
        return "null" if value is None else str(value).lower()
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else f"{text[:_MAX_SHOWN]}... ({len(text):,} characters)"


_MAX_SHOWN = 80


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
    top = {k: raw[k] for k in ("name", "seed", "device", "runtime") if k in raw}
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
    top = {k: raw[k] for k in ("name", "seed", "runtime") if k in raw}
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
    return _load(path, overrides, probe=False)  # type: ignore[return-value]


def load_probe_config(path: str | Path, overrides: list[str] | None = None) -> ProbeConfig:
    return _load(path, overrides, probe=True)  # type: ignore[return-value]


def load_any_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig | ProbeConfig:
    """A training run's config or, when the file has a probe: section and no task:, a gradient probe's."""
    return _load(path, overrides, probe=None)


def _load(path: str | Path, overrides: list[str] | None, probe: bool | None) -> RunConfig | ProbeConfig:
    path = find_config(path)
    raw, cut = _read(path)
    if probe is None:
        probe = "probe" in raw and "task" not in raw
    raw = apply_overrides(raw, list(overrides or []))
    try:
        cfg = (resolve_probe_config if probe else resolve_config)(raw, source=str(path))
    except ConfigError as e:
        raise ConfigError(cut + e.problems, str(path)) from None
    if cut:  # what was read may be valid; what was not read still makes the file wrong
        raise ConfigError(cut, str(path))
    return cfg


def config_to_dict(cfg: RunConfig | ProbeConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def dotted(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A config dict as dotted keys: {"train": {"lr": 0.01}} -> {"train.lr": 0.01}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


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

