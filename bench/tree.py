"""Opening a 5,000-turn branched chat and switching branches: server time, p50 and p95.

The chat is built through the real services: 5,000 messages on the main line, and every 100th
user message edited twice, each edit with a 10-message reply chain of its own (so the tree has
5,000 + 100 x 22 messages and 100 branch points). Measured, against the same rows:
- ltree segments (Arbor): the active branch in one query; a switch: the selections along the
  line persisted and the new active leaf found (the client already holds the whole tree, so it
  redraws without another round trip); the whole tree as JSON text built by PostgreSQL;
- baseline, an adjacency list: the active branch by a recursive CTE following selected_child;
  a switch as one UPDATE of the parent's selection then the CTE walk to the new leaf.

    .venv/bin/python -m bench.tree [--turns 5000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import django

BASELINE_BRANCH = """
WITH RECURSIVE branch AS (
    SELECT m.id, m.selected_child_id, m.text, m.content, m.role, m.status, 1 AS step
    FROM chat_message m JOIN chat_chat c ON c.selected_root_id = m.id WHERE c.id = %(chat)s
  UNION ALL
    SELECT m.id, m.selected_child_id, m.text, m.content, m.role, m.status, b.step + 1
    FROM chat_message m JOIN branch b ON m.id = b.selected_child_id
)
SELECT id, text, content, role, status FROM branch ORDER BY step
"""

# The new leaf after a switch: the same walk, ids only.
BASELINE_LEAF = """
WITH RECURSIVE branch AS (
    SELECT m.id, m.selected_child_id, 1 AS step
    FROM chat_message m JOIN chat_chat c ON c.selected_root_id = m.id WHERE c.id = %(chat)s
  UNION ALL
    SELECT m.id, m.selected_child_id, b.step + 1 FROM chat_message m JOIN branch b ON m.id = b.selected_child_id
)
SELECT id FROM branch ORDER BY step DESC LIMIT 1
"""


def _timed(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    action()  # warm: the first call pays for cold caches and plans
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def build(turns: int) -> tuple[object, list[object]]:
    from accounts.models import User
    from chat.models import Role
    from chat.services.tree import chat_create, message_append, message_edit

    owner = User.objects.create_user(f"bench-{time.time_ns()}@example.com", "bench-password-123")
    chat = chat_create(owner=owner, title="bench")
    parent = None
    edited = []
    for index in range(turns):
        role = Role.USER if index % 2 == 0 else Role.ASSISTANT
        text = f"message {index} " + "lorem ipsum " * 8
        message = message_append(
            chat=chat, parent=parent, role=role, content=[{"type": "text", "text": text}], text=text
        )
        if role == Role.USER and index % 100 == 0:
            edited.append(message)
        parent = message
    last_leaf = parent
    branches = []
    for original in edited:
        for version in range(2):
            edit = message_edit(message=original, content=[], text=f"edit {version}")
            reply = edit
            for step in range(10):
                reply = message_append(
                    chat=chat, parent=reply, role=Role.ASSISTANT if step % 2 == 0 else Role.USER, content=[]
                )
            branches.append(edit)
    branches.append(last_leaf)  # back to the main line at the end
    return chat, [*edited, *branches]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=30)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    django.setup()
    from django.db import connection

    from chat.models import Chat, Message
    from chat.selectors import active_branch, active_branch_rows, chat_tree_json
    from chat.services.tree import message_switch

    started = time.perf_counter()
    chat, switch_targets = build(options.turns)
    total = Message.objects.filter(chat=chat).count()
    seconds = time.perf_counter() - started
    print(f"built {total} messages ({options.turns}-turn main line, 100 branch points) in {seconds:.0f}s")

    def fresh() -> Chat:
        return Chat.objects.select_related("active_leaf").get(pk=chat.pk)

    def baseline_branch() -> list[tuple[object, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(BASELINE_BRANCH, {"chat": chat.pk})
            return cursor.fetchall()

    # Both answer the same branch before anything is timed.
    assert [message.pk for message in active_branch(fresh())] == [row[0] for row in baseline_branch()]
    assert [row[0] for row in active_branch_rows(fresh())] == [row[0] for row in baseline_branch()]

    deep_targets = [Message.objects.get(pk=target.pk) for target in switch_targets]
    rotation = {"next": 0}

    def arbor_switch_only() -> None:
        target = deep_targets[rotation["next"] % len(deep_targets)]
        rotation["next"] += 1
        message_switch(message=target)  # persists the selections and finds the new active leaf

    def baseline_switch_only() -> None:
        target = deep_targets[rotation["next"] % len(deep_targets)]
        rotation["next"] += 1
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE chat_message SET selected_child_id = %s WHERE id = %s", [target.pk, target.parent_id]
            )
            cursor.execute(BASELINE_LEAF, {"chat": chat.pk})
            cursor.fetchone()

    rows = [
        ("open: active branch, Arbor (ltree segments)", _timed(lambda: active_branch_rows(fresh()), options.repeat)),
        ("open: active branch, baseline (recursive CTE)", _timed(baseline_branch, options.repeat)),
        ("open: whole tree as JSON for the client (Arbor)", _timed(lambda: chat_tree_json(fresh()), options.repeat)),
        ("switch (persist, find new leaf), Arbor", _timed(arbor_switch_only, options.repeat)),
        ("switch (persist, find new leaf), baseline", _timed(baseline_switch_only, options.repeat)),
    ]
    print(f"{total} messages; server time in ms over {options.repeat} runs")
    print(f"{'case':<48}{'p50':>8}{'p95':>8}")
    for name, (p50, p95) in rows:
        print(f"{name:<48}{p50:>8.1f}{p95:>8.1f}")
    Chat.objects.filter(pk=chat.pk).delete()


if __name__ == "__main__":
    main()
