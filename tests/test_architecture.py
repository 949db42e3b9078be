"""The layout's promises, checked on the source: who may import whom.

    python -m pytest tests/test_architecture.py

- models/ know the task-model contract, never a task, the engine or a command;
- contract.py depends on nothing of rnnlab but errors, so both sides can import it;
- each command is its own module: commands never import one another, and only the CLI imports them;
- every registered model builds from the contract alone and trains one step.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from rnnlab.config import resolve_config
from rnnlab.contract import Batch, ModelSpec
from rnnlab.registry import MODELS

from conftest import tiny_raw

_PKG = Path(__file__).resolve().parents[1] / "rnnlab"


def _imports(path: Path) -> set[str]:
    """Absolute names of the rnnlab modules a file imports (relative imports resolved)."""
    package = ["rnnlab", *path.relative_to(_PKG).parent.parts]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rnnlab")}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if module.startswith("rnnlab"):
                found.add(module)
                found |= {f"{module}.{a.name}" for a in node.names}  # `from . import engine`
    return found


def _files(sub: str) -> list[Path]:
    return sorted((_PKG / sub).glob("*.py")) if sub else sorted(_PKG.glob("*.py"))


def _offending(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{f.relative_to(_PKG.parent)} imports {name}"
        for f in files
        for name in sorted(_imports(f))
        if any(name == p or name.startswith(p + ".") for p in forbidden)
    ]


def test_models_do_not_import_tasks_engine_or_commands() -> None:
    assert _offending(_files("models"), ("rnnlab.tasks", "rnnlab.engine", "rnnlab.commands", "rnnlab.callbacks")) == []


def test_contract_depends_only_on_errors() -> None:
    names = {n for n in _imports(_PKG / "contract.py") if n.count(".") == 1}
    assert names <= {"rnnlab.errors"}


def test_commands_are_independent_and_only_the_cli_imports_them() -> None:
    commands = _files("commands")
    for f in commands:
        others = tuple(f"rnnlab.commands.{o.stem}" for o in commands if o != f and o.stem != "__init__")
        assert _offending([f], others) == []
    outside = [f for f in _PKG.rglob("*.py") if "commands" not in f.parts and f.name != "cli.py"]
    assert _offending(outside, ("rnnlab.commands",)) == []


def test_the_import_scan_sees_imports() -> None:
    """Guards the guards: the scan must find imports that are there."""
    assert "rnnlab.contract" in _imports(_PKG / "models" / "recurrent.py")
    assert "rnnlab.engine" in _imports(_PKG / "commands" / "train.py")


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_builds_from_the_contract_and_learns(name: str) -> None:
    torch.manual_seed(0)
    # Token ids in, one label per sequence out: the contract every model serves (text tasks).
    spec = ModelSpec(num_outputs=4, vocab_size=12, max_len=7)
    model = MODELS.build(resolve_config({**tiny_raw(), "model": {"name": name}}).model, spec)
    lengths = torch.tensor([7, 3, 5, 1, 7])
    x = torch.randint(2, 12, (5, 7)) * (torch.arange(7) < lengths.unsqueeze(1))
    batch = Batch(inputs=x, targets=torch.tensor([0, 1, 2, 3, 0]), lengths=lengths)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(batch.inputs, batch.lengths), batch.targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], f"{name} did not fit five examples: {losses[0]:.3f} -> {losses[-1]:.3f}"
