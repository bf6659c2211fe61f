"""What the embedded servers share: errors, the lock, process and socket helpers."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# sun_path is 108 bytes on Linux; leave room for the terminating NUL.
MAX_SOCKET_PATH = 100


class EmbeddedServiceError(Exception):
    """An embedded server cannot be started; the message is one line meant for a person."""


def package_folder(name: str) -> Path:
    """Where an installed package lives, without importing it (importing these has side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(f"the package {name} is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations)))


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Serialise start and stop between processes that share one data folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    # A server that exited but was never reaped (an init that does not reap orphans) is a
    # zombie: kill(0) still succeeds on it.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state != "Z"


def read_pid(pid_file: Path) -> int | None:
    """The first line of a pid file (PostgreSQL's postmaster.pid and Redis's agree on that)."""
    try:
        first_line = pid_file.read_text().splitlines()[0]
        return int(first_line.strip())
    except (FileNotFoundError, IndexError, ValueError):
        return None


def socket_folder(preferred: Path, socket_name: str) -> Path:
    """`preferred` when a socket there fits in sun_path, else a short folder named after it.

    A clone in a deep folder would otherwise fail with a cryptic bind error.
    """
    if len(str(preferred / socket_name)) <= MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"arbor-{digest}"
    short.mkdir(mode=0o755, exist_ok=True)
    return short


def tail(path: Path, lines: int = 20) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return []


def run_checked(
    args: list[str], *, what: str, log: Path | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run a server tool; on failure raise one line with the most telling line of its output."""
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode == 0:
        return result
    output = (result.stderr + result.stdout).splitlines() + (tail(log) if log else [])
    telling = [line for line in output if "FATAL" in line or "ERROR" in line or "error" in line]
    reason = (telling or output or [f"exit code {result.returncode}"])[-1].strip()
    raise EmbeddedServiceError(f"{what} failed: {reason}")
