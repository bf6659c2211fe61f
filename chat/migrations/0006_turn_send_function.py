"""A chat turn's common case in one statement: `chat_turn_send` admits the turn (the tier's
buckets, `accounts_turn_admit`; the spend quota, `usage_spend_admit`), locks the chat and
appends the exchange (the user's message and the reply placeholder), or refuses with nothing
written. `chat.services.turns.turn_send` is its only caller and keeps the turn's other cases
(a reply under an earlier message, a new root) in Python: for those it answers 'elsewhere'.

Before, the same work was 12 to 16 statements, each compiled and quoted by the web process."""

from django.db import migrations

FUNCTIONS = r"""
-- `status`:
--   'started'      the exchange is saved (a new chat when p_chat is NULL, else at the end of
--                  the chat's active branch); chat_*, path and depth say where;
--   'repeated'     a message of this user already has p_client_id and a reply: nothing done;
--   'rate_limited' a bucket refused: `refused` names it, remaining/capacity/rate its numbers now;
--   'disabled'     the account is disabled (or gone);
--   'quota'        the spend quota refused: `refused` is the period, `spend_limit` its limit;
--   'not_found'    no such chat of this user;
--   'elsewhere'    the parent is not the chat's active leaf, or has had children: the caller
--                  places the exchange itself (ranks and branch selections).
-- Every answer but 'started' writes nothing: a refusal after the admission rolls it back (a
-- subtransaction). Locks in the order of the Python path: buckets, ledger, then the chat.
-- The rows' columns not given here hold the models' defaults (chat.tests.test_turn_function).
CREATE OR REPLACE FUNCTION chat_turn_send(
    p_user bigint, p_chat uuid, p_parent uuid, p_new_chat uuid, p_question uuid, p_reply uuid,
    p_content jsonb, p_text text, p_client_id text, p_model text, p_reservation jsonb,
    p_tokens double precision, p_amount numeric, p_day date, p_month date, p_now timestamptz,
    p_root_path ltree,
    OUT status text, OUT refused text, OUT remaining double precision, OUT capacity double precision,
    OUT rate double precision, OUT spend_limit numeric, OUT chat_title text, OUT chat_default_model text,
    OUT chat_instructions text, OUT chat_message_count integer, OUT path text, OUT depth integer
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_chat record;
    v_path ltree;
    v_depth integer;
BEGIN
    IF p_client_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM chat_message AS sent
        JOIN chat_chat AS c ON c.id = sent.chat_id
        JOIN chat_message AS answer ON answer.parent_id = sent.id AND answer.role = 'assistant'
        WHERE c.owner_id = p_user AND sent.client_id = p_client_id
    ) THEN
        status := 'repeated';
        RETURN;
    END IF;
    BEGIN
        SELECT a.refused, a.remaining, a.capacity, a.rate INTO refused, remaining, capacity, rate
        FROM accounts_turn_admit(p_user, p_tokens, NULL) AS a;
        IF refused IS NOT NULL THEN
            status := 'rate_limited';
            RETURN;  -- it took nothing
        END IF;
        SELECT s.refused, s.spend_limit INTO refused, spend_limit
        FROM usage_spend_admit(p_user, p_amount, p_day, p_month, p_now) AS s;
        IF refused IS NOT NULL THEN
            status := CASE WHEN refused = 'disabled' THEN 'disabled' ELSE 'quota' END;
            RAISE EXCEPTION USING ERRCODE = 'AR003';
        END IF;
        IF p_chat IS NULL THEN
            v_path := p_root_path;
            v_depth := 0;
            -- The chat's client_id: a racing copy of this send fails on (owner, client_id).
            INSERT INTO chat_chat (
                id, owner_id, title, default_model, instructions, visibility, share_token, pinned, archived,
                forked_from_chat_id, forked_from_message_id, selected_root_id, active_leaf_id, root_count,
                message_count, created_at, updated_at, last_activity_at, deleted_at, client_id
            ) VALUES (
                p_new_chat, p_user, '', p_model, '', 'private', NULL, false, false,
                NULL, NULL, p_question, p_reply, 1,
                2, p_now, p_now, p_now, NULL, p_client_id
            );
            chat_title := '';
            chat_default_model := p_model;
            chat_instructions := '';
            chat_message_count := 2;
        ELSE
            SELECT c.active_leaf_id, c.title, c.default_model, c.instructions INTO v_chat
            FROM chat_chat AS c
            WHERE c.id = p_chat AND c.owner_id = p_user AND c.deleted_at IS NULL
            FOR UPDATE;
            IF NOT FOUND THEN
                status := 'not_found';
                RAISE EXCEPTION USING ERRCODE = 'AR003';
            END IF;
            -- The question becomes the leaf's first child: it continues the leaf's segment.
            UPDATE chat_message AS leaf SET child_count = 1, selected_child_id = p_question, selected_rank = 0
            WHERE leaf.id = p_parent AND leaf.id = v_chat.active_leaf_id AND leaf.child_count = 0
            RETURNING leaf.path, leaf.depth INTO v_path, v_depth;
            IF NOT FOUND THEN
                status := 'elsewhere';
                RAISE EXCEPTION USING ERRCODE = 'AR003';
            END IF;
            UPDATE chat_chat AS c
            SET message_count = c.message_count + 2, last_activity_at = p_now, updated_at = p_now,
                active_leaf_id = p_reply
            WHERE c.id = p_chat
            RETURNING c.message_count INTO chat_message_count;
            chat_title := v_chat.title;
            chat_default_model := v_chat.default_model;
            chat_instructions := v_chat.instructions;
        END IF;
        -- Both messages at once, the question already selecting the reply (the foreign keys are
        -- checked at commit).
        INSERT INTO chat_message (
            id, chat_id, parent_id, path, depth, rank, child_count, selected_child_id, selected_rank,
            role, content, text, model_id, provider, usage, reservation, time_to_first_token_ms,
            total_time_ms, finish_reason, status, error_code, error_message, client_id, vote, created_at
        ) VALUES (
            p_question, COALESCE(p_chat, p_new_chat), p_parent, v_path, v_depth + 1, 0, 1, p_reply, 0,
            'user', p_content, p_text, '', '', '{}', '{}', NULL,
            NULL, '', 'complete', '', '', p_client_id, 0, p_now
        ), (
            p_reply, COALESCE(p_chat, p_new_chat), p_question, v_path, v_depth + 2, 0, 0, NULL, NULL,
            'assistant', '[]', '', p_model, '', '{}', p_reservation, NULL,
            NULL, '', 'streaming', '', '', NULL, 0, p_now
        );
        status := 'started';
        path := v_path::text;
        depth := v_depth + 1;
    EXCEPTION WHEN SQLSTATE 'AR003' THEN
        NULL;  -- `status` says why; the admission is rolled back
    END;
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS chat_turn_send(
    bigint, uuid, uuid, uuid, uuid, uuid, jsonb, text, text, text, jsonb, double precision, numeric, date, date,
    timestamptz, ltree
);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_chat_client_id"),
        ("accounts", "0004_bucket_functions"),
        ("usage", "0003_spend_functions"),
    ]

    operations = [migrations.RunSQL(FUNCTIONS, DROP)]
