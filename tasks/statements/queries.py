"""The SQL of owner statements: every statement of the package, by the job that runs it.

- statements.generate (tasks.statements.build): the steps, run in order over temporary tables
  (`STEPS`; SQL text, not `text()` constants: each step reads the tables earlier ones made, so
  they are checked by running the build, tests/integration/test_statements_generate.py), and
  the helpers that write their largest-remainder arithmetic;
- statements.finalize (tasks.statements.finalize, deliver): locks, the journal entry, marks,
  the payout, the stored PDF and the email;
- `cmw statements render` (tasks.statements.render): a statement as its owner reads it.
"""

from __future__ import annotations

from sqlalchemy import text

from db.fragments import sql_list
from tasks.recurring.common import LIVE_STAY_STATUSES
from tasks.statements.money import EXPENSE_TYPES, INCOME_TYPES, REVENUE_TYPES

# -- statements.generate: the steps for SPEC 7.5's lines ------------------------

# Recurring owner charges: one line (- to the owner) per charge whose months include the
# period, on the statement of its owner and property (statements of a final month only when
# a revision is built). A charge billed on a final version is carried by it; the revision's
# difference step (LINES, below) keeps it from being billed twice.
RECURRING_LINES = """
INSERT INTO st_exp (key_id, line_type, ref_id, recurring_charge_id, description, amount,
                    sort_section, sort_date)
SELECT k.key_id, 'recurring_charge', c.id, c.id, c.description, -c.amount, 4, :ps
FROM finance.owner_recurring_charges c
JOIN st_keys k ON k.homeowner_id = c.homeowner_id AND k.property_id = c.property_id
WHERE NOT k.skip AND c.start_month <= :ps AND (c.end_month IS NULL OR c.end_month >= :ps)
"""

# The monthly minimum: in a month whose revenue lines (rent and owner fees) sum above zero, a
# management fee below the minimum is raised to it by one more line. Computed on what the
# month should carry in full (st_exp), so a revision carries only a change of the top-up.
MINIMUM_FEE_LINES = f"""
INSERT INTO st_exp (key_id, line_type, description, amount, sort_section)
SELECT k.key_id, 'management_fee',
       format('Minimum monthly management fee (%s)', k.minimum_fee),
       coalesce(e.charged, 0) - k.minimum_fee, 3
FROM st_keys k
LEFT JOIN (
    SELECT key_id,
           sum(amount) FILTER (WHERE line_type IN {sql_list(REVENUE_TYPES)}) AS revenue,
           -sum(amount) FILTER (WHERE line_type = 'management_fee') AS charged
    FROM st_exp GROUP BY key_id
) e USING (key_id)
WHERE NOT k.skip AND k.minimum_fee > 0 AND e.revenue > 0
  AND coalesce(e.charged, 0) < k.minimum_fee
"""


# The homeowner / property a by-hand run is limited to (an unknown one is the payload's error).
HOMEOWNER_EXISTS = text("SELECT EXISTS (SELECT 1 FROM directory.homeowners WHERE id = :id)")
PROPERTY_EXISTS = text("SELECT EXISTS (SELECT 1 FROM property.properties WHERE id = :id)")

# -- statements.generate: the steps --------------------------------------------------------


def _floor_div(a: str, b: str) -> str:
    """SQL floor division of bigint expressions with b > 0 (`/` truncates toward zero)."""
    # Cast: sum() of bigints is numeric, and numeric `/` would not be integer division.
    a, b = f"({a})::bigint", f"({b})::bigint"
    return f"({a} / {b} - CASE WHEN {a} % {b} < 0 THEN 1 ELSE 0 END)"


def _lr_quota(total: str, weight: str, denominator: str, prefix: str) -> str:
    """Floor of the exact quota and its remainder (in units of 1/denominator), as two columns."""
    quota = _floor_div(f"{total} * {weight}", denominator)
    return f"{quota} AS {prefix}_q, ({total} * {weight}) - {quota} * ({denominator}) AS {prefix}_r"


def _lr_share(prefix: str, total: str, partition: str, tiebreak: str) -> str:
    """The floor plus one cent for the parts with the largest remainders (ties: `tiebreak`)."""
    return (
        f"{prefix}_q + CASE WHEN row_number() OVER (PARTITION BY {partition}"
        f" ORDER BY {prefix}_r DESC, {tiebreak})"
        f" <= {total} - sum({prefix}_q) OVER (PARTITION BY {partition}) THEN 1 ELSE 0 END"
    )


# Owner ties (money.owner_tie_key): md5 of the item's id and the relationship's, bytewise; the
# part of nobody (rel_id NULL) loses every tie.
OWNER_TIE = 'rel_id IS NULL, md5(reservation_id::text || rel_id::text) COLLATE "C"'
COST_OWNER_TIE = 'rel_id IS NULL, md5(id::text || rel_id::text) COLLATE "C"'

# What makes two statement lines the same line, as one hashable value.
LINE_FINGERPRINT = (
    "format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', {t}.line_type, {t}.reservation_id,"
    " {t}.ticket_cost_id, {t}.adjustment_id, {t}.nights, {t}.amount, {t}.sort_order,"
    " {t}.description, {t}.recurring_charge_id, {t}.stay_channel_commission,"
    " {t}.stay_cleaning_fee, {t}.stay_other_fees, {t}.stay_taxes)"
)


def _month_closed(owner: str, day: str) -> str:
    """The owner's month of `day` is closed: a final statement exists for `owner`'s homeowner
    and property (a row alias) and that month. An unbilled line dated in a closed month is
    carried forward to the next draft."""
    return f"""EXISTS (
            SELECT 1 FROM finance.owner_statements s
            WHERE s.homeowner_id = {owner}.homeowner_id AND s.property_id = {owner}.property_id
              AND s.period_start = date_trunc('month', {day}::timestamp)::date
              AND s.status = 'final')"""


SCOPE = (
    "(CAST(:homeowner_id AS uuid) IS NULL OR {t}.homeowner_id = CAST(:homeowner_id AS uuid))"
    " AND (CAST(:property_id AS uuid) IS NULL OR {t}.property_id = CAST(:property_id AS uuid))"
)

TEMP_TABLES = ("st_drafts", "st_keys", "st_rel", "st_stays", "st_seg", "st_share", "st_exp",
               "st_prev", "st_lines", "st_heads", "st_ids", "st_new")  # fmt: skip

# The month's drafts in scope, locked (a concurrent finalize waits for us, or we for it) and
# kept aside: later steps join this small analysed table instead of trusting the planner's
# statistics of owner_statements, stale right after a bulk build.
LOCK_DRAFTS = f"""
CREATE TEMP TABLE st_drafts ON COMMIT DROP AS
WITH locked AS (
    SELECT s.id, s.homeowner_id, s.property_id FROM finance.owner_statements s
    WHERE s.status = 'draft' AND s.period_start = :ps AND {SCOPE.format(t="s")}
    ORDER BY s.id
    FOR UPDATE
)
SELECT * FROM locked
"""

# The statements of the month: one per homeowner and property with a relationship in force at
# some point of the month. `skip`: the month is final and no revision was asked for.
KEYS = f"""
CREATE TEMP TABLE st_keys ON COMMIT DROP AS
WITH k AS (
    SELECT r.homeowner_id, r.property_id,
           -- the reserve of the relationship in force last in the month
           (array_agg(r.reserve_amount ORDER BY r.start_date DESC, r.id DESC))[1]
               AS reserve_target,
           (array_agg(r.minimum_monthly_fee ORDER BY r.start_date DESC, r.id DESC))[1]
               AS minimum_fee
    FROM directory.homeowner_property_relationship r
    WHERE r.start_date < :pe AND (r.end_date IS NULL OR r.end_date > :ps)
      AND {SCOPE.format(t="r")}
    GROUP BY r.homeowner_id, r.property_id
),
this_month AS (
    SELECT s.homeowner_id, s.property_id,
           max(s.version) AS max_version,
           (array_agg(s.id ORDER BY s.version DESC) FILTER (WHERE s.status = 'final'))[1]
               AS final_id,
           max(s.version) FILTER (WHERE s.status = 'draft') AS draft_version
    FROM finance.owner_statements s
    WHERE s.period_start = :ps AND {SCOPE.format(t="s")}
    GROUP BY s.homeowner_id, s.property_id
),
last_final AS (
    -- the owner's running balance: the closing balance of the last statement finalized
    SELECT DISTINCT ON (s.homeowner_id, s.property_id)
           s.homeowner_id, s.property_id, s.closing_balance
    FROM finance.owner_statements s
    WHERE s.status = 'final' AND s.property_id IN (SELECT property_id FROM k)
    ORDER BY s.homeowner_id, s.property_id, s.finalized_at DESC, s.id DESC
)
SELECT (row_number() OVER (ORDER BY k.homeowner_id, k.property_id))::int AS key_id,
       k.homeowner_id, k.property_id, k.reserve_target, k.minimum_fee,
       m.final_id,
       coalesce(m.draft_version, m.max_version + 1, 1) AS version,
       coalesce(f.closing_balance, 0)::numeric(12, 2) AS opening_balance,
       CASE WHEN m.final_id IS NULL THEN 'draft' ELSE 'revision' END AS mode,
       (m.final_id IS NOT NULL AND NOT :revise) AS skip
FROM k
LEFT JOIN this_month m USING (homeowner_id, property_id)
LEFT JOIN last_final f USING (homeowner_id, property_id)
"""

# Every relationship of the properties in scope (co-owners too: they share each split).
RELATIONSHIPS = """
CREATE TEMP TABLE st_rel ON COMMIT DROP AS
SELECT r.id, r.homeowner_id, r.property_id,
       (r.ownership_pct * 100)::bigint AS w,
       (r.commission_pct * 100)::bigint AS cw,
       r.commission_pct, r.commission_base, r.revenue_recognition, r.start_date, r.end_date,
       r.cleaning_fee_to_owner, r.other_fees_to_owner,
       (r.commission_flat_per_stay * 100)::bigint AS flat_c, r.commission_flat_per_stay
FROM directory.homeowner_property_relationship r
WHERE r.property_id IN (SELECT property_id FROM st_keys WHERE NOT skip)
"""

# Live guest stays that can put rent on this month: nights in it, or a check-out in it (kept
# narrow, so later steps never go back to the big reservations table).
STAYS = f"""
CREATE TEMP TABLE st_stays ON COMMIT DROP AS
SELECT v.id, v.property_id, v.check_in, v.check_out, v.nights::bigint AS stay_nights,
       (v.gross_rent * 100)::bigint AS rent_c,
       (v.channel_commission * 100)::bigint AS chan_c,
       (v.cleaning_fee * 100)::bigint AS clean_c,
       (v.other_fees * 100)::bigint AS other_c,
       (v.taxes * 100)::bigint AS tax_c,
       v.source, coalesce(v.confirmation_code, 'stay') AS code
FROM reservations.reservations v
WHERE v.property_id IN (SELECT DISTINCT property_id FROM st_rel)
  AND v.reservation_type = 'guest'
  AND v.status IN {sql_list(LIVE_STAY_STATUSES)}
  AND v.check_in < :pe AND v.check_out >= :ps
"""

# Each stay's nights (all of them, not only this month's: the split across months is the
# stay's) in segments of one month and one set of relationships in force. Computed from spans
# between boundaries — check-in, each month start, each relationship start or end inside the
# stay — rather than night by night: a span has one month and one owner set throughout.
SEGMENTS = f"""
CREATE TEMP TABLE st_seg ON COMMIT DROP AS
WITH bounds AS (
    SELECT s.id, s.check_in AS day FROM st_stays s
    UNION
    SELECT s.id, g.m::date
    FROM st_stays s
    CROSS JOIN LATERAL generate_series(
        date_trunc('month', s.check_in::timestamp) + interval '1 month',
        (s.check_out - 1)::timestamp, interval '1 month') AS g(m)
    UNION
    SELECT s.id, r.start_date
    FROM st_stays s JOIN st_rel r ON r.property_id = s.property_id
    WHERE r.start_date > s.check_in AND r.start_date < s.check_out
    UNION
    SELECT s.id, r.end_date
    FROM st_stays s JOIN st_rel r ON r.property_id = s.property_id
    WHERE r.end_date > s.check_in AND r.end_date < s.check_out
),
spans AS (
    SELECT b.id, s.property_id, b.day,
           coalesce(lead(b.day) OVER (PARTITION BY b.id ORDER BY b.day), s.check_out) - b.day
               AS nights
    FROM bounds b JOIN st_stays s ON s.id = b.id
),
owned AS (
    SELECT sp.id, sp.day, sp.nights,
           coalesce(array_agg(r.id ORDER BY r.id) FILTER (WHERE r.id IS NOT NULL), '{{}}')
               AS owners,
           coalesce(sum(r.w), 0)::bigint AS wsum
    FROM spans sp
    LEFT JOIN st_rel r
      ON r.property_id = sp.property_id AND r.start_date <= sp.day
     AND (r.end_date IS NULL OR sp.day < r.end_date)
    GROUP BY sp.id, sp.day, sp.nights
),
seg AS (
    SELECT id AS reservation_id, date_trunc('month', day::timestamp)::date AS month, owners,
           min(wsum) AS wsum, min(day) AS first_night, sum(nights)::bigint AS nights
    FROM owned
    GROUP BY id, date_trunc('month', day::timestamp), owners
),
q AS (
    SELECT seg.*, s.rent_c, s.chan_c, s.clean_c, s.other_c, s.tax_c,
           {_lr_quota("s.rent_c", "seg.nights", "s.stay_nights", "rent")},
           {_lr_quota("s.chan_c", "seg.nights", "s.stay_nights", "chan")},
           {_lr_quota("s.clean_c", "seg.nights", "s.stay_nights", "clean")},
           {_lr_quota("s.other_c", "seg.nights", "s.stay_nights", "other")},
           {_lr_quota("s.tax_c", "seg.nights", "s.stay_nights", "tax")}
    FROM seg JOIN st_stays s ON s.id = seg.reservation_id
)
SELECT reservation_id, month, owners, wsum, first_night, nights,
       {_lr_share("rent", "rent_c", "reservation_id", "first_night")} AS rent_c,
       {_lr_share("chan", "chan_c", "reservation_id", "first_night")} AS chan_c,
       {_lr_share("clean", "clean_c", "reservation_id", "first_night")} AS clean_c,
       {_lr_share("other", "other_c", "reservation_id", "first_night")} AS other_c,
       {_lr_share("tax", "tax_c", "reservation_id", "first_night")} AS tax_c
FROM q
"""

# Each owned segment among its owners. When their shares sum to less than 100% the rest is an
# extra part of nobody's (rel_id NULL, ranked last), dropped after the split.
# The flat commission per stay rides on the stay's first segment (money.flat_fee_parts): its
# total is sum(flat x w) / max(sum(w), 100%) rounded half up, split by largest remainder with
# weights flat x w (the part of nobody weighs 0).
SHARES = f"""
CREATE TEMP TABLE st_share ON COMMIT DROP AS
WITH o AS (
    SELECT g.reservation_id, g.month, g.first_night, g.nights, g.rent_c AS seg_rent,
           g.chan_c AS seg_chan, g.clean_c AS seg_clean, g.other_c AS seg_other,
           g.tax_c AS seg_tax, r.id AS rel_id, r.w, greatest(g.wsum, 10000) AS wden,
           CASE WHEN g.first_night = s.check_in THEN r.flat_c * r.w ELSE 0 END AS fw
    FROM st_seg g
    CROSS JOIN LATERAL unnest(g.owners) AS u(rel_id)
    JOIN st_rel r ON r.id = u.rel_id
    JOIN st_stays s ON s.id = g.reservation_id
    UNION ALL
    SELECT g.reservation_id, g.month, g.first_night, g.nights, g.rent_c, g.chan_c, g.clean_c,
           g.other_c, g.tax_c, NULL::uuid, 10000 - g.wsum, 10000, 0
    FROM st_seg g
    WHERE g.wsum < 10000 AND cardinality(g.owners) > 0
),
f AS (
    SELECT o.*, (sum(fw) OVER (PARTITION BY reservation_id, first_night))::bigint AS fw_sum
    FROM o
),
t AS (
    SELECT f.*, {_floor_div("2 * fw_sum + wden", "2 * wden")} AS seg_flat,
           greatest(fw_sum, 1) AS fw_den
    FROM f
),
q AS (
    SELECT t.*,
           {_lr_quota("seg_rent", "w", "wden", "rent")},
           {_lr_quota("seg_chan", "w", "wden", "chan")},
           {_lr_quota("seg_clean", "w", "wden", "clean")},
           {_lr_quota("seg_other", "w", "wden", "other")},
           {_lr_quota("seg_tax", "w", "wden", "tax")},
           {_lr_quota("seg_flat", "fw", "fw_den", "flat")}
    FROM t
),
lr AS (
    SELECT reservation_id, month, nights, rel_id,
           {_lr_share("rent", "seg_rent", "reservation_id, first_night", OWNER_TIE)}
               AS rent_c,
           {_lr_share("chan", "seg_chan", "reservation_id, first_night", OWNER_TIE)}
               AS chan_c,
           {_lr_share("clean", "seg_clean", "reservation_id, first_night", OWNER_TIE)}
               AS clean_c,
           {_lr_share("other", "seg_other", "reservation_id, first_night", OWNER_TIE)}
               AS other_c,
           {_lr_share("tax", "seg_tax", "reservation_id, first_night", OWNER_TIE)}
               AS tax_c,
           {_lr_share("flat", "seg_flat", "reservation_id, first_night", OWNER_TIE)}
               AS flat_c
    FROM q
)
SELECT * FROM lr WHERE rel_id IS NOT NULL
"""

EXPECTED_TABLE = """
CREATE TEMP TABLE st_exp (
    key_id int NOT NULL,
    line_type text NOT NULL,
    ref_id uuid,
    reservation_id uuid,
    ticket_cost_id uuid,
    adjustment_id uuid,
    recurring_charge_id uuid,
    description text NOT NULL,
    nights int,
    amount numeric(12, 2) NOT NULL,
    sort_section int NOT NULL,
    sort_date date,
    stay_channel_commission numeric(12, 2),
    stay_cleaning_fee numeric(12, 2),
    stay_other_fees numeric(12, 2),
    stay_taxes numeric(12, 2)
) ON COMMIT DROP
"""

# Rent per statement and stay (carrying the statement's shares of the stay's channel
# commission, fees and taxes: the guest money finalize draws for it); the owner's cleaning and
# other fees per stay; channel commission per statement and channel; management commission
# per statement and terms; the flat commission per statement and flat amount. A relationship
# recognises by night (the segment's month) or at check-out (the check-out month, or the month
# of its own last day when it ended first). Management commission: the exact sum of pct x base
# over the line's stays, rounded half up once per line (in integers: cents x 10000).
STAY_LINES = f"""
INSERT INTO st_exp (key_id, line_type, ref_id, reservation_id, description, nights, amount,
                    sort_section, sort_date, stay_channel_commission, stay_cleaning_fee,
                    stay_other_fees, stay_taxes)
WITH rec AS (
    SELECT sh.reservation_id, sh.rent_c, sh.chan_c, sh.clean_c, sh.other_c, sh.tax_c,
           sh.flat_c, sh.nights, r.homeowner_id, r.property_id,
           r.cw, r.commission_pct, r.commission_base, r.commission_flat_per_stay,
           CASE WHEN r.cleaning_fee_to_owner THEN sh.clean_c ELSE 0 END AS owner_clean_c,
           CASE WHEN r.other_fees_to_owner THEN sh.other_c ELSE 0 END AS owner_other_c,
           CASE WHEN r.revenue_recognition = 'by_night' THEN sh.month
                ELSE date_trunc('month', least(s.check_out, coalesce(r.end_date - 1, s.check_out))
                                         ::timestamp)::date
           END AS rec_month
    FROM st_share sh
    JOIN st_rel r ON r.id = sh.rel_id
    JOIN st_stays s ON s.id = sh.reservation_id
),
keyed AS (
    SELECT k.key_id, rec.*
    FROM rec
    JOIN st_keys k ON k.homeowner_id = rec.homeowner_id AND k.property_id = rec.property_id
    WHERE rec.rec_month = :ps AND NOT k.skip
),
rent AS (
    SELECT key_id, reservation_id, sum(rent_c)::bigint AS rent_c, sum(nights)::int AS nights,
           sum(chan_c)::bigint AS chan_c, sum(clean_c)::bigint AS clean_c,
           sum(other_c)::bigint AS other_c, sum(tax_c)::bigint AS tax_c,
           sum(owner_clean_c)::bigint AS owner_clean_c,
           sum(owner_other_c)::bigint AS owner_other_c
    FROM keyed GROUP BY key_id, reservation_id
),
flat AS (
    SELECT key_id, commission_flat_per_stay, sum(flat_c)::bigint AS flat_c
    FROM keyed GROUP BY key_id, commission_flat_per_stay
),
channel AS (
    SELECT k.key_id, s.source, sum(k.chan_c)::bigint AS chan_c
    FROM keyed k JOIN st_stays s ON s.id = k.reservation_id
    GROUP BY k.key_id, s.source
),
fee AS (
    SELECT key_id, commission_pct, commission_base,
           sum(cw * CASE WHEN commission_base = 'gross_rent' THEN rent_c
                         ELSE rent_c - chan_c END)::bigint AS fee_x
    FROM keyed GROUP BY key_id, commission_pct, commission_base
)
SELECT r.key_id, 'rent', r.reservation_id, r.reservation_id,
       format('%s, %s to %s', s.code, s.check_in, s.check_out), r.nights, r.rent_c * 0.01,
       1, s.check_in, r.chan_c * 0.01, r.clean_c * 0.01, r.other_c * 0.01, r.tax_c * 0.01
FROM rent r JOIN st_stays s ON s.id = r.reservation_id
UNION ALL
SELECT r.key_id, f.line_type, r.reservation_id, r.reservation_id,
       format('%s, %s', s.code, f.label), NULL, f.amount_c * 0.01, 1, s.check_in,
       NULL, NULL, NULL, NULL
FROM rent r
JOIN st_stays s ON s.id = r.reservation_id
CROSS JOIN LATERAL (VALUES ('cleaning_fee', 'cleaning fee', r.owner_clean_c),
                           ('other_fee', 'other fees', r.owner_other_c))
    AS f (line_type, label, amount_c)
WHERE f.amount_c <> 0
UNION ALL
SELECT key_id, 'channel_fee', NULL, NULL, format('Channel commission, %s', source), NULL,
       -chan_c * 0.01, 2, NULL, NULL, NULL, NULL, NULL
FROM channel WHERE chan_c <> 0
UNION ALL
SELECT key_id, 'management_fee', NULL, NULL,
       format('Management commission, %s%% of %s', commission_pct,
              replace(commission_base, '_', ' ')), NULL,
       -(CASE WHEN fee_x < 0 THEN -1 ELSE 1 END
         * {_floor_div("abs(fee_x) + 5000", "10000")}) * 0.01,
       3, NULL, NULL, NULL, NULL, NULL
FROM fee WHERE abs(fee_x) >= 5000
UNION ALL
SELECT key_id, 'management_fee', NULL, NULL,
       format('Management fee, %s per stay', commission_flat_per_stay), NULL, -flat_c * 0.01,
       3, NULL, NULL, NULL, NULL, NULL
FROM flat WHERE flat_c <> 0
"""

# Owner-billable costs: of this month, or of an earlier closed month and never billed (carried
# forward, drafts only). Billed amount = amount x (1 + markup) rounded to cents, split among the
# owners in force on the cost date by ownership_pct (largest remainder).
COST_LINES = f"""
INSERT INTO st_exp (key_id, line_type, ref_id, ticket_cost_id, description, amount,
                    sort_section, sort_date)
WITH c AS (
    SELECT tc.id, tc.property_id, tc.cost_date, tc.ticket_id, tc.description, tc.amount,
           tc.markup_pct,
           (round(tc.amount * (1 + tc.markup_pct / 100), 2) * 100)::bigint AS total_c
    FROM service.ticket_costs tc
    WHERE tc.billable_to = 'owner' AND tc.cost_date >= :ps AND tc.cost_date < :pe
      AND tc.property_id IN (SELECT DISTINCT property_id FROM st_rel)
    UNION ALL
    SELECT tc.id, tc.property_id, tc.cost_date, tc.ticket_id, tc.description, tc.amount,
           tc.markup_pct,
           (round(tc.amount * (1 + tc.markup_pct / 100), 2) * 100)::bigint
    FROM service.ticket_costs tc
    WHERE tc.billable_to = 'owner' AND tc.statement_line_id IS NULL AND tc.cost_date < :ps
      AND tc.property_id IN (SELECT DISTINCT property_id FROM st_keys
                             WHERE NOT skip AND mode = 'draft')
      -- its month is closed for somebody (the exact test, per owner, is below)
      AND EXISTS (SELECT 1 FROM finance.owner_statements s
                  WHERE s.property_id = tc.property_id
                          AND s.period_start = date_trunc('month', tc.cost_date::timestamp)::date
                    AND s.status = 'final')
),
in_force AS (
    SELECT c.id, c.total_c, r.id AS rel_id, r.w,
           (sum(r.w) OVER (PARTITION BY c.id))::bigint AS wsum
    FROM c
    JOIN st_rel r
      ON r.property_id = c.property_id AND r.start_date <= c.cost_date
     AND (r.end_date IS NULL OR c.cost_date < r.end_date)
),
o AS (
    SELECT id, total_c, rel_id, w, greatest(wsum, 10000) AS wden FROM in_force
    UNION ALL
    SELECT DISTINCT id, total_c, NULL::uuid, 10000 - wsum, 10000::bigint
    FROM in_force WHERE wsum < 10000
),
q AS (SELECT o.*, {_lr_quota("total_c", "w", "wden", "cost")} FROM o),
shares AS (
    SELECT id, rel_id, {_lr_share("cost", "total_c", "id", COST_OWNER_TIE)} AS share_c
    FROM q
),
per_key AS (
    SELECT k.key_id, k.homeowner_id, k.property_id, k.mode, s.id, sum(s.share_c) AS share_c
    FROM shares s
    JOIN st_rel r ON r.id = s.rel_id
    JOIN st_keys k ON k.homeowner_id = r.homeowner_id AND k.property_id = r.property_id
    WHERE NOT k.skip
    GROUP BY k.key_id, k.homeowner_id, k.property_id, k.mode, s.id
)
SELECT pk.key_id, 'expense', tc.id, tc.id,
       format('%s%s, %s: %s%s', coalesce(tc.description, 'Cost'),
              ' (' || t.ticket_number || ')', tc.cost_date, tc.amount,
              CASE WHEN tc.markup_pct > 0 THEN format(' + %s%% markup', tc.markup_pct) END),
       -pk.share_c * 0.01, 4, tc.cost_date
FROM per_key pk
JOIN service.ticket_costs tc ON tc.id = pk.id
LEFT JOIN service.tickets t ON t.id = tc.ticket_id
WHERE CASE
    WHEN tc.cost_date >= :ps THEN
        -- not already billed to this owner on another month's final statement
        NOT EXISTS (
            SELECT 1 FROM finance.owner_statement_lines l
            JOIN finance.owner_statements s ON s.id = l.statement_id
            WHERE l.ticket_cost_id = tc.id AND s.homeowner_id = pk.homeowner_id
              AND s.property_id = pk.property_id AND s.status = 'final'
              AND s.period_start <> :ps)
    ELSE
        -- carried forward: never billed to this owner, and its own month is closed
        pk.mode = 'draft'
        AND NOT EXISTS (
            SELECT 1 FROM finance.owner_statement_lines l
            JOIN finance.owner_statements s ON s.id = l.statement_id
            WHERE l.ticket_cost_id = tc.id AND s.homeowner_id = pk.homeowner_id
              AND s.property_id = pk.property_id AND s.status = 'final')
        AND {_month_closed("pk", "tc.cost_date")}
    END
"""

# Manual adjustments (finance.owner_adjustments), with the same month / carry-forward rules.
ADJUSTMENT_LINES = f"""
INSERT INTO st_exp (key_id, line_type, ref_id, adjustment_id, description, amount,
                    sort_section, sort_date)
SELECT k.key_id, 'adjustment', a.id, a.id, a.description, a.amount, 5, a.adjustment_date
FROM finance.owner_adjustments a
JOIN st_keys k ON k.homeowner_id = a.homeowner_id AND k.property_id = a.property_id
WHERE NOT k.skip AND a.adjustment_date < :pe AND CASE
    WHEN a.adjustment_date >= :ps THEN
        a.statement_line_id IS NULL OR EXISTS (
            SELECT 1 FROM finance.owner_statement_lines l
            JOIN finance.owner_statements s ON s.id = l.statement_id
            WHERE l.id = a.statement_line_id AND s.period_start = :ps)
    ELSE
        k.mode = 'draft' AND a.statement_line_id IS NULL
        AND {_month_closed("k", "a.adjustment_date")}
    END
"""

# What the final versions of a revised month already carry, per line identity: the stay, cost
# or adjustment it is about, else (commission lines) its description, which is stable.
PREVIOUS = f"""
CREATE TEMP TABLE st_prev ON COMMIT DROP AS
SELECT k.key_id, l.line_type,
       coalesce(coalesce(l.reservation_id, l.ticket_cost_id, l.adjustment_id,
                         l.recurring_charge_id)::text, l.description) AS line_key,
       coalesce(l.reservation_id, l.ticket_cost_id, l.adjustment_id, l.recurring_charge_id)
           AS ref_id,
       sum(l.amount) AS amount, sum(l.nights)::int AS nights,
       (array_agg(l.description ORDER BY s.version))[1] AS description,
       sum(l.stay_channel_commission) AS stay_channel_commission,
       sum(l.stay_cleaning_fee) AS stay_cleaning_fee,
       sum(l.stay_other_fees) AS stay_other_fees, sum(l.stay_taxes) AS stay_taxes
FROM st_keys k
JOIN finance.owner_statements s
  ON s.homeowner_id = k.homeowner_id AND s.property_id = k.property_id
 AND s.period_start = :ps AND s.status = 'final'
JOIN finance.owner_statement_lines l ON l.statement_id = s.id
WHERE k.mode = 'revision' AND NOT k.skip
  AND l.line_type IN {sql_list(INCOME_TYPES)}
GROUP BY k.key_id, l.line_type,
         coalesce(coalesce(l.reservation_id, l.ticket_cost_id, l.adjustment_id,
                           l.recurring_charge_id)::text, l.description),
         coalesce(l.reservation_id, l.ticket_cost_id, l.adjustment_id, l.recurring_charge_id)
"""

# A draft's lines are what it should have; a revision's, the non-zero differences from what the
# month's final versions carry (lines about a stay, cost or adjustment say what changed; the
# commission lines keep their description, their identity).
LINES = """
CREATE TEMP TABLE st_lines ON COMMIT DROP AS
SELECT e.key_id, e.line_type, e.reservation_id, e.ticket_cost_id, e.adjustment_id,
       e.recurring_charge_id, e.description, e.nights, e.amount, e.sort_section, e.sort_date,
       e.stay_channel_commission, e.stay_cleaning_fee, e.stay_other_fees, e.stay_taxes
FROM st_exp e JOIN st_keys k USING (key_id)
WHERE k.mode = 'draft'
UNION ALL
SELECT coalesce(e.key_id, p.key_id),
       coalesce(e.line_type, p.line_type),
       CASE WHEN coalesce(e.line_type, p.line_type) IN ('rent', 'cleaning_fee', 'other_fee')
            THEN coalesce(e.ref_id, p.ref_id) END,
       CASE WHEN coalesce(e.line_type, p.line_type) = 'expense'
            THEN coalesce(e.ref_id, p.ref_id) END,
       CASE WHEN coalesce(e.line_type, p.line_type) = 'adjustment'
            THEN coalesce(e.ref_id, p.ref_id) END,
       CASE WHEN coalesce(e.line_type, p.line_type) = 'recurring_charge'
            THEN coalesce(e.ref_id, p.ref_id) END,
       CASE WHEN coalesce(e.ref_id, p.ref_id) IS NULL THEN coalesce(e.description, p.description)
            WHEN e.key_id IS NULL THEN 'Revision, reversed: ' || p.description
            WHEN p.key_id IS NULL THEN 'Revision, added: ' || e.description
            ELSE 'Revision, changed: ' || e.description END,
       CASE WHEN e.nights - coalesce(p.nights, 0) > 0 THEN e.nights - coalesce(p.nights, 0) END,
       coalesce(e.amount, 0) - coalesce(p.amount, 0),
       coalesce(e.sort_section, CASE coalesce(e.line_type, p.line_type)
                                WHEN 'rent' THEN 1 WHEN 'cleaning_fee' THEN 1
                                WHEN 'other_fee' THEN 1 WHEN 'channel_fee' THEN 2
                                WHEN 'management_fee' THEN 3 WHEN 'expense' THEN 4
                                WHEN 'recurring_charge' THEN 4 ELSE 5 END),
       e.sort_date,
       -- rent lines: the change of the stay's shares the statement draws from the clearing
       CASE WHEN coalesce(e.line_type, p.line_type) = 'rent' THEN
           coalesce(e.stay_channel_commission, 0) - coalesce(p.stay_channel_commission, 0) END,
       CASE WHEN coalesce(e.line_type, p.line_type) = 'rent' THEN
           coalesce(e.stay_cleaning_fee, 0) - coalesce(p.stay_cleaning_fee, 0) END,
       CASE WHEN coalesce(e.line_type, p.line_type) = 'rent' THEN
           coalesce(e.stay_other_fees, 0) - coalesce(p.stay_other_fees, 0) END,
       CASE WHEN coalesce(e.line_type, p.line_type) = 'rent' THEN
           coalesce(e.stay_taxes, 0) - coalesce(p.stay_taxes, 0) END
FROM (SELECT e.*, coalesce(e.ref_id::text, e.description) AS line_key
      FROM st_exp e JOIN st_keys k USING (key_id) WHERE k.mode = 'revision') e
FULL JOIN (
    -- What the final versions drew of each stay. A rent line finalized before revision 0013
    -- has no shares (NULL): it drew the rent alone and posted the channel commission to 5000,
    -- so its revision carries no change of shares either (finalize then posts a change of the
    -- channel commission to 5000, as the final version did).
    SELECT p.key_id, p.line_type, p.line_key, p.ref_id, p.amount, p.nights, p.description,
           coalesce(p.stay_channel_commission, e.stay_channel_commission, 0)
               AS stay_channel_commission,
           coalesce(p.stay_cleaning_fee, e.stay_cleaning_fee, 0) AS stay_cleaning_fee,
           coalesce(p.stay_other_fees, e.stay_other_fees, 0) AS stay_other_fees,
           coalesce(p.stay_taxes, e.stay_taxes, 0) AS stay_taxes
    FROM st_prev p
    LEFT JOIN st_exp e
      ON e.key_id = p.key_id AND e.line_type = p.line_type AND e.reservation_id = p.ref_id
) p
  ON p.key_id = e.key_id AND p.line_type = e.line_type AND p.line_key = e.line_key
WHERE coalesce(e.amount, 0) <> coalesce(p.amount, 0)
   OR coalesce(e.stay_channel_commission, 0) <> coalesce(p.stay_channel_commission, 0)
   OR coalesce(e.stay_cleaning_fee, 0) <> coalesce(p.stay_cleaning_fee, 0)
   OR coalesce(e.stay_other_fees, 0) <> coalesce(p.stay_other_fees, 0)
   OR coalesce(e.stay_taxes, 0) <> coalesce(p.stay_taxes, 0)
"""

# Totals are the sums of the lines. A revision with no difference is not built.
HEADS = f"""
CREATE TEMP TABLE st_heads ON COMMIT DROP AS
WITH t AS (
    SELECT k.key_id, k.homeowner_id, k.property_id, k.version, k.final_id, k.mode,
           k.opening_balance, k.reserve_target,
           count(l.key_id) AS n_lines,
           coalesce(sum(l.amount) FILTER (WHERE l.line_type IN {sql_list(REVENUE_TYPES)}), 0)
               AS gross_revenue,
           coalesce(sum(l.amount) FILTER (WHERE l.line_type = 'channel_fee'), 0)
               AS channel_fees,
           coalesce(sum(l.amount) FILTER (WHERE l.line_type = 'management_fee'), 0)
               AS management_fees,
           coalesce(sum(l.amount) FILTER (WHERE l.line_type IN {sql_list(EXPENSE_TYPES)}), 0)
               AS expenses,
           coalesce(sum(l.amount) FILTER (WHERE l.line_type = 'adjustment'), 0) AS adjustments
    FROM st_keys k LEFT JOIN st_lines l USING (key_id)
    WHERE NOT k.skip
    GROUP BY k.key_id, k.homeowner_id, k.property_id, k.version, k.final_id, k.mode,
             k.opening_balance, k.reserve_target
),
n AS (
    SELECT t.*, gross_revenue + channel_fees + management_fees + expenses + adjustments
               AS net_income
    FROM t WHERE t.mode = 'draft' OR t.n_lines > 0
),
b AS (SELECT n.*, n.opening_balance + n.net_income AS before_payout FROM n)
SELECT b.*,
       greatest(0, b.before_payout - b.reserve_target) AS payout_amount,
       greatest(0, least(b.before_payout, b.reserve_target)) AS reserve_held,
       b.before_payout - greatest(0, b.before_payout - b.reserve_target) AS closing_balance
FROM b
"""

BALANCE_LINES = """
INSERT INTO st_lines (key_id, line_type, description, amount, sort_section)
SELECT key_id, 'reserve', format('Reserve held back (target %s)', reserve_target),
       reserve_held, 6
FROM st_heads WHERE reserve_target > 0
UNION ALL
SELECT key_id, 'payout', 'Payout', payout_amount, 7
FROM st_heads WHERE payout_amount > 0
"""

# Rebuilt drafts are updated in place (they keep their id and number); new ones are inserted.
# Two statements rather than one INSERT ... ON CONFLICT DO UPDATE, which would draw (and waste)
# a statement number from the sequence for every rebuilt draft.
UPDATE_DRAFTS = """
CREATE TEMP TABLE st_ids ON COMMIT DROP AS
WITH up AS (
    UPDATE finance.owner_statements s
    SET period_end = :pe, version = h.version,
        opening_balance = h.opening_balance, gross_revenue = h.gross_revenue,
        channel_fees = h.channel_fees, management_fees = h.management_fees,
        expenses = h.expenses, adjustments = h.adjustments, net_income = h.net_income,
        reserve_held = h.reserve_held, payout_amount = h.payout_amount,
        closing_balance = h.closing_balance, generated_at = :generated_at,
        supersedes_id = h.final_id
    FROM st_heads h JOIN st_drafts d USING (homeowner_id, property_id)
    WHERE s.id = d.id
    RETURNING h.key_id, s.id AS statement_id, h.mode
)
SELECT key_id, statement_id, false AS inserted, mode FROM up
"""

# ON CONFLICT on the one-draft-per-month partial index: a second writer (which the singleton
# lock already rules out) could never create a second draft.
INSERT_DRAFTS = """
WITH ins AS (
    INSERT INTO finance.owner_statements
        (homeowner_id, property_id, period_start, period_end, version, status,
         opening_balance, gross_revenue, channel_fees, management_fees, expenses, adjustments,
         net_income, reserve_held, payout_amount, closing_balance, generated_at, supersedes_id)
    SELECT h.homeowner_id, h.property_id, :ps, :pe, h.version, 'draft',
           h.opening_balance, h.gross_revenue, h.channel_fees, h.management_fees, h.expenses,
           h.adjustments, h.net_income, h.reserve_held, h.payout_amount, h.closing_balance,
           :generated_at, h.final_id
    FROM st_heads h
    WHERE NOT EXISTS (SELECT 1 FROM st_ids i WHERE i.key_id = h.key_id)
    ORDER BY h.homeowner_id, h.property_id
    ON CONFLICT (homeowner_id, property_id, period_start) WHERE status = 'draft' DO NOTHING
    RETURNING id, homeowner_id, property_id
)
INSERT INTO st_ids (key_id, statement_id, inserted, mode)
SELECT h.key_id, ins.id, true, h.mode
FROM ins JOIN st_heads h USING (homeowner_id, property_id)
"""

# The lines the drafts must have, numbered. A rebuilt draft's lines are replaced by difference:
# a line identical to one it already has (same fingerprint) stays as it is, so rebuilding an
# unchanged month writes nothing, and only new or changed lines pay for their foreign-key
# checks (and removed ones for their ON DELETE actions).
NEW_LINES = """
CREATE TEMP TABLE st_new ON COMMIT DROP AS
WITH n AS (
    SELECT i.statement_id, i.inserted, l.line_type, l.reservation_id, l.ticket_cost_id,
           l.adjustment_id, l.recurring_charge_id, l.description, l.nights,
           l.amount::numeric(12, 2) AS amount,
           row_number() OVER (PARTITION BY l.key_id
                              ORDER BY l.sort_section, l.sort_date NULLS LAST,
                                       l.description COLLATE "C",
                                       coalesce(l.reservation_id, l.ticket_cost_id,
                                                l.adjustment_id, l.recurring_charge_id))::int
               AS sort_order,
           l.stay_channel_commission::numeric(12, 2) AS stay_channel_commission,
           l.stay_cleaning_fee::numeric(12, 2) AS stay_cleaning_fee,
           l.stay_other_fees::numeric(12, 2) AS stay_other_fees,
           l.stay_taxes::numeric(12, 2) AS stay_taxes
    FROM st_lines l JOIN st_ids i USING (key_id)
)
-- only a rebuilt draft's lines are compared with what it has
SELECT n.*, CASE WHEN NOT n.inserted THEN {fingerprint} END AS fp FROM n
""".format(fingerprint=LINE_FINGERPRINT.format(t="n"))

DELETE_OLD_LINES = """
DELETE FROM finance.owner_statement_lines l
USING st_ids i
WHERE l.statement_id = i.statement_id AND NOT i.inserted
  AND NOT EXISTS (SELECT 1 FROM st_new n
                  WHERE n.statement_id = l.statement_id AND n.fp = {fingerprint})
""".format(fingerprint=LINE_FINGERPRINT.format(t="l"))

INSERT_LINES = """
INSERT INTO finance.owner_statement_lines
    (statement_id, line_type, reservation_id, ticket_cost_id, adjustment_id,
     recurring_charge_id, description, nights, amount, sort_order, stay_channel_commission,
     stay_cleaning_fee, stay_other_fees, stay_taxes)
SELECT n.statement_id, n.line_type, n.reservation_id, n.ticket_cost_id, n.adjustment_id,
       n.recurring_charge_id, n.description, n.nights, n.amount, n.sort_order,
       n.stay_channel_commission, n.stay_cleaning_fee, n.stay_other_fees, n.stay_taxes
FROM st_new n
WHERE n.inserted
UNION ALL
SELECT n.statement_id, n.line_type, n.reservation_id, n.ticket_cost_id, n.adjustment_id,
       n.recurring_charge_id, n.description, n.nights, n.amount, n.sort_order,
       n.stay_channel_commission, n.stay_cleaning_fee, n.stay_other_fees, n.stay_taxes
FROM st_new n
WHERE NOT n.inserted
  AND NOT EXISTS (SELECT 1 FROM finance.owner_statement_lines l
                  WHERE l.statement_id = n.statement_id AND {fingerprint} = n.fp)
""".format(fingerprint=LINE_FINGERPRINT.format(t="l"))

# Drafts of the month with no reason left: the relationship is gone, or a revision whose
# difference has vanished. Revision drafts are left alone when no revision was asked for.
DELETE_STALE = """
DELETE FROM finance.owner_statements
WHERE id IN (
    SELECT d.id FROM st_drafts d
    LEFT JOIN st_heads h USING (homeowner_id, property_id)
    LEFT JOIN st_keys k ON k.homeowner_id = d.homeowner_id AND k.property_id = d.property_id
                       AND k.skip
    WHERE h.key_id IS NULL AND k.key_id IS NULL
)
"""

# Properties where the owners in force at some point of the month do not hold exactly 100%.
OWNERSHIP_MISMATCHES = """
WITH points AS (
    SELECT DISTINCT r.property_id, p.day
    FROM st_rel r
    CROSS JOIN LATERAL (VALUES (CAST(:ps AS date)), (r.start_date), (r.end_date)) AS p(day)
    WHERE p.day >= :ps AND p.day < :pe
),
held AS (
    SELECT p.property_id, p.day, sum(r.w) AS held
    FROM points p
    JOIN st_rel r
      ON r.property_id = p.property_id AND r.start_date <= p.day
     AND (r.end_date IS NULL OR p.day < r.end_date)
    GROUP BY p.property_id, p.day
)
SELECT count(DISTINCT property_id) FROM held WHERE held <> 10000
"""

SUMMARY = """
SELECT
    (SELECT count(*) FROM st_ids WHERE inserted) AS created,
    (SELECT count(*) FROM st_ids WHERE NOT inserted) AS rebuilt,
    (SELECT count(*) FROM st_ids WHERE mode = 'revision') AS revisions,
    (SELECT count(*) FROM st_keys WHERE skip) AS final_untouched,
    (SELECT count(*) FROM st_new) AS lines
"""

STEPS: tuple[tuple[str, str], ...] = (
    ("lock_drafts", LOCK_DRAFTS),
    ("keys", KEYS),
    ("relationships", RELATIONSHIPS),
    ("stays", STAYS),
    ("segments", SEGMENTS),
    ("shares", SHARES),
    ("expected", EXPECTED_TABLE),
    ("stay_lines", STAY_LINES),
    ("cost_lines", COST_LINES),
    ("adjustment_lines", ADJUSTMENT_LINES),
    ("recurring_lines", RECURRING_LINES),
    ("minimum_fee_lines", MINIMUM_FEE_LINES),
    ("previous", PREVIOUS),
    ("lines", LINES),
    ("heads", HEADS),
    ("balance_lines", BALANCE_LINES),
    ("delete_stale", DELETE_STALE),
    ("update_drafts", UPDATE_DRAFTS),
    ("insert_drafts", INSERT_DRAFTS),
    ("new_lines", NEW_LINES),
    ("delete_old_lines", DELETE_OLD_LINES),
    ("insert_lines", INSERT_LINES),
)

# step -> the temporary table it completes
ANALYZE_AFTER = {
    "lock_drafts": "st_drafts",
    "keys": "st_keys",
    "relationships": "st_rel",
    "stays": "st_stays",
    "segments": "st_seg",
    "heads": "st_heads",
    "insert_drafts": "st_ids",
}

# -- statements.finalize: the journal entry ----------------------------------------------------

# One balanced journal entry for the statement (docs/MONEY.md; tasks.statements.money.
# ledger_postings is the same in Python). Trust side: each stay's guest money leaves the
# clearing account (2100, with the stay), its taxes become taxes payable (2200), the owner's
# net income owner payable (2000), the manager's part (fees kept + what the owner is charged)
# is due to operating (2300). Operating side: due from trust (1300) against revenue: 4020 for
# the fees kept, one line per charging line (4000 / 4010 / 4030). Every line names the owner
# and property; zero amounts post nothing. (A revision of a statement finalized under the
# rules before SPEC 7.5 posts its change of channel commission to 5000, as that one did.)
POST_STATEMENT = text(
    """
WITH l AS (
    SELECT line_type, reservation_id, description, amount,
           coalesce(stay_channel_commission, 0) AS channel, coalesce(stay_cleaning_fee, 0)
               + coalesce(stay_other_fees, 0) AS fees, coalesce(stay_taxes, 0) AS taxes
    FROM finance.owner_statement_lines WHERE statement_id = :id
),
totals AS (
    SELECT coalesce(sum(amount) FILTER (WHERE line_type = ANY (CAST(:income_types AS text[]))),
                    0) AS net,
           -- the channel commission not drawn with its stay: none, but for a revision of a
           -- statement finalized before revision 0013, whose rent lines carry no shares
           coalesce(sum(amount) FILTER (WHERE line_type = 'channel_fee'), 0)
           + coalesce(sum(channel) FILTER (WHERE line_type = 'rent'), 0) AS channel_undrawn,
           coalesce(sum(fees) FILTER (WHERE line_type = 'rent'), 0)
           - coalesce(sum(amount) FILTER (WHERE line_type IN ('cleaning_fee', 'other_fee')), 0)
               AS kept,
           -coalesce(sum(amount) FILTER (WHERE line_type = ANY (CAST(:charge_types AS text[]))),
                     0) AS charged
    FROM l
),
posting (code, reservation_id, amount, memo) AS (
    SELECT :clearing, reservation_id, amount + fees + taxes - channel,
           'Guest money drawn: ' || description
    FROM l WHERE line_type = 'rent'
    UNION ALL
    SELECT :taxes_payable, reservation_id, -taxes, 'Taxes collected: ' || description
    FROM l WHERE line_type = 'rent'
    UNION ALL
    SELECT m.code, NULL, l.amount, l.description
    FROM l JOIN unnest(CAST(:charge_types AS text[]), CAST(:charge_codes AS text[]))
                AS m (line_type, code) USING (line_type)
    UNION ALL
    SELECT :channel_expense, NULL, channel_undrawn, 'Channel commission (before revision 0013)'
    FROM totals
    UNION ALL
    SELECT :fee_revenue, NULL, -kept, 'Guest fees kept by the manager' FROM totals
    UNION ALL
    SELECT :payable, NULL, -net, :payable_memo FROM totals
    UNION ALL
    SELECT :due_to_operating, NULL, -(kept + charged), :manager_memo FROM totals
    UNION ALL
    SELECT :due_from_trust, NULL, kept + charged, :manager_memo FROM totals
)
INSERT INTO finance.transaction_lines
    (transaction_id, account_id, homeowner_id, property_id, reservation_id, debit, credit, memo)
SELECT :txn, a.id, :hid, :pid, p.reservation_id, greatest(p.amount, 0), greatest(-p.amount, 0),
       p.memo
FROM posting p JOIN finance.accounts a ON a.code = p.code
WHERE p.amount <> 0
"""
)

# -- statements.finalize: delivery -------------------------------------------------------------

# Where the statement goes: the owner's statement_email, else their contact's email.
STATEMENT_RECIPIENT = text(
    """
SELECT coalesce(nullif(btrim(h.statement_email), ''), nullif(btrim(c.email), '')) AS email
FROM finance.owner_statements s
JOIN directory.homeowners h ON h.id = s.homeowner_id
JOIN directory.contacts c ON c.id = h.contact_id
WHERE s.id = :id
"""
)

# The PDF the statement is sent with; kept as first stored (a statement is final, so is it).
STORE_DOCUMENT = text(
    """
INSERT INTO finance.owner_statement_documents (statement_id, filename, content, sha256)
VALUES (:id, :filename, :content, :sha256)
ON CONFLICT (statement_id) DO NOTHING
"""
)

# One email per statement, ever (dedupe_key); the delivery service attaches the document of
# related_id from finance.owner_statement_documents.
QUEUE_STATEMENT_EMAIL = text(
    """
INSERT INTO comms.messages
    (channel, recipient, subject, body, related_type, related_id, dedupe_key)
VALUES ('email', :recipient, :subject, :body, 'owner_statement', CAST(:id AS uuid),
        'owner_statement:' || CAST(:id AS text))
ON CONFLICT (dedupe_key) DO NOTHING
"""
)


# -- statements.finalize: locks, the entry, marks, the payout (tasks.statements.finalize) --------

LOCK_STATEMENT = text(
    "SELECT id, statement_number, homeowner_id, property_id, period_start, period_end, version,"
    " status, opening_balance, payout_amount, supersedes_id"
    " FROM finance.owner_statements WHERE id = :id FOR UPDATE"
)

LOCK_OWNER_BALANCE = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('cmw.owner_balance:' || CAST(:hid AS text)"
    " || ':' || CAST(:pid AS text), 0))"
)

LAST_CLOSING = text(
    "SELECT closing_balance FROM finance.owner_statements"
    " WHERE homeowner_id = :hid AND property_id = :pid AND status = 'final'"
    " ORDER BY finalized_at DESC, id DESC LIMIT 1"
)

LATEST_FINAL_OF_MONTH = text(
    "SELECT id FROM finance.owner_statements"
    " WHERE homeowner_id = :hid AND property_id = :pid AND period_start = :ps"
    " AND status = 'final' ORDER BY version DESC LIMIT 1"
)

# Costs or adjustments of this draft already billed to the owner on another month's final.
BILLED_ELSEWHERE = text(
    """
SELECT l.description
FROM finance.owner_statement_lines l
WHERE l.statement_id = :id
  AND ((l.ticket_cost_id IS NOT NULL AND EXISTS (
          SELECT 1 FROM finance.owner_statement_lines o
          JOIN finance.owner_statements s ON s.id = o.statement_id
          WHERE o.ticket_cost_id = l.ticket_cost_id AND s.status = 'final'
            AND s.homeowner_id = :hid AND s.property_id = :pid AND s.period_start <> :ps))
    OR (l.adjustment_id IS NOT NULL AND EXISTS (
          SELECT 1 FROM finance.owner_adjustments a
          JOIN finance.owner_statement_lines o ON o.id = a.statement_line_id
          JOIN finance.owner_statements s ON s.id = o.statement_id
          WHERE a.id = l.adjustment_id AND s.period_start <> :ps)))
LIMIT 3
"""
)

INSERT_TRANSACTION = text(
    "INSERT INTO finance.transactions"
    " (txn_date, description, reference_type, reference_id)"
    " VALUES (:txn_date, :description, 'owner_statement', :id)"
    " RETURNING id, txn_number"
)

MARK_FINAL = text(
    "UPDATE finance.owner_statements"
    " SET status = 'final', finalized_at = clock_timestamp(), transaction_id = :txn"
    " WHERE id = :id AND status = 'draft'"
)

SCHEDULE_PAYOUT = text(
    "INSERT INTO finance.owner_payouts (statement_id, homeowner_id, amount, scheduled_for)"
    " VALUES (:id, :hid, :amount, :scheduled_for)"
    " ON CONFLICT (statement_id) DO NOTHING"
)

# A cost is billed once every owner in force on its date has been billed their share on a
# final statement; the marker is the line that completed it (for a sole owner: its line).
MARK_COSTS = text(
    """
UPDATE service.ticket_costs c SET statement_line_id = l.id
FROM finance.owner_statement_lines l
WHERE l.statement_id = :id AND l.ticket_cost_id = c.id AND c.statement_line_id IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM directory.homeowner_property_relationship r
      WHERE r.property_id = c.property_id AND r.start_date <= c.cost_date
        AND (r.end_date IS NULL OR c.cost_date < r.end_date)
        AND NOT EXISTS (
            SELECT 1 FROM finance.owner_statement_lines o
            JOIN finance.owner_statements s ON s.id = o.statement_id
            WHERE o.ticket_cost_id = c.id AND s.status = 'final'
              AND s.homeowner_id = r.homeowner_id AND s.property_id = r.property_id))
"""
)

MARK_ADJUSTMENTS = text(
    "UPDATE finance.owner_adjustments a SET statement_line_id = l.id"
    " FROM finance.owner_statement_lines l"
    " WHERE l.statement_id = :id AND l.adjustment_id = a.id AND a.statement_line_id IS NULL"
)


# -- cmw statements render (tasks.statements.render) ---------------------------------------------

HEADER_SQL = text(
    """
SELECT s.id, s.statement_number, s.version, s.status, s.currency, s.period_start,
       s.period_end, s.generated_at, s.finalized_at, s.opening_balance, s.gross_revenue,
       s.channel_fees, s.management_fees, s.expenses, s.adjustments, s.net_income,
       s.reserve_held, s.payout_amount, s.closing_balance,
       prev.statement_number AS supersedes,
       concat_ws(' ', c.first_name, c.last_name) AS owner_name,
       coalesce(h.statement_email, c.email) AS owner_email,
       p.property_code, p.name AS property_name, p.timezone,
       po.scheduled_for, po.payout_number
FROM finance.owner_statements s
JOIN directory.homeowners h ON h.id = s.homeowner_id
JOIN directory.contacts c ON c.id = h.contact_id
JOIN property.properties p ON p.id = s.property_id
LEFT JOIN finance.owner_statements prev ON prev.id = s.supersedes_id
LEFT JOIN finance.owner_payouts po ON po.statement_id = s.id
WHERE s.id = :id
"""
)

LINES_SQL = text(
    """
SELECT l.line_type, l.description, l.nights, l.amount, l.reservation_id,
       v.confirmation_code, v.source, v.check_in, v.check_out, v.nights AS stay_nights,
       tc.cost_date, tc.amount AS cost_amount, tc.markup_pct,
       concat_ws(' ', coalesce(tc.description, 'Cost'), '(' || t.ticket_number || ')')
           AS cost_description,
       a.adjustment_date
FROM finance.owner_statement_lines l
LEFT JOIN reservations.reservations v ON v.id = l.reservation_id
LEFT JOIN service.ticket_costs tc ON tc.id = l.ticket_cost_id
LEFT JOIN service.tickets t ON t.id = tc.ticket_id
LEFT JOIN finance.owner_adjustments a ON a.id = l.adjustment_id
WHERE l.statement_id = :id
ORDER BY l.sort_order
"""
)

# A statement by its business ID (OS-010001).
STATEMENT_BY_NUMBER = text("SELECT id FROM finance.owner_statements WHERE statement_number = :n")
