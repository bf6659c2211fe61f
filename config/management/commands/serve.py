from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config import preflight
from config.startup import StartupError
from config.supervisor import (
    Supervisor,
    child_environment,
    daphne_command,
    worker_command,
)

# What a shell reports for a command ended by Ctrl-C.
INTERRUPTED_EXIT_CODE = 130


class Command(BaseCommand):
    help = (
        "Run the whole product locally: migrate, load the default catalog, make a local admin if\n"
        "none, then daphne (HTTP and WebSocket) and a Celery worker until Ctrl-C. This is what\n"
        "`make run` does.\n"
        "Example: ARBOR_PORT=8080 python manage.py serve"
    )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = settings.ARBOR_HOST, settings.ARBOR_PORT
        problems = [preflight.port_problem(host, port)]
        try:
            preflight.require_services(settings)
        except StartupError as error:
            problems.append(str(error))
        if any(problems):
            raise StartupError("\n".join(problem for problem in problems if problem))

        try:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("seed_catalog", verbosity=0)
            call_command("recover_streams", verbosity=0)
            call_command("ensure_local_admin")
        except KeyboardInterrupt:
            raise SystemExit(INTERRUPTED_EXIT_CODE) from None

        supervisor = Supervisor(
            environment=child_environment(database_url=settings.DATABASE_URL, redis_url=settings.REDIS_URL),
            say=self.stdout.write,
        )
        supervisor.handle_stop_signals()
        supervisor.start("web", daphne_command(host, port))
        supervisor.start("worker", worker_command(settings.CELERY_WORKER_CONCURRENCY))
        # Ready means healthy: the web answers and a worker answers it (/healthz 200).
        if supervisor.wait_until_ready(f"http://{host}:{port}/healthz"):
            self.stdout.write(self.style.SUCCESS(f"\nArbor is running at http://{host}:{port}/  (Ctrl-C stops it)\n"))
        elif not supervisor.stopping and not supervisor.exited():
            self.stdout.write(self.style.WARNING(f"Arbor is up at http://{host}:{port}/ but not healthy: see /healthz"))
        code = supervisor.run_until_signal()
        self.stdout.write("Stopped.")
        if code:
            raise SystemExit(code)
