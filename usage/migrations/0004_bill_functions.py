"""Billing's rules as SQL functions, so that a reply's end (its save, `chat.generation.finish`)
bills it in the same single statement as it saves it: the reply's reservation is read there, by
that statement, and the estimate, the cost, the token bucket's settlement, the ledger and the usage
row follow from it. `usage.services` calls the same functions for every other generation (titles,
artifacts, suggestions, a recovered orphan), so the rules live in one place.

Before, a reply's end was BEGIN, its UPDATE, a savepoint, one statement of writes, its release and
COMMIT, with the rules computed by the web process between them."""

from django.db import migrations

FUNCTIONS = r"""
-- Release a turn's spend reservation (if any) and book `p_cost` to its day and month, creating
-- the rows when missing; without a reservation, to `p_day` and `p_month` (today and this month
-- in TIME_ZONE, from the caller). Unconditional: real usage is booked even past a limit. Nothing
-- written when there is nothing to release nor to book. Day before month, as admission locks.
CREATE OR REPLACE FUNCTION usage_spend_settle(
    p_user bigint, p_reservation jsonb, p_cost numeric, p_day date, p_month date
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_released numeric := COALESCE(NULLIF(p_reservation->>'spend_reserved', '')::numeric, 0);
    v_day date := p_day;
    v_month date := p_month;
BEGIN
    IF v_released > 0 AND COALESCE(p_reservation->>'spend_day', '') <> ''
            AND COALESCE(p_reservation->>'spend_month', '') <> '' THEN
        v_day := (p_reservation->>'spend_day')::date;
        v_month := (p_reservation->>'spend_month')::date;
    ELSE
        v_released := 0;
    END IF;
    IF v_released = 0 AND p_cost = 0 THEN
        RETURN;
    END IF;
    INSERT INTO usage_spendledger AS ledger (user_id, period, start, spent, reserved)
    VALUES (p_user, 'day', v_day, p_cost, 0)
    ON CONFLICT (user_id, period, start) DO UPDATE
    SET spent = ledger.spent + EXCLUDED.spent, reserved = GREATEST(0, ledger.reserved - v_released);
    INSERT INTO usage_spendledger AS ledger (user_id, period, start, spent, reserved)
    VALUES (p_user, 'month', v_month, p_cost, 0)
    ON CONFLICT (user_id, period, start) DO UPDATE
    SET spent = ledger.spent + EXCLUDED.spent, reserved = GREATEST(0, ledger.reserved - v_released);
END $$;

-- Record one generation: its usage row, its cost (the model's prices now, per million tokens; 0
-- for BYOK or a model not in the catalog) booked to the user's ledger (`usage_spend_settle`, which
-- releases the turn's reservation), and `p_tokens_settled` charged to the token bucket (negative:
-- given back). `p_tier_known`: `p_tier` is the user's tier as the caller read it; else it is read
-- here. A user gone leaves the row anonymous and books nothing. Returns the cost.
-- Locks: the bucket, then the ledger's day and month, as admission takes them.
CREATE OR REPLACE FUNCTION usage_record_write(
    p_user bigint, p_tier bigint, p_tier_known boolean, p_kind text, p_chat uuid, p_message uuid,
    p_model text, p_provider text, p_input bigint, p_output bigint, p_reasoning bigint,
    p_ttft integer, p_total integer, p_outcome text, p_byok boolean, p_reservation jsonb,
    p_tokens_settled double precision, p_now timestamptz, p_day date, p_month date
) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    v_tier bigint := p_tier;
    v_cost numeric := 0;
BEGIN
    IF NOT p_tier_known THEN
        SELECT member.tier_id INTO v_tier FROM accounts_user AS member WHERE member.id = p_user;
    END IF;
    IF NOT p_byok THEN
        -- Multiplied, not divided: numeric multiplication is exact, as the Decimal maths was.
        SELECT COALESCE((p_input * model.input_price_per_mtok + p_output * model.output_price_per_mtok)
                        * 0.000001, 0)
        INTO v_cost FROM providers_model AS model WHERE model.model_id = p_model;
        v_cost := COALESCE(v_cost, 0);
    END IF;
    IF p_tokens_settled <> 0 THEN
        PERFORM accounts_bucket_change(p_user, 'tokens', p_tokens_settled, false, NULL);
    END IF;
    IF v_tier IS NOT NULL THEN
        PERFORM usage_spend_settle(p_user, COALESCE(p_reservation, '{}'), v_cost, p_day, p_month);
    END IF;
    INSERT INTO usage_usagerecord (
        created_at, user_id, tier_id, kind, chat_id, message_id, model_id, provider, input_tokens,
        output_tokens, reasoning_tokens, cost, byok, ttft_ms, total_ms, outcome
    ) VALUES (
        p_now, CASE WHEN v_tier IS NOT NULL THEN p_user END, v_tier, p_kind, p_chat, p_message,
        left(p_model, 200), left(p_provider, 100), GREATEST(0, p_input), GREATEST(0, p_output),
        GREATEST(0, p_reasoning), v_cost, p_byok,
        -- GREATEST skips NULLs: an unknown time stays unknown
        CASE WHEN p_ttft IS NOT NULL THEN GREATEST(0, p_ttft) END,
        CASE WHEN p_total IS NOT NULL THEN GREATEST(0, p_total) END, left(p_outcome, 40)
    );
    RETURN v_cost;
END $$;

-- Bill one model call: the usage it is charged (what the provider reported; when it reported
-- nothing, an estimate — the request's size, the reservation's estimate of it when there is one,
-- and a token per four characters written — unless it failed before writing anything, which
-- costs nothing, as vendors bill it), the turn's reserved tokens settled against it (the excess
-- charged, the rest given back) and its usage row and cost recorded (`usage_record_write`).
-- BYOK models (`byok:` ids) cost nothing. Returns the usage charged and its cost.
CREATE OR REPLACE FUNCTION usage_call_bill(
    p_user bigint, p_tier bigint, p_tier_known boolean, p_kind text, p_chat uuid, p_message uuid,
    p_model text, p_provider text, p_input bigint, p_output bigint, p_reasoning bigint,
    p_written_chars integer, p_failed boolean, p_sent_tokens bigint, p_ttft integer, p_total integer,
    p_outcome text, p_reservation jsonb, p_now timestamptz, p_day date, p_month date,
    OUT input_tokens bigint, OUT output_tokens bigint, OUT reasoning_tokens bigint, OUT cost numeric
) LANGUAGE plpgsql AS $$
DECLARE
    v_reservation jsonb := COALESCE(p_reservation, '{}');
BEGIN
    input_tokens := p_input;
    output_tokens := p_output;
    reasoning_tokens := p_reasoning;
    IF p_input = 0 AND p_output = 0 AND NOT (p_failed AND p_written_chars = 0) THEN
        input_tokens := COALESCE((v_reservation->>'estimated_input_tokens')::bigint, p_sent_tokens);
        output_tokens := p_written_chars / 4;  -- integer division: CHARS_PER_TOKEN
        reasoning_tokens := 0;
    END IF;
    cost := usage_record_write(
        p_user, p_tier, p_tier_known, p_kind, p_chat, p_message, p_model, p_provider,
        input_tokens, output_tokens, reasoning_tokens, p_ttft, p_total, p_outcome, left(p_model, 5) = 'byok:',
        v_reservation,
        input_tokens + output_tokens - COALESCE((v_reservation->>'reserved_tokens')::double precision, 0),
        p_now, p_day, p_month
    );
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS usage_call_bill(
    bigint, bigint, boolean, text, uuid, uuid, text, text, bigint, bigint, bigint, integer, boolean, bigint,
    integer, integer, text, jsonb, timestamptz, date, date
);
DROP FUNCTION IF EXISTS usage_record_write(
    bigint, bigint, boolean, text, uuid, uuid, text, text, bigint, bigint, bigint, integer, integer, text,
    boolean, jsonb, double precision, timestamptz, date, date
);
DROP FUNCTION IF EXISTS usage_spend_settle(bigint, jsonb, numeric, date, date);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0003_spend_functions"),
        ("accounts", "0004_bucket_functions"),
        ("providers", "0002_base_urls_allow_single_label_hosts"),
    ]

    operations = [migrations.RunSQL(FUNCTIONS, DROP)]
