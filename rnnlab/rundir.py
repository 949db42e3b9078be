"""The run directory: everything a user keeps from a run, written so that nothing is lost.

    runs/20261124-093000-long_dependency_lstm/
        config.yaml  metrics.jsonl  summary.json  checkpoints/{best,last}.pt  plots/*.png
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import UserError

__all__ = [
    "create_run_dir",
    "check_runs_dir",
    "RunLock",
    "write_error",
    "iter_run_dirs",
    "write_atomic",
    "partial_writes",
    "write_json",
    "read_json",
    "read_metrics",
    "clean_json",
    "resolve_run",
]


def check_runs_dir(parent: str | Path) -> Path:
    """`parent` exists (created if need be) as a writable directory, or a UserError says why."""
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"--runs-dir {parent}: is a file, not a directory; choose a directory, e.g. --runs-dir runs") from None
    except NotADirectoryError:
        raise UserError(f"--runs-dir {parent}: part of that path is a file, not a directory; choose another --runs-dir") from None
    except OSError as e:
        raise UserError(f"--runs-dir {parent}: cannot create it ({e.strerror or e}); choose another --runs-dir") from None
    if not parent.is_dir():
        raise UserError(f"--runs-dir {parent}: is a file, not a directory; choose a directory, e.g. --runs-dir runs")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--runs-dir {parent}: not writable by you; choose another --runs-dir")
    return parent


def create_run_dir(parent: str | Path, name: str, stamp: str | None = None) -> Path:
    """A new `<parent>/<YYYYmmdd-HHMMSS>-<name>`; never reuses an existing directory."""
    parent = check_runs_dir(parent)
    base = f"{stamp or time.strftime('%Y%m%d-%H%M%S')}-{name}"
    for i in range(1, 10_000):
        path = parent / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise write_error(e, f"cannot create a run directory under {parent}") from None
    raise UserError(f"could not create a new run directory under {parent}: 10,000 runs named {base} already")


class RunLock:
    """`RUN/.lock` holds the host and PID of the process training in RUN; a second writer is
    refused. A lock whose process is gone (kill -9, a crash, a reboot) is stale and taken over.

    Reading the holder and writing ours is one step: every acquire and release does it under
    flock() on the lock file itself, so two processes can never both judge the file free (an
    unlocked check let a second process delete a just-created, still empty lock as stale)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.held = False

    def holder(self) -> tuple[str, int] | None:
        """(host, pid) of a live holder on this host, None when unlocked or stale."""
        try:
            return _live_holder(self.path.read_text())
        except OSError:
            return None

    def acquire(self) -> "RunLock":
        me = f"{socket.gethostname()} {os.getpid()}\n".encode()
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            except OSError as e:
                raise write_error(e, f"cannot lock {self.path.parent}") from None
            try:
                with _exclusive(fd):
                    if not _same_file(fd, self.path):
                        continue  # released (unlinked) while we waited: try the file now there
                    held = _live_holder(_read_fd(fd))
                    if held is not None and held[1] != os.getpid():
                        raise UserError(
                            f"{self.path.parent} is being trained by process {held[1]} on {held[0]}; wait for it to end or "
                            f"stop it (kill -INT {held[1]}) first. If no such process exists, delete {self.path}"
                        )
                    try:  # free, or stale (its process is gone): ours now
                        os.ftruncate(fd, 0)
                        os.lseek(fd, 0, os.SEEK_SET)
                        if os.write(fd, me) != len(me):
                            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                        os.fsync(fd)
                    except OSError as e:
                        self.path.unlink(missing_ok=True)  # never leave an empty or half-written lock
                        raise write_error(e, f"cannot lock {self.path.parent}") from None
                    self.held = True
                    return self
            finally:
                os.close(fd)
        raise UserError(f"could not lock {self.path.parent}: another process keeps taking the lock")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return  # gone already (the run directory was deleted)
        try:
            with _exclusive(fd):
                held = _live_holder(_read_fd(fd))
                if _same_file(fd, self.path) and (held is None or held[1] == os.getpid()):
                    self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def write_error(e: OSError, doing: str) -> UserError:
    """What to tell when `doing` (e.g. "cannot lock runs/x") failed with `e`: a full disk is a
    fault (exit 1); no permission is the user's to fix (exit 2)."""
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return UserError(f"{doing}: the disk is full. Free some space, then run the command again", exit_code=1)
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"{doing}: {e.strerror} (you may not write there); make it writable, or use a directory you may write to")
    return UserError(f"{doing}: {e.strerror or e}", exit_code=1)


@contextmanager
def _exclusive(fd: int) -> Iterator[None]:
    """flock() for the moment of a check and a write; where there is none (Windows), nothing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _read_fd(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 300).decode(errors="replace")


def _live_holder(text: str) -> tuple[str, int] | None:
    """(host, pid) from a lock's text when that process may be alive; None when empty or stale."""
    try:
        host, pid_text = text.split()[:2]
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname():
        return (host, pid)  # another machine's process: cannot be checked, so respected
    return (host, pid) if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return False
    return True


def iter_run_dirs(parent: str | Path) -> Iterator[Path]:
    """Every run directory (one with config.yaml or summary.json) under `parent`, also inside
    compare and probe directories, newest name first at each level."""
    parent = Path(parent)
    try:
        children = sorted((p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name, reverse=True)
    except OSError:
        return
    for child in children:
        if (child / "config.yaml").is_file() or (child / "checkpoints").is_dir():
            yield child
        yield from iter_run_dirs(child)


def write_atomic(path: Path, data: bytes) -> None:
    """Temporary file, flush and fsync, rename: a reader sees the old file or the new, never half.
    A kill -9 halfway leaves the temporary file behind (`partial_writes` finds it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a run's files should read like any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_UMASK = os.umask(0)
os.umask(_UMASK)

# write_atomic's temporary files: "." + the file's name + "." + mkstemp's 8 random characters + ".tmp"
_PARTIAL = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")


def partial_writes(run_dir: Path) -> list[Path]:
    """Temporary files of write_atomic in RUN and RUN/checkpoints, e.g. a `.last.pt.k2x9a_0q.tmp` as
    big as the checkpoint, left by a process killed while it wrote. Only safe to delete while no
    process trains in RUN (hold its RunLock)."""
    found = []
    for folder in (Path(run_dir), Path(run_dir) / "checkpoints"):
        try:
            found += [p for p in folder.iterdir() if _PARTIAL.fullmatch(p.name) and p.is_file()]
        except OSError:
            continue
    return sorted(found)


def clean_json(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(clean_json(obj), indent=2) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def first_reaching(history: list[dict[str, Any]], threshold: float, metric: str = "accuracy") -> dict[str, Any] | None:
    """The first validation row of metrics.jsonl whose `metric` reaches `threshold`; None if never."""
    for row in history:
        value = row.get(metric)
        if row.get("split") == "val" and value is not None and value >= threshold:
            return row
    return None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of RUN/metrics.jsonl ([] when there is none); a line cut short by a kill, or one
    a live run is halfway through writing, is skipped. OSError when the file cannot be read."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def resolve_run(path: str | Path, what: str = "run directory") -> Path:
    """A run directory as given, or `<runs dir>/<name>`: the newest finished run of that name
    there (run directories are `<time>-<name>`; finished = it has checkpoints/best.pt), so that a
    shipped config or a pipeline of commands can say `runs/imdb_lm` before the run exists."""
    path = Path(path)
    if path.is_dir():
        return path
    named = re.compile(rf"\d{{8}}-\d{{6}}-{re.escape(path.name)}(-\d+)?")
    parent = path.parent if path.parent.is_dir() else None
    found = sorted(
        (p for p in (parent.iterdir() if parent else ()) if named.fullmatch(p.name) and (p / "checkpoints" / "best.pt").is_file()),
        key=lambda p: p.name,
    )
    if not found:
        raise UserError(
            f"{what} not found: {path}, and there is no finished run named {path.name!r} under {path.parent}/ either; "
            "train it first, or name a run directory (`rnnlab runs` lists them)"
        )
    return found[-1]  # names start with the time: the newest sorts last
