"""The token buckets' rules as SQL functions (`accounts.limits` calls them; so does a chat turn's
admission in `chat_turn_send`), so each change is one round trip of constant text and the
rules live in one place. The statements are those `accounts.limits` ran before, unchanged."""

from django.db import migrations

FUNCTIONS = r"""
-- The user's tier numbers for one bucket kind: (capacity, refill rate per second). No row: the
-- user is gone.
CREATE OR REPLACE FUNCTION accounts_bucket_rule(
    p_user bigint, p_kind text, OUT capacity double precision, OUT rate double precision
) LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_kind = 'messages' THEN
        SELECT tier.message_capacity, tier.messages_per_minute / 60 INTO capacity, rate
        FROM accounts_user AS member JOIN accounts_tier AS tier ON tier.id = member.tier_id
        WHERE member.id = p_user;
    ELSIF p_kind = 'tokens' THEN
        SELECT tier.token_capacity, tier.tokens_per_minute / 60 INTO capacity, rate
        FROM accounts_user AS member JOIN accounts_tier AS tier ON tier.id = member.tier_id
        WHERE member.id = p_user;
    ELSE
        RAISE EXCEPTION 'unknown bucket kind %', p_kind;
    END IF;
END $$;

-- Apply `p_delta` (positive takes, negative gives back) to one bucket, capped at capacity, in ONE
-- statement: PostgreSQL takes the row lock before it evaluates the update, so concurrent changes
-- queue and each sees the level the previous one committed. With `p_require`, only when the
-- bucket is open (capacity > 0) and holds `p_delta` after its refill: otherwise nothing is
-- written and NULL returned. A missing row is a full bucket. The clock is read once, before any
-- wait for the lock; GREATEST keeps updated_at from moving back past a change committed during
-- that wait (the waiter is credited no refill for its wait, never refill twice). NULL also when
-- the user is gone.
CREATE OR REPLACE FUNCTION accounts_bucket_change(
    p_user bigint, p_kind text, p_delta double precision, p_require boolean, p_now timestamptz
) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    v_rule record;
    v_at timestamptz := COALESCE(p_now, clock_timestamp());
    v_level double precision;
BEGIN
    SELECT * INTO v_rule FROM accounts_bucket_rule(p_user, p_kind);
    IF v_rule.capacity IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO accounts_usagebucket AS bucket (user_id, kind, tokens, updated_at)
    SELECT p_user, p_kind, LEAST(v_rule.capacity, v_rule.capacity - p_delta), v_at
    WHERE NOT p_require OR (v_rule.capacity > 0 AND v_rule.capacity >= p_delta)
    ON CONFLICT (user_id, kind) DO UPDATE
    SET tokens = LEAST(
            v_rule.capacity,
            LEAST(v_rule.capacity, bucket.tokens + v_rule.rate
                * GREATEST(0, EXTRACT(EPOCH FROM v_at - bucket.updated_at)::double precision)) - p_delta),
        updated_at = GREATEST(bucket.updated_at, v_at)
    WHERE NOT p_require OR (
        v_rule.capacity > 0
        AND LEAST(v_rule.capacity, bucket.tokens + v_rule.rate
            * GREATEST(0, EXTRACT(EPOCH FROM v_at - bucket.updated_at)::double precision)) >= p_delta)
    RETURNING bucket.tokens INTO v_level;
    RETURN v_level;
END $$;

-- One bucket without changing it: (capacity, rate per second, level now). No bucket row: full.
-- No row at all: the user is gone.
CREATE OR REPLACE FUNCTION accounts_bucket_level(
    p_user bigint, p_kind text, p_now timestamptz
) RETURNS TABLE (capacity double precision, rate double precision, level double precision)
LANGUAGE sql STABLE AS $$
    SELECT rule.capacity, rule.rate, COALESCE(LEAST(rule.capacity, bucket.tokens + rule.rate
        * GREATEST(0, EXTRACT(EPOCH FROM COALESCE(p_now, clock_timestamp()) - bucket.updated_at)::double precision)),
        rule.capacity)
    FROM accounts_bucket_rule(p_user, p_kind) AS rule
    LEFT JOIN accounts_usagebucket AS bucket ON bucket.user_id = p_user AND bucket.kind = p_kind
    WHERE rule.capacity IS NOT NULL
$$;

-- Admit a chat turn: take one message AND reserve `p_tokens`, or neither (the token refusal
-- rolls the message take back: a subtransaction, so the message bucket is exactly as it was).
-- Locks are always taken messages-then-tokens: no deadlocks. `refused` is NULL when admitted
-- (`remaining`: messages left), else the refusing kind with its bucket's numbers now, for the
-- wait (advisory: another request may take the refill first).
CREATE OR REPLACE FUNCTION accounts_turn_admit(
    p_user bigint, p_tokens double precision, p_now timestamptz,
    OUT refused text, OUT remaining double precision, OUT capacity double precision, OUT rate double precision
) LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        remaining := accounts_bucket_change(p_user, 'messages', 1, true, p_now);
        IF remaining IS NULL THEN
            refused := 'messages';
        ELSIF accounts_bucket_change(p_user, 'tokens', p_tokens, true, p_now) IS NULL THEN
            refused := 'tokens';
            RAISE EXCEPTION USING ERRCODE = 'AR001';  -- undo the message take
        END IF;
    EXCEPTION WHEN SQLSTATE 'AR001' THEN
        NULL;  -- `refused` says which; the takes are rolled back
    END;
    IF refused IS NOT NULL THEN
        SELECT level.capacity, level.rate, level.level INTO capacity, rate, remaining
        FROM accounts_bucket_level(p_user, refused, p_now) AS level;
    END IF;
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS accounts_turn_admit(bigint, double precision, timestamptz);
DROP FUNCTION IF EXISTS accounts_bucket_level(bigint, text, timestamptz);
DROP FUNCTION IF EXISTS accounts_bucket_change(bigint, text, double precision, boolean, timestamptz);
DROP FUNCTION IF EXISTS accounts_bucket_rule(bigint, text);
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_prompt_layers")]

    operations = [migrations.RunSQL(FUNCTIONS, DROP)]
