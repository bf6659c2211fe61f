"""CPU of one chat turn where a socket's `send` spends it: saving the turn and preparing its
generation, in one database thread call (`chat.generation.begin.turn_begin`), with no model called;
and the end of a one-token reply (`--finish`): its save and its turn's settlement
(`chat.generation.finish.reply_save`).

Runs in this process against a fresh database (`arbor_bench_turn`), migrated and seeded as `make
run` seeds it, with OpenAI configured (a key and a URL that is never called). Each conversation
is a guest's: a first turn in a new chat, then replies at the end of it. Printed: CPU ms and SQL
statements per turn, beside a baseline in the same run: the same two messages written by two
plain INSERTs in one transaction (the least any turn costs the web process).

    .venv/bin/python -m bench.turn [--turns 300] [--conversation 10] [--profile 25] [--finish]

Statements are every round trip Django logs: a transaction's BEGIN, COMMIT and savepoints included.
"""

from __future__ import annotations

import argparse
import cProfile
import ipaddress
import os
import pstats
import statistics
import time
import uuid
from collections.abc import Callable

import django

DATABASE = "arbor_bench_turn"


def _database() -> None:
    """Point Django at a fresh database, migrated and seeded."""
    import psycopg
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from conftest import database_url_named

    with psycopg.connect(database_url_named(settings.DATABASE_URL, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DATABASE}"')
    connections["default"].close()
    connections["default"].settings_dict["NAME"] = DATABASE
    call_command("migrate", interactive=False, verbosity=0)
    call_command("seed_catalog", verbosity=0)
    _guests_unlimited()


def _guests_unlimited() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_tier SET message_capacity = 10000000, messages_per_minute = 10000000,"
            " token_capacity = 2000000000, tokens_per_minute = 2000000000 WHERE is_guest_default"
        )


def _arbor_turns(turns: int, conversation: int) -> tuple[Callable[[], None], list[str]]:
    """A callable that runs the next turn as the socket does (save, then prepare), and the list
    its replies' ids are appended to."""
    from chat.generation import generation_prepare_for
    from chat.services.turns import turn_send

    state: dict[str, object] = {"left": 0}
    replies: list[str] = []

    def turn() -> None:
        if not state["left"]:
            state.update(user=_guest(), chat=None, parent=None, left=conversation)
        started = turn_send(
            user=state["user"],
            chat_id=state["chat"],
            parent_id=state["parent"],
            content="Tell me about the weather in Lisbon in spring, briefly.",
            model_id="openai:gpt-5-mini",
            client_id=None,
            attachments=None,
        )
        reply = started.assistant_message
        generation_prepare_for(
            reply=reply, chat=started.chat, user=state["user"], parent=reply.parent, route=started.route
        )
        state.update(chat=str(started.chat.pk), parent=str(started.assistant_message.pk))
        state["left"] = int(state["left"]) - 1  # type: ignore[call-overload]
        replies.append(str(reply.pk))

    return turn, replies


def _finishes(turns: int, conversation: int) -> Callable[[], None]:
    """A callable that saves and settles the next one-token reply, as a generation's end does.
    The turns it finishes are sent beforehand (outside the measure), `turns` + 3 of them."""
    from django.conf import settings

    from chat.generation.finish import reply_save
    from chat.models import Status
    from chat.reply import Reply
    from providers.contract import TextDelta, Usage

    settings.CHAT_TITLES_AUTO = False  # a title is a model call of its own, not this save's
    make_turn, ids = _arbor_turns(turns + 3, conversation)
    for _ in range(turns + 3):
        make_turn()
    save = reply_save.func  # the database thread's function, without the event loop around it
    pending = list(ids)

    def finish() -> None:
        reply = Reply()
        started = time.monotonic()
        reply.first_token_at = started
        reply.frame_for(TextDelta("Sunny."))
        reply.usage = Usage(input_tokens=24, output_tokens=1)
        reply.finish_reason = "stop"
        reply.provider = "openai"
        assert save(pending.pop(0), reply, Status.COMPLETE, started=started, error=None) is not None

    return finish


def _baseline_turns() -> Callable[[], None]:
    """Two plain INSERTs of the same two messages, in one transaction."""
    from django.db import connection, transaction

    from chat.models import Message
    from chat.services.tree import chat_create

    chat = chat_create(owner=_guest())
    insert = (
        f"INSERT INTO {Message._meta.db_table} (id, chat_id, path, depth, rank, child_count, role, content, text,"
        " model_id, provider, usage, reservation, finish_reason, status, error_code, error_message, vote, created_at)"
        " VALUES (%s, %s, %s, 1, %s, 0, %s, '[]', %s, '', '', '{}', '{}', '', %s, '', '', 0, now())"
    )
    counter = {"rank": 0}

    def turn() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            for role, text, status in (("user", "Tell me…", "complete"), ("assistant", "", "streaming")):
                counter["rank"] += 1
                rank = counter["rank"]
                cursor.execute(insert, [uuid.uuid4(), chat.pk, f"r{rank}", rank, role, text, status])

    return turn


def _guest() -> object:
    from accounts.services import guest_create

    # Addresses from the documentation range, one per guest: the per-address limit never refuses.
    return guest_create(client_ip=str(ipaddress.IPv6Address(f"2001:db8::{uuid.uuid4().hex[:4]}")))


def _measure(turn: Callable[[], None], count: int) -> tuple[float, float]:
    """(CPU ms per turn, statements per turn) over `count` turns, after 3 warm ones."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        turn()
    connection.queries_log.clear()  # a full log (9,000 entries) would miscount
    with CaptureQueriesContext(connection) as queries:
        started = time.process_time()
        for _ in range(count):
            turn()
        cpu = time.process_time() - started
    return cpu / count * 1000, len(queries) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--conversation", type=int, default=10, help="turns per chat")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    parser.add_argument("--finish", action="store_true", help="also a one-token reply's save and settlement")
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    os.environ.setdefault("GUEST_CREATE_BURST", "1000000")
    os.environ.setdefault("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never called
    django.setup()
    _database()
    (arbor, _), baseline = _arbor_turns(options.turns, options.conversation), _baseline_turns()
    cases = {
        "baseline": "baseline: two INSERTs in one transaction",
        "arbor": "Arbor: save + prepare",
        "finish": "Arbor: a reply's save + settlement",
    }
    figures: dict[str, list[tuple[float, float]]] = {"baseline": [], "arbor": [], "finish": []}
    for _ in range(options.runs):
        figures["baseline"].append(_measure(baseline, options.turns))
        figures["arbor"].append(_measure(arbor, options.turns))
        if options.finish:
            figures["finish"].append(_measure(_finishes(options.turns, options.conversation), options.turns))
    print(f"{options.turns} turns per run, {options.runs} runs, {options.conversation} turns per chat")
    print("| case | CPU ms per turn (median [min-max]) | statements per turn |\n| --- | ---: | ---: |")
    for name, label in cases.items():
        if not figures[name]:
            continue
        cpu = [figure[0] for figure in figures[name]]
        print(f"| {label} | {statistics.median(cpu):.2f} [{min(cpu):.2f}-{max(cpu):.2f}] | {figures[name][0][1]:.1f} |")
    if options.profile:
        profile = cProfile.Profile()
        profile.runcall(lambda: [arbor() for _ in range(options.turns)])
        pstats.Stats(profile).sort_stats("cumulative").print_stats(options.profile)


if __name__ == "__main__":
    main()
