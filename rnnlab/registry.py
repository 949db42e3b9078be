"""Name -> builder registries: the CLI's vocabulary (`rnnlab list` shows them).

    @MODELS.register("lstm", config=RecurrentConfig)
    def build_lstm(cfg, spec): ...

A registered thing carries its own pydantic config class, so `rnnlab list` and the config
validator know its parameters and defaults without any second source of truth.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import UserError

__all__ = ["Registry", "Entry", "TASKS", "MODELS", "suggest"]


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


class Registry:
    def __init__(self, kind: str, package: str | None = None):
        self.kind = kind
        self._package = package  # imported on first lookup: its modules register themselves
        self._entries: dict[str, Entry] = {}

    def _load(self) -> None:
        # Lazily, so that `rnnlab --help` does not pay for importing torch.
        if self._package is not None:
            importlib.import_module(self._package)

    def register(self, name: str, *, config: type, help: str = "") -> Callable:
        def decorate(builder: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            doc = help or ((builder.__doc__ or "").strip().splitlines() or [""])[0]
            self._entries[name] = Entry(name, builder, config, doc)
            return builder

        return decorate

    def unknown_message(self, name: Any) -> str:
        self._load()
        return (
            f"unknown {self.kind} '{name}'{suggest(str(name), self.names())}; "
            f"available: {', '.join(self.names())}"
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
