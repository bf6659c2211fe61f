from __future__ import annotations

import socket
import urllib.request
from argparse import ArgumentParser
from io import StringIO
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config import preflight
from config.health import health_report
from config.startup import StartupError
from config.supervisor import (
    Supervisor,
    child_environment,
    host_problem,
    listening_socket,
    worker_command,
)

# What a shell reports for a command ended by Ctrl-C.
INTERRUPTED_EXIT_CODE = 130


def _processes_problem(count: int) -> str | None:
    if count < 1:
        return f"WEB_PROCESSES={count}: at least one web process is needed"
    return None


def _listen(host: str, port: int) -> socket.socket:
    """The shared socket; a port taken since the preflight check still ends in one line."""
    try:
        return listening_socket(host, port)
    except OSError as error:
        raise StartupError(preflight.port_problem(host, port) or f"cannot listen on {host}:{port}: {error}") from None


def _processes(count: int) -> str:
    return "1 web process" if count == 1 else f"{count} web processes"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


class Command(BaseCommand):
    help = (
        "Run the whole product locally: migrate, load the default catalog, make a local admin if\n"
        "none, then WEB_PROCESSES daphne processes (HTTP and WebSocket, sharing ARBOR_PORT) and a\n"
        "Celery worker until Ctrl-C, starting a crashed one again. This is what `make run` does.\n"
        "Example: ARBOR_PORT=8080 WEB_PROCESSES=4 python manage.py serve"
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--web-only",
            action="store_true",
            help="Only the web processes: no migrations, catalog, local admin or Celery worker "
            "(the Docker image: compose runs those as services of their own).",
        )

    # The local admin's one-time login, printed beside the "running" line (prepare() runs before
    # the worker, whose banner would scroll it away).
    first_login = ""

    def handle(self, *args: Any, web_only: bool = False, **options: Any) -> None:
        host, port, count = settings.ARBOR_HOST, settings.ARBOR_PORT, settings.WEB_PROCESSES
        self.check_before_serving(host, port, count)
        if not web_only:
            self.prepare()

        supervisor = Supervisor(
            environment=child_environment(database_url=settings.DATABASE_URL, redis_url=settings.REDIS_URL),
            say=self.stdout.write,
        )
        supervisor.handle_stop_signals()
        supervisor.start_web(_listen(host, port), count)
        if not web_only:
            supervisor.start("worker", worker_command(settings.CELERY_WORKER_CONCURRENCY))
        self.report_readiness(supervisor, f"http://{host}:{port}", count, web_only=web_only)
        code = supervisor.run_until_signal()
        self.stdout.write("Stopped.")
        if code:
            raise SystemExit(code)

    def check_before_serving(self, host: str, port: int, count: int) -> None:
        problems = [_processes_problem(count), host_problem(host) or preflight.port_problem(host, port)]
        try:
            preflight.require_services(settings)
        except StartupError as error:
            problems.append(str(error))
        if any(problems):
            raise StartupError("\n".join(problem for problem in problems if problem))

    def prepare(self) -> None:
        try:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("seed_catalog", verbosity=0)
            call_command("recover_streams", verbosity=0)
            login = StringIO()
            call_command("ensure_local_admin", stdout=login)
            self.first_login = login.getvalue()
        except KeyboardInterrupt:
            raise SystemExit(INTERRUPTED_EXIT_CODE) from None

    def report_readiness(self, supervisor: Supervisor, base: str, count: int, *, web_only: bool) -> None:
        # Ready means healthy: a web process answers and a worker answers (what /healthz checks,
        # asked here in-process: polling /healthz logged an ERROR line for each 503 while the
        # worker started). With --web-only the worker runs elsewhere (and may start later): a
        # web answer is enough.
        def ready() -> bool:
            return _answers(f"{base}/livez") and (web_only or health_report()[0])

        running = f"{_processes(count)} on one port"
        healthy = supervisor.wait_until_ready(ready)
        if self.first_login:
            self.stdout.write("\n" + self.first_login.rstrip("\n"))
        if healthy:
            self.stdout.write(self.style.SUCCESS(f"\nArbor is running at {base}/  ({running}; Ctrl-C stops it)\n"))
        elif not supervisor.stopping and not supervisor.gave_up:
            self.stdout.write(self.style.WARNING(f"Arbor is up at {base}/ ({running}) but not healthy: see /healthz"))
