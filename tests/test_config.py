"""Config loading, overrides and every class of validation error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rnnlab.config import apply_overrides, config_to_dict, load_config, load_probe_config, resolve_config, resolve_probe_config
from rnnlab.errors import ConfigError, UserError

from conftest import ROOT, tiny_raw

SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))
PROBES = {"probe_gradients.yaml"}  # configs with a probe: section instead of a task: section


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_validates(path: Path):
    if path.name in PROBES:
        cfg = load_probe_config(path)
        assert cfg.probe.models and cfg.model.name
        assert resolve_probe_config(config_to_dict(cfg)) == cfg
        return
    cfg = load_config(path)
    assert cfg.task.name and cfg.model.name
    # The resolved form is itself a valid config that resolves to the same thing.
    assert resolve_config(config_to_dict(cfg)) == cfg


def test_shipped_configs_exist():
    names = {p.name for p in SHIPPED}
    assert {f"long_dependency_{m}.yaml" for m in ("rnn", "lstm", "gru", "bilstm")} <= names


def test_overrides_are_yaml_scalars_at_dotted_keys():
    raw = apply_overrides(
        tiny_raw(), ["train.lr=3e-3", "model.bidirectional=true", "task.seq_len=200", "name=my-run", "train.eval_every="]
    )
    cfg = resolve_config(raw)
    assert cfg.train.lr == pytest.approx(3e-3) and isinstance(cfg.train.lr, float)
    assert cfg.model.bidirectional is True
    assert cfg.task.seq_len == 200
    assert cfg.name == "my-run"
    assert cfg.train.eval_every is None


def test_overrides_do_not_modify_the_loaded_mapping():
    raw = tiny_raw()
    apply_overrides(raw, ["model.hidden_size=99"])
    assert raw["model"]["hidden_size"] == 8


def test_override_without_equals_or_through_a_scalar_is_refused():
    with pytest.raises(ConfigError) as e:
        apply_overrides(tiny_raw(), ["train.lr", "seed.x=1"])
    text = str(e.value)
    assert "override 'train.lr': expected key=value" in text
    assert "seed is 0, not a section" in text


def test_defaults_fill_in():
    cfg = resolve_config({"task": {"name": "long_dependency"}, "model": {"name": "lstm"}, "train": {"steps": 10}})
    assert cfg.task.seq_len == 50 and cfg.task.num_classes == 10
    assert cfg.model.hidden_size == 128 and cfg.model.init == "default"
    assert cfg.train.optimizer == "adam" and cfg.train.clip_grad_norm == 5.0
    assert cfg.device == "auto" and cfg.run_name == "long_dependency_lstm"


def test_bidirectional_builders_default_to_bidirectional():
    assert resolve_config({**tiny_raw(), "model": {"name": "bilstm"}}).model.bidirectional is True
    assert resolve_config({**tiny_raw(), "model": {"name": "lstm"}}).model.bidirectional is False


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as e:
        resolve_config(raw)
    return e.value.problems


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.hidden_size=-3", "model.hidden_size = -3: Input should be greater than or equal to 1"),
        ("model.hiden_size=3", "model.hiden_size: unknown key (did you mean 'hidden_size'?)"),
        ("train.lr=fast", "train.lr = 'fast': Input should be a valid number"),
        ("train.lr=-1", "train.lr = -1: Input should be greater than 0"),
        ("train.lr=.nan", "train.lr = nan: Input should be a finite number"),
        ("train.optimizer=adamm", "train.optimizer = 'adamm': Input should be 'adam', 'adamw', 'sgd' or 'rmsprop'"),
        ("model.name=lsmt", "model.name = 'lsmt': unknown model 'lsmt' (did you mean 'lstm'?); available: rnn, lstm, gru, bilstm, bigru"),
        ("task.name=long_dep", "task.name = 'long_dep': unknown task 'long_dep' (did you mean 'long_dependency'?)"),
        ("device=gpu", "device = 'gpu': must be one of auto, cpu, cuda, cuda:N, mps"),
        ("trian.lr=1", "trian: unknown section (did you mean 'train'?)"),
        ("train.steps=null", "train.steps is not set: task 'long_dependency' generates data without end"),
        ("model.init=xavier", "model.init = 'xavier': Input should be 'default', 'forget_bias' or 'chrono'"),
        ("task.seq_len=0", "task.seq_len = 0: Input should be greater than or equal to 1"),
        ("model.hidden_size=1e9", "model.hidden_size = 1000000000.0: Input should be less than or equal to 65536"),
    ],
)
def test_each_class_of_error_names_key_value_and_what_is_allowed(override: str, expected: str):
    found = problems(apply_overrides(tiny_raw(), [override]))
    assert any(expected in p for p in found), found


def test_all_errors_are_reported_at_once():
    raw = apply_overrides(tiny_raw(), ["model.hidden_size=-3", "model.nme=x", "train.lr=abc", "model.name=lsmt", "seed=-1"])
    found = problems(raw)
    assert len(found) == 5, found
    for key in ("model.name", "model.hidden_size", "model.nme", "train.lr", "seed"):
        assert any(p.startswith(key) for p in found), (key, found)


def test_missing_sections_are_named(tmp_path: Path):
    found = problems({"train": {"steps": 1}})
    assert any(p.startswith("task: required section missing") for p in found)
    assert any(p.startswith("model: required section missing") for p in found)


def test_yaml_that_is_not_a_mapping_or_uses_aliases_is_refused(tmp_path: Path):
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="must be a mapping of sections"):
        load_config(lst)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n")
    with pytest.raises(UserError, match="aliases"):
        load_config(bomb)
    broken = tmp_path / "broken.yaml"
    broken.write_text("task: {name: [\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(broken)


def test_missing_config_file_suggests_shipped_ones(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(UserError) as e:
        load_config("configs/long_dependency_lstn.yaml")
    assert "did you mean 'long_dependency_lstm.yaml'" in str(e.value)


# --- booleans are not numbers, and long lists of problems (issue 27, items 24 and 27) ---------------


def _numeric_fields() -> list[tuple[type, str]]:
    from rnnlab.config import ProbeConfig, ProbeSettings, RunConfig, TrainConfig, _is_numeric
    from rnnlab.registry import MODELS, TASKS

    classes = [RunConfig, TrainConfig, ProbeConfig, ProbeSettings, *(e.config for e in TASKS), *(e.config for e in MODELS)]
    return [(cls, name) for cls in dict.fromkeys(classes) for name, f in cls.model_fields.items() if _is_numeric(f.annotation)]


def test_every_numeric_setting_of_every_section_refuses_a_boolean():
    from pydantic import ValidationError

    fields = _numeric_fields()
    assert len(fields) > 30  # seed, train.*, probe.*, every task's and model's sizes
    for cls, name in fields:
        with pytest.raises(ValidationError) as e:
            cls.model_validate({name: True})
        (error,) = [x for x in e.value.errors() if x["loc"] == (name,)]
        assert error["msg"].startswith("Value error, a boolean (true/false, yes/no, on/off) is not a number; allowed: "), (cls, name)


def test_booleans_still_set_boolean_settings():
    cfg = resolve_config(apply_overrides(tiny_raw(), ["model.bidirectional=yes", "train.skip_nonfinite=true"]))
    assert cfg.model.bidirectional is True and cfg.train.skip_nonfinite is True


def test_a_setting_of_auto_or_a_number_refuses_a_boolean_and_takes_both():
    """The shape of a `runtime.threads: auto | N` setting: the check reads the field's type, whatever it is."""
    from typing import Annotated, Literal

    from pydantic import Field, ValidationError

    from rnnlab.config import Section

    class Runtime(Section):
        threads: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] = "auto"

    assert Runtime(threads="auto").threads == "auto" and Runtime(threads=4).threads == 4
    with pytest.raises(ValidationError, match="a boolean .* is not a number; allowed: 'auto' or a whole number from 1 to 1024"):
        Runtime(threads=True)


def test_a_long_list_of_problems_shows_the_first_20_and_counts_the_rest():
    error = ConfigError([f"train.junk_{i}: unknown key" for i in range(50)], "big.yaml")
    lines = str(error).splitlines()
    assert lines[0] == "invalid config big.yaml (50 problems, the first 20 listed):"
    assert lines[1:21] == [f"  - train.junk_{i}: unknown key" for i in range(20)]
    assert lines[21:] == ["  ... and 30 more"]
    assert len(error.problems) == 50  # callers still get every one


def test_a_huge_mapping_or_list_is_read_only_to_its_first_thousand_entries(tmp_path: Path):
    path = tmp_path / "long.yaml"
    raw = tiny_raw()
    raw["task"]["seq_len"] = list(range(5000))
    raw["model"].update({f"x{i}": i for i in range(1500)})
    path.write_text(yaml.safe_dump(raw, sort_keys=False))  # model: name, hidden_size, init, x0, x1, ...
    with pytest.raises(ConfigError) as e:
        load_config(path)
    found = e.value.problems
    assert any(p.startswith("task.seq_len: 5,000 items (line ") and "only the first 1,000 were read" in p for p in found), found[:3]
    assert any(p.startswith("model: 1,503 keys (line ") for p in found), found[:3]
    assert "model.x996: unknown key" in " ".join(found) and "model.x997:" not in " ".join(found)


def test_a_long_value_is_quoted_short_in_the_message():
    found = problems(apply_overrides(tiny_raw(), ["name=" + "x" * 5000]))
    assert len(found) == 1 and len(found[0]) < 300 and "(5,002 characters)" in found[0]
