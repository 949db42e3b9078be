"""A user's own models and tasks, without editing rnnlab: `--user-dir` and entry points.

    rnnlab train examples/custom_cell/config.yaml --user-dir examples/custom_cell
    RNNLAB_USER_DIR=examples/custom_cell rnnlab list

A plugin is a Python package (a directory with `__init__.py`) or a single `.py` file that
registers things with `rnnlab.registry.register_model` / `register_task`. Three ways in:

- `--user-dir PATH` on any command (repeatable);
- `RNNLAB_USER_DIR`, paths separated by os.pathsep (":" on Linux and macOS);
- an installed distribution's entry point in the group `rnnlab.plugins`, e.g. in its pyproject.toml
      [project.entry-points."rnnlab.plugins"]
      mycell = "mypackage.cells"
  (the value names a module to import; importing it registers).

`--user-dir` also puts its paths into RNNLAB_USER_DIR, so the processes a command starts
(`rnnlab compare --jobs N`) load the same plugins. A plugin's mistakes (a syntax error, an
exception at import, at build or in a forward pass) are reported by its file and line, exit 2,
without a traceback through rnnlab (`blame`, used by the CLI).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from .errors import UserError

__all__ = ["ENV", "GROUP", "PluginError", "load_user_dirs", "load_configured", "blame", "loaded_roots"]

ENV = "RNNLAB_USER_DIR"
GROUP = "rnnlab.plugins"

# Resolved file or directory of each plugin imported: a frame inside one of them is the plugin's.
_roots: dict[Path, str] = {}  # root -> how it was named (the path given, or the entry point)
_entry_points_loaded = False


class PluginError(UserError):
    """A plugin could not be imported: names its file and line."""


def loaded_roots() -> dict[Path, str]:
    return dict(_roots)


def load_user_dirs(paths: list[str] | tuple[str, ...]) -> None:
    """Import each path (package directory or .py file) once, and add them to RNNLAB_USER_DIR so
    that child processes import them too."""
    for given in paths:
        _import_path(str(given))
    if paths:
        listed = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
        new = [str(Path(p).resolve()) for p in paths]
        os.environ[ENV] = os.pathsep.join(dict.fromkeys(new + listed))


def load_configured() -> None:
    """The plugins the environment names: installed entry points and RNNLAB_USER_DIR."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True  # first, so that a plugin that asks the registry does not recurse
        for ep in importlib.metadata.entry_points(group=GROUP):
            _import_entry_point(ep)
    for given in (p for p in os.environ.get(ENV, "").split(os.pathsep) if p):
        _import_path(given, source=f"{ENV}={os.environ[ENV]}")


def _import_path(given: str, source: str | None = None) -> None:
    where = source or f"--user-dir {given}"
    path = Path(given).expanduser()
    if not path.exists():
        raise PluginError(f"{where}: no such directory or file; give a Python package directory (with __init__.py) or a .py file")
    path = path.resolve()
    if path in _roots:
        return
    if path.is_dir():
        init = path / "__init__.py"
        if not init.is_file():
            raise PluginError(
                f"{where}: {given} has no __init__.py, so it is not a Python package; add an __init__.py that "
                f"imports your modules (from . import mycell), or pass the .py file itself"
            )
        name, file, search = path.name, init, [str(path)]
    elif path.suffix == ".py":
        name, file, search = path.stem, path, None
    else:
        raise PluginError(f"{where}: {given} is neither a package directory nor a .py file")
    if not name.isidentifier():
        raise PluginError(f"{where}: '{name}' is not a valid Python module name; rename it (letters, digits, _)")
    if name in sys.modules:
        known = getattr(sys.modules[name], "__file__", None) or "built in"
        raise PluginError(f"{where}: a module named '{name}' is already imported ({known}); rename your plugin")
    _roots[path] = given
    spec = importlib.util.spec_from_file_location(name, file, submodule_search_locations=search)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as import does: its own relative imports need it
    try:
        _run(spec.loader.exec_module, module, where)
    except BaseException:
        sys.modules.pop(name, None)
        _roots.pop(path, None)
        raise


def _import_entry_point(ep: importlib.metadata.EntryPoint) -> None:
    from .registry import registering_from

    dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "?"
    where = f"entry point {ep.name} = {ep.value} ({dist})"
    module_name = ep.value.split(":")[0].strip()
    spec = importlib.util.find_spec(module_name.split(".")[0])
    if spec is not None and spec.origin:
        top = Path(spec.origin).resolve()
        _roots[top.parent if top.name == "__init__.py" else top] = where
    with registering_from(f"entry point {ep.name} ({dist})"):
        _run(lambda _: ep.load(), None, where)


def _run(load, module: ModuleType | None, where: str) -> None:
    try:
        load(module)
    except UserError as e:
        raise PluginError(f"{_located(e, where)}: {e}") from None
    except SyntaxError as e:
        raise PluginError(f"plugin {_short(e.filename)}, line {e.lineno}: {type(e).__name__}: {e.msg} ({where})") from None
    except Exception as e:
        raise PluginError(f"{_located(e, where)}: {type(e).__name__}: {e}") from None


def _located(e: BaseException, where: str) -> str:
    found = blame(e)
    return f"plugin {found}" if found else f"plugin ({where})"


def blame(e: BaseException) -> str | None:
    """'FILE, line N, in FUNCTION' of the innermost frame of `e`'s traceback that lies in a
    loaded plugin, or None when the error did not pass through one."""
    if not _roots:
        return None
    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        file = Path(frame.filename).resolve()
        if any(file == root or root in file.parents for root in _roots):
            return f"{_short(frame.filename)}, line {frame.lineno}, in {frame.name}"
    return None


def _short(file: str | None) -> str:
    if not file:
        return "?"
    try:
        return os.path.relpath(file)
    except ValueError:
        return file
