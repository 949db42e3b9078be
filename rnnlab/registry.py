"""Name -> builder registries: the CLI's vocabulary (`rnnlab list` shows them).

    @MODELS.register("lstm", config=RecurrentConfig)
    def build_lstm(cfg, spec): ...

A registered thing carries its own pydantic config class, so `rnnlab list` and the config
validator know its parameters and defaults without any second source of truth.

A user's own models and tasks register the same way, from a plugin (rnnlab/plugins.py):

    from rnnlab.registry import register_model
    @register_model("mycell", config=MyCellConfig)
    def build_mycell(cfg, spec): ...

Each entry remembers where it came from (`origin`: built-in, the plugin's file, or the entry
point), which `rnnlab list` shows.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import UserError

__all__ = ["Registry", "Entry", "TASKS", "MODELS", "suggest", "register_model", "register_task", "registering_from", "BUILT_IN"]

BUILT_IN = "built-in"
# Set by rnnlab/plugins.py while it imports an installed plugin, so that its entries say which.
_origin: str | None = None


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'lstm'?)' when something close exists, else ''."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., Any]
    config: type
    help: str
    origin: str = BUILT_IN  # built-in, "plugin <file>" or "entry point <name> (<distribution>)"


@contextmanager
def registering_from(origin: str) -> Iterator[None]:
    """Entries registered inside the block record `origin` (an entry point, named by plugins.py)."""
    global _origin
    previous, _origin = _origin, origin
    try:
        yield
    finally:
        _origin = previous


def _origin_of(builder: Callable) -> str:
    if _origin is not None:
        return _origin
    if (builder.__module__ or "").split(".")[0] == "rnnlab":
        return BUILT_IN
    try:
        file = inspect.getsourcefile(builder) or "?"
    except TypeError:
        file = "?"
    try:
        file = os.path.relpath(file)
    except ValueError:  # another drive (Windows)
        pass
    return f"plugin {file}"


class Registry:
    def __init__(self, kind: str, package: str | None = None):
        self.kind = kind
        self._package = package  # imported on first lookup: its modules register themselves
        self._entries: dict[str, Entry] = {}

    def _load(self) -> None:
        # Lazily, so that `rnnlab --help` does not pay for importing torch. Then the installed
        # plugins (entry points, $RNNLAB_USER_DIR), once per process.
        self._load_builtins()
        from . import plugins

        plugins.load_configured()

    def _load_builtins(self) -> None:
        if self._package is not None:
            importlib.import_module(self._package)

    def register(self, name: str, *, config: type, help: str = "") -> Callable:
        def decorate(builder: Callable) -> Callable:
            origin = _origin_of(builder)
            if origin != BUILT_IN:
                self._load_builtins()  # so that a plugin cannot take a built-in name first
            if name in self._entries:
                raise UserError(
                    f"{self.kind} '{name}' is registered twice: {self._entries[name].origin} has it already; "
                    f"give the other one ({origin}) a name of its own"
                )
            doc = help or ((builder.__doc__ or "").strip().splitlines() or [""])[0]
            self._entries[name] = Entry(name, builder, config, doc, origin)
            return builder

        return decorate

    def unknown_message(self, name: Any) -> str:
        self._load()
        return (
            f"unknown {self.kind} '{name}'{suggest(str(name), self.names())}; "
            f"available: {', '.join(self.names())} (a plugin's {self.kind}? load it with --user-dir DIR)"
        )

    def get(self, name: str) -> Entry:
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UserError(self.unknown_message(name)) from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        self._load()
        return iter(list(self._entries.values()))

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def build(self, cfg: Any, *args: Any, **kwargs: Any) -> Any:
        return self.get(cfg.name).builder(cfg, *args, **kwargs)


TASKS = Registry("task", "rnnlab.tasks")
MODELS = Registry("model", "rnnlab.models")

register_model = MODELS.register
register_task = TASKS.register
