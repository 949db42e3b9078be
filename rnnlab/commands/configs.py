"""`rnnlab config` and `rnnlab list`: what a config resolves to, and what can go in one.

    rnnlab config configs/long_dependency_lstm.yaml model.name=gru
    rnnlab list
"""

from __future__ import annotations

from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..config import config_to_dict, load_any_config, shipped_configs
from ..registry import MODELS, TASKS

__all__ = ["show_config", "list_registered"]


def show_config(config: Path, overrides: list[str]) -> str:
    """The resolved config (file + overrides + defaults) as YAML, after validation; a probe
    config (with a probe: section) is validated as one."""
    text = yaml.safe_dump(config_to_dict(load_any_config(config, overrides)), sort_keys=False)
    print(text, end="")
    return text


def list_registered(console: Console) -> None:
    """Tasks and models with their parameters and defaults, then the shipped configs."""
    for registry in (TASKS, MODELS):
        table = Table(title=f"{registry.kind}s", title_justify="left", show_lines=True)
        table.add_column("name", style="bold cyan")
        table.add_column("what it is")
        table.add_column("parameters (default)")
        table.add_column("from")  # built-in, a plugin's file (--user-dir), or an entry point
        for entry in registry:
            fields = [
                f"{k} = {_show_default(f.default)}" + (f"  [dim]{f.description}[/]" if f.description else "")
                for k, f in entry.config.model_fields.items()
                if k != "name"
            ]
            table.add_row(entry.name, entry.help, "\n".join(fields), escape(entry.origin))
        console.print(table)
    console.print("Set any parameter in a config's task:/model: section, or as task.KEY=VALUE / model.KEY=VALUE.")
    shipped = shipped_configs()
    table = Table(title="shipped configs (rnnlab train NAME works from any directory)", title_justify="left")
    table.add_column("name", style="bold cyan")
    table.add_column("what it is")
    for name, path in shipped.items():
        table.add_row(name, _first_comment(path))
    console.print(table)


def _first_comment(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def _show_default(value: object) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
