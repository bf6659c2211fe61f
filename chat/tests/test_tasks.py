"""Chat's Celery tasks in real worker processes (the pool `make run` and compose start), on the
real Redis broker and the test database.

Each test starts its own workers on a queue of its own, so the suite's shared worker never
takes these tasks, and stops them before the test's database flush.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accounts.models import User
from accounts.tests.factories import UserFactory
from chat.models import Chat, Role
from chat.services.tree import chat_create, message_append
from chat.tasks import title_chat
from config.celery import app
from config.supervisor import worker_command
from conftest import process_environment
from providers.catalog import catalog_seed
from providers.testing.base import RecordedRequest, Say, reply
from providers.testing.openai_server import OpenAIServer

QUESTION = "How do I cook rice without a rice cooker? I only have a pot and a lid."
ANSWER = "Rinse the rice, then simmer one part rice in two parts water, covered, for 18 minutes."
# Only to stop waiting on something that went wrong: a worker starts in a few seconds.
GIVE_UP_SECONDS = 60


class Workers:
    """`celery worker` processes as `make run` starts them (pool and concurrency from the
    settings), each with its own name, all on one queue of their own."""

    def __init__(self) -> None:
        self.queue = f"test-{uuid.uuid4().hex}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, concurrency: int = 2, **environment: str) -> str:
        """Start one; returns its node name once it answers a ping."""
        name = f"{self.queue}-{len(self.processes)}@localhost"
        command = [*worker_command(concurrency), f"--queues={self.queue}", f"--hostname={name}"]
        process = subprocess.Popen(command, env=process_environment(**environment))
        self.processes.append(process)
        wait_until(lambda: app.control.ping(destination=[name], timeout=0.5), "the worker to answer", process)
        return name

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    try:
        yield started
    finally:
        started.stop_all()


def wait_until(condition: Callable[[], Any], what: str, worker: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while not condition():
        assert worker is None or worker.poll() is None, f"the worker exited while waiting for {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def chat_with_first_exchange(owner: User) -> Chat:
    chat = chat_create(owner=owner)
    asked = message_append(
        chat=chat, parent=None, role=Role.USER, content=[{"type": "text", "text": QUESTION}], text=QUESTION
    )
    message_append(
        chat=chat, parent=asked, role=Role.ASSISTANT, content=[{"type": "text", "text": ANSWER}], text=ANSWER
    )
    return chat


def title_requests(server: OpenAIServer) -> list[RecordedRequest]:
    return [request for request in server.requests if request.path == "/v1/chat/completions"]


@pytest.mark.django_db(transaction=True)
def test_workers_run_tasks_on_the_threads_pool_and_give_each_tasks_connection_back(workers: Workers) -> None:
    # One pooled connection for four threads: a thread that kept its connection after a task
    # would leave the others waiting out DATABASE_POOL_TIMEOUT, and their tasks would fail.
    name = workers.start(concurrency=4, DATABASE_POOL_MIN="1", DATABASE_POOL_MAX="1", DATABASE_POOL_TIMEOUT="5")
    stats = app.control.inspect(destination=[name], timeout=5).stats()[name]
    assert stats["pool"]["implementation"] == "celery.concurrency.thread:TaskPool"
    assert stats["pool"]["max-concurrency"] == 4

    # Chats that do not exist: each task is one read of the database, and nothing to title.
    results = [title_chat.apply_async((str(uuid.uuid4()),), queue=workers.queue) for _ in range(40)]

    assert [result.get(timeout=GIVE_UP_SECONDS) for result in results] == [""] * 40


@pytest.mark.django_db(transaction=True)
def test_a_title_task_of_a_killed_worker_is_delivered_again(openai_fake: OpenAIServer, workers: Workers) -> None:
    owner = UserFactory()  # first: it restores the default tiers a flush took, which the catalog opens
    catalog_seed()
    chat = chat_with_first_exchange(owner)
    # The first title request gets its headers and then nothing until the fake stops, so the
    # first worker is surely inside the task when it is killed; the second request is answered.
    openai_fake.script(reply(Say("Never sent"), stall_after=0), reply(Say("Cooking rice in a pot")))
    # With the default visibility timeout: a short one would hand the stalled task back to this
    # same worker before it is killed.
    workers.start()
    first = workers.processes[0]
    result = title_chat.apply_async((str(chat.pk),), queue=workers.queue)
    wait_until(lambda: title_requests(openai_fake), "the title request", first)

    first.send_signal(signal.SIGKILL)
    first.wait()
    assert Chat.objects.get(pk=chat.pk).title == ""
    # This one takes back what was taken over two seconds ago, so the test need not wait the
    # default five minutes. So short a timeout may also hand back its own run of the task (a
    # loaded machine can take longer than that): one thread makes such a copy wait for the run
    # to end, and it then finds the title written and asks no model.
    workers.start(concurrency=1, CELERY_VISIBILITY_TIMEOUT="2")

    assert result.get(timeout=GIVE_UP_SECONDS) == "Cooking rice in a pot"
    assert Chat.objects.get(pk=chat.pk).title == "Cooking rice in a pot"
    asked = title_requests(openai_fake)
    assert len(asked) == 2
    assert asked[0].body == asked[1].body  # the same task, run again from its start
