"""Spend admission's rules as SQL functions (`usage.services.quotas` calls them; so does a chat
turn's admission in `chat_turn_send`): the user's limits now, and the reservation of a turn's
estimated cost in the day's and the month's ledger rows. One place for the rules, one round trip."""

from django.db import migrations

FUNCTIONS = r"""
-- The user's spend limits now: the tier's, replaced field by field by a live override (an
-- unlimited one lifts both). NULL limit: none. No row: the user is gone.
CREATE OR REPLACE FUNCTION usage_spend_limits(
    p_user bigint, p_now timestamptz
) RETURNS TABLE (active boolean, daily numeric, monthly numeric, overridden boolean)
LANGUAGE sql STABLE AS $$
    SELECT u.is_active,
           CASE WHEN live.is_live AND o.unlimited THEN NULL
                WHEN live.is_live THEN COALESCE(o.daily_limit, q.daily_limit) ELSE q.daily_limit END,
           CASE WHEN live.is_live AND o.unlimited THEN NULL
                WHEN live.is_live THEN COALESCE(o.monthly_limit, q.monthly_limit) ELSE q.monthly_limit END,
           live.is_live
    FROM accounts_user AS u
    LEFT JOIN usage_tierquota AS q ON q.tier_id = u.tier_id
    LEFT JOIN usage_quotaoverride AS o ON o.user_id = u.id
    CROSS JOIN LATERAL (SELECT o.id IS NOT NULL AND (o.expires_at IS NULL OR o.expires_at > p_now) AS is_live) AS live
    WHERE u.id = p_user
$$;

-- Reserve `p_amount` in the user's ledger row of the day and of the month, each with ONE
-- statement (`INSERT … ON CONFLICT DO UPDATE … WHERE spent + reserved + amount <= limit`):
-- PostgreSQL takes the row lock before it evaluates the condition, so concurrent turns queue and
-- each sees what the previous one committed. Day before month, always (no deadlocks); a month
-- refusal rolls the day's reservation back (a subtransaction). `refused`: NULL when admitted,
-- 'disabled' (inactive or gone), or the period ('day', 'month') with its `spend_limit`. An
-- amount of 0 (a free model, BYOK) reserves nothing and is never refused for money.
CREATE OR REPLACE FUNCTION usage_spend_admit(
    p_user bigint, p_amount numeric, p_day date, p_month date, p_now timestamptz,
    OUT refused text, OUT spend_limit numeric
) LANGUAGE plpgsql AS $$
DECLARE
    v_limits record;
BEGIN
    SELECT * INTO v_limits FROM usage_spend_limits(p_user, p_now);
    IF NOT FOUND OR NOT v_limits.active THEN
        refused := 'disabled';
        RETURN;
    END IF;
    IF p_amount <= 0 THEN
        RETURN;
    END IF;
    BEGIN
        INSERT INTO usage_spendledger AS ledger (user_id, period, start, spent, reserved)
        SELECT p_user, 'day', p_day, 0, p_amount
        WHERE v_limits.daily IS NULL OR p_amount <= v_limits.daily
        ON CONFLICT (user_id, period, start) DO UPDATE
        SET reserved = ledger.reserved + EXCLUDED.reserved
        WHERE v_limits.daily IS NULL OR ledger.spent + ledger.reserved + EXCLUDED.reserved <= v_limits.daily;
        IF NOT FOUND THEN
            refused := 'day';
            spend_limit := v_limits.daily;
            RETURN;
        END IF;
        INSERT INTO usage_spendledger AS ledger (user_id, period, start, spent, reserved)
        SELECT p_user, 'month', p_month, 0, p_amount
        WHERE v_limits.monthly IS NULL OR p_amount <= v_limits.monthly
        ON CONFLICT (user_id, period, start) DO UPDATE
        SET reserved = ledger.reserved + EXCLUDED.reserved
        WHERE v_limits.monthly IS NULL OR ledger.spent + ledger.reserved + EXCLUDED.reserved <= v_limits.monthly;
        IF NOT FOUND THEN
            refused := 'month';
            spend_limit := v_limits.monthly;
            RAISE EXCEPTION USING ERRCODE = 'AR002';  -- undo the day's reservation
        END IF;
    EXCEPTION WHEN SQLSTATE 'AR002' THEN
        NULL;
    END;
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS usage_spend_admit(bigint, numeric, date, date, timestamptz);
DROP FUNCTION IF EXISTS usage_spend_limits(bigint, timestamptz);
"""


class Migration(migrations.Migration):
    dependencies = [("usage", "0002_dashboard"), ("accounts", "0004_bucket_functions")]

    operations = [migrations.RunSQL(FUNCTIONS, DROP)]
