"""How long `manage.py serve` (what `make run` runs) takes until it answers, and until healthy.

Cold: a new data folder (initdb, first migrate, the admin made). Warm: the same folder again, the
case a developer meets on every later `make run`. Each is measured from process start to the
first 200 from /livez (the web answers) and from /healthz (a Celery worker answers too), with
the embedded servers stopped in between.

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


def _wait_for_200(url: str, process: subprocess.Popen[bytes]) -> None:
    while True:
        if process.poll() is not None:
            raise RuntimeError("serve exited before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)


def time_to_answer_and_health(var_dir: Path) -> tuple[float, float]:
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
        _wait_for_200(f"http://127.0.0.1:{port}/livez", process)
        answered = time.perf_counter() - started
        _wait_for_200(f"http://127.0.0.1:{port}/healthz", process)
        return answered, time.perf_counter() - started
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
            cold.append(time_to_answer_and_health(Path(folder)))
            warm.append(time_to_answer_and_health(Path(folder)))
    print(f"serve start-up, {runs} runs each (seconds, median [min-max])")
    print(f"{'case':<34}{'web answers':>20}{'healthy':>20}")
    for name, figures in (("cold: new data folder (baseline)", cold), ("warm: data folder reused", warm)):
        columns = []
        for values in zip(*figures, strict=True):
            columns.append(f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]")
        print(f"{name:<34}{columns[0]:>20}{columns[1]:>20}")


if __name__ == "__main__":
    main()
