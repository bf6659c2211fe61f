"""How long `manage.py serve` (what `make run` runs) takes until it answers HTTP.

Cold: a new data folder (initdb, first migrate, the admin made). Warm: the same folder again, the
case a developer meets on every later `make run`. Each is measured from process start to the
first 200 from /livez, with the embedded servers stopped in between.

    .venv/bin/python -m bench.startup [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def time_to_first_answer(var_dir: Path) -> float:
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    environment.update(ARBOR_VAR_DIR=str(var_dir), ARBOR_PORT=str(port), DJANGO_SETTINGS_MODULE="config.settings.base")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=BASE_DIR,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError("serve exited before answering")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    cold, warm = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="arbor-bench-") as folder:
            cold.append(time_to_first_answer(Path(folder)))
            warm.append(time_to_first_answer(Path(folder)))
    print(f"serve until /livez answers, {runs} runs each (seconds)")
    print(f"{'case':<32}{'median':>8}{'min':>8}{'max':>8}")
    for name, figures in (("cold: new data folder (baseline)", cold), ("warm: data folder reused", warm)):
        print(f"{name:<32}{statistics.median(figures):>8.2f}{min(figures):>8.2f}{max(figures):>8.2f}")


if __name__ == "__main__":
    main()
