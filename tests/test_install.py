"""An installed rnnlab (a wheel, not this checkout) finds its shipped configs and trains with them.

    python -m pytest tests/test_install.py

The wheel is built from a copy of the project and unpacked into a folder put on PYTHONPATH;
commands run from an empty directory, so nothing can be read from the source tree by accident.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(_ROOT / name, src / name)
    for name in ("rnnlab", "configs"):
        shutil.copytree(_ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-w", str(base / "dist"), "-q"], capture_output=True, text=True, timeout=300, cwd=base)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (base / "dist").glob("rnnlab-*.whl")
    site = base / "site"
    zipfile.ZipFile(wheel).extractall(site)
    empty = base / "elsewhere"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    return {"site": str(site), "cwd": str(empty), **{f"env:{k}": v for k, v in env.items()}}


def _rnnlab(installed: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k[4:]: v for k, v in installed.items() if k.startswith("env:")}
    return subprocess.run([sys.executable, "-m", "rnnlab", *args], capture_output=True, text=True, timeout=300,
                          cwd=installed["cwd"], env=env)


@pytest.mark.slow
def test_wheel_carries_every_shipped_config(installed: dict[str, str]) -> None:
    shipped = sorted(p.name for p in (_ROOT / "configs").glob("*.yaml"))
    packed = sorted(p.name for p in (Path(installed["site"]) / "rnnlab" / "configs").glob("*.yaml"))
    assert packed == shipped


@pytest.mark.slow
def test_installed_rnnlab_uses_the_shipped_configs(installed: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", "import rnnlab; print(rnnlab.__file__)"], capture_output=True,
                          text=True, cwd=installed["cwd"], env={k[4:]: v for k, v in installed.items() if k.startswith("env:")})
    assert done.stdout.strip().startswith(installed["site"]), "the test must run the installed copy, not the checkout"

    # The shipped settings, not a fallback: the long-dependency LSTM starts with chrono gate init.
    done = _rnnlab(installed, "config", "long_dependency_lstm")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["model"]["init"] == yaml.safe_load(
        (_ROOT / "configs" / "long_dependency_lstm.yaml").read_text())["model"]["init"]

    done = _rnnlab(installed, "list")
    assert done.returncode == 0 and "imdb_bilstm" in done.stdout and "probe_gradients" in done.stdout

    done = _rnnlab(installed, "train", "long_dependency_lstm", "train.steps=20", "train.eval_every=10", "task.seq_len=10",
                   "task.val_size=64", "task.test_size=64", "device=cpu", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((Path(installed["cwd"]) / "runs").glob("*-long_dependency_lstm/summary.json"))

    done = _rnnlab(installed, "compare", "lstm", "gru", "--seq-len", "10", "--steps", "20", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    (results,) = (Path(installed["cwd"]) / "runs").glob("*-compare-*/results.csv")
    assert "lstm" in results.read_text() and "gru" in results.read_text()
