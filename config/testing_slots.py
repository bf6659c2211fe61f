"""A Redis logical database of its own for each concurrent test run.

Runs claim databases among 8-15 with an exclusive file per slot in the temp directory, the file
holding the claiming run's pid and what the database is for (the suite's own, or the fresh one
that the end-to-end tests give the servers they start). A slot whose run has died is taken over. Claiming needs no
server, so it happens while the settings load; the run's child processes (a Celery worker,
`serve`) inherit the slot through `ARBOR_TEST_REDIS_DB` instead of claiming another.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from config.embedded.base import pid_is_alive

FIRST_SLOT = 8
SLOTS = 8  # Redis has 16 logical databases by default; 0-7 stay for development and benches
SLOT_VARIABLE = "ARBOR_TEST_REDIS_DB"


def _claims_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"arbor-test-redis-slots-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _try_claim(path: Path, claim: str) -> bool:
    """Take the slot file for `claim` ("<run pid> <purpose>"): free, already ours, or its run died."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        try:
            held = path.read_text()
        except OSError:
            held = ""
        if held == claim:
            return True
        owner = held.split(" ", 1)[0]
        if owner.isdigit() and pid_is_alive(int(owner)):
            return False
        # A dead run's slot, or a claim still being written: only the remover of this exact
        # file may retry, so two runs never both take it over.
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return _try_claim(path, claim)
    with os.fdopen(descriptor, "w") as claimed:
        claimed.write(claim)
    return True


def redis_test_database(run: int, *, purpose: str = "suite", folder: Path | None = None) -> int:
    """A Redis database of test run `run` (the run's pid) for `purpose` ("suite": the tests'
    own; "serve": the servers the end-to-end tests start fresh): inherited, claimed, or, when
    all slots are busy, shared by pid (a collision is then possible and said on stdout)."""
    variable = SLOT_VARIABLE if purpose == "suite" else f"{SLOT_VARIABLE}_{purpose.upper()}"
    inherited = os.environ.get(variable)
    if inherited and inherited.isdigit():
        return int(inherited)
    folder = folder or _claims_folder()
    for offset in range(SLOTS):
        slot = FIRST_SLOT + (run + offset) % SLOTS
        if _try_claim(folder / f"db{slot}", f"{run} {purpose}"):
            break
    else:
        slot = FIRST_SLOT + run % SLOTS
        print(f"warning: all {SLOTS} Redis test databases are claimed; sharing database {slot}", flush=True)
    os.environ[variable] = str(slot)
    return slot
