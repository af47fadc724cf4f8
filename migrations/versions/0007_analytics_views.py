"""analytics views: the five materialized views of SPEC 6.6 and the plain views they share

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 03:00:00+00:00

Every figure is defined once, here, and written out in words in docs/ANALYTICS.md. Three plain
(non-materialized) views hold the definitions the materialized ones share, so that "a live
stay", "the nights a property was sold or blocked" and "a stay's rent in a month" mean the same
thing on every screen:

- analytics.live_stays: reservations that are booked (confirmed, checked in, checked out);
  inquiries and cancellations never count;
- analytics.night_cover: per live stay, the nights it adds to its property's covered nights
  (of any kind) and booked nights (guest stays) beyond the stays that started before it, so
  overlaps (double bookings, a guest stay over an owner block) are counted once;
- analytics.guest_stay_months: each live guest stay's nights, rent, commission and fees (in
  cents) in each calendar month it touches, rent and commission split by night with the
  largest-remainder method so the months add up to the stay's amounts to the cent.

One materialized view reads another: property_performance_mv takes its revenue from
revenue_summary_mv, so the two always agree; `analytics.refresh` refreshes revenue_summary_mv
first.

The materialized views are created WITH NO DATA (the migration stays fast on a big database);
`analytics.refresh` populates each one plainly the first time, then refreshes it
CONCURRENTLY, which needs the unique index on plain columns that each one has here.

Each view's unique key is its leading columns, and its query ends ORDER BY that key. Besides
storing the rows clustered the way dashboards read them, this makes REFRESH ... CONCURRENTLY
several times cheaper: before diffing, PostgreSQL checks the new rows for duplicates by sorting
them on their whole-row image (a byte-wise comparison that takes the tuples apart on every
call); rows that arrive already in that order (uuid and positive dates compare the same way
byte-wise; text is ordered COLLATE "C" for the same reason) are sorted in one pass.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Reservation statuses that are booked. An inquiry is not a booking; a cancellation never
# counts anywhere.
LIVE_STAYS = """
CREATE VIEW analytics.live_stays AS
SELECT
    r.id AS reservation_id,
    r.property_id,
    r.guest_contact_id,
    r.source,
    r.reservation_type,
    r.check_in,
    r.check_out,
    r.nights,
    r.gross_rent,
    r.cleaning_fee,
    r.other_fees,
    r.channel_commission,
    -- The booking date is the property's local date when the booking was made, like every
    -- other date of a stay. A LEFT JOIN (property_id is a NOT NULL foreign key, so it is an
    -- inner join in effect) lets the planner drop the join from queries that do not need it.
    (r.booked_at AT TIME ZONE p.timezone)::date AS booked_date
FROM reservations.reservations r
LEFT JOIN property.properties p ON p.id = r.property_id
WHERE r.status IN ('confirmed', 'checked_in', 'checked_out')
"""

# One pass over each property's live stays in check-in order (the order of the index on
# (property_id, check_in, check_out)): the nights a stay adds to the property's covered nights
# are those after every earlier-starting stay has ended, [greatest(check_in, latest earlier
# check-out), check_out); the stays' added nights are disjoint and together are exactly the
# union of their nights, so overlaps (a double booking, a guest stay over an owner block) are
# counted once. `covered_from` is that start over stays of every kind; `booked_from` over
# guest stays only (null for owner stays and blocks). An empty range has from >= check_out.
# Which of two stays with the same dates adds the nights is arbitrary; how many nights are
# added in any period is not, and that is all the views read.
NIGHT_COVER = """
CREATE VIEW analytics.night_cover AS
SELECT
    property_id,
    reservation_type,
    check_out,
    greatest(check_in, max(check_out) OVER earlier) AS covered_from,
    CASE WHEN reservation_type = 'guest' THEN
        greatest(check_in, max(check_out) FILTER (WHERE reservation_type = 'guest') OVER earlier)
    END AS booked_from
FROM analytics.live_stays
WINDOW earlier AS (
    PARTITION BY property_id ORDER BY check_in, check_out
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
)
"""

# A stay's months: every calendar month holding one of its nights [check_in, check_out), with
# the stay's rent, commission and fees there, in whole cents (bigint: summing integers is much
# cheaper than summing numerics over a million stays; the views divide by 100 at the end).
# Rent and commission are split by night with the largest-remainder method, as owner statements
# split across months (SPEC 6.5): each month's exact share (amount x nights in the month /
# nights) in cents is rounded down, and the cents still missing go one each to the months with
# the largest remainders (ties: the earlier month), so the months sum to the whole. Computed in
# three cases, for speed (most stays are in one month, nearly all the others in two; a stay
# over three months has at least 30 nights):
# - one month: the whole amount;
# - two months: for two parts the method comes down to rounding the first month's share to the
#   cent, half up (a tie goes to the earlier month), and giving the second month the rest;
# - three or more months: the method itself, with window functions.
# Cents are allocated on the absolute amount, so a negative amount splits as its opposite.
# Fees (cleaning + other) are earned once, in the month of check-in. Taxes are not revenue.
GUEST_STAY_MONTHS = """
CREATE VIEW analytics.guest_stay_months AS
WITH stays AS NOT MATERIALIZED (
    SELECT
        reservation_id, property_id, source, check_in, check_out, nights,
        (gross_rent * 100)::bigint AS rent_cents,
        (channel_commission * 100)::bigint AS commission_cents,
        ((cleaning_fee + other_fees) * 100)::bigint AS fees_cents,
        date_trunc('month', check_in::timestamp)::date AS first_month,
        date_trunc('month', (check_out - 1)::timestamp)::date AS last_month
    FROM analytics.live_stays
    WHERE reservation_type = 'guest'
),
one_or_two AS (
    SELECT
        reservation_id, property_id, source, nights, first_month, last_month,
        rent_cents, commission_cents, fees_cents,
        (first_month + interval '1 month')::date - check_in AS first_nights,
        -- 0: the first month; 1: the second, for a stay over two months.
        generate_series(0, CASE WHEN last_month > first_month THEN 1 ELSE 0 END) AS part
    FROM stays
    WHERE nights < 30 OR last_month <= first_month + interval '1 month'
),
first_shares AS (
    SELECT
        one_or_two.*,
        -- Round half up of amount x first_nights / nights, in integers, on the absolute amount.
        CASE WHEN last_month = first_month THEN rent_cents
             ELSE sign(rent_cents)
                 * ((2 * abs(rent_cents) * first_nights + nights) / (2 * nights))
        END AS first_rent,
        CASE WHEN last_month = first_month THEN commission_cents
             ELSE sign(commission_cents)
                 * ((2 * abs(commission_cents) * first_nights + nights) / (2 * nights))
        END AS first_commission
    FROM one_or_two
),
parts AS (
    SELECT
        s.reservation_id, s.property_id, s.source, s.nights, s.first_month, s.fees_cents,
        s.rent_cents, s.commission_cents,
        m.month::date AS month,
        least(s.check_out, (m.month + interval '1 month')::date)
            - greatest(s.check_in, m.month::date) AS nights_in_month
    FROM stays s
    CROSS JOIN LATERAL generate_series(
        s.first_month::timestamp, s.last_month::timestamp, interval '1 month'
    ) AS m(month)
    WHERE s.nights >= 30 AND s.last_month > s.first_month + interval '1 month'
),
shares AS (
    SELECT
        parts.*,
        abs(rent_cents) * nights_in_month / nights AS rent_floor,
        abs(rent_cents) * nights_in_month % nights AS rent_remainder,
        abs(commission_cents) * nights_in_month / nights AS commission_floor,
        abs(commission_cents) * nights_in_month % nights AS commission_remainder
    FROM parts
),
ranked AS (
    SELECT
        shares.*,
        abs(rent_cents) - sum(rent_floor) OVER stay AS rent_left,
        row_number() OVER (
            PARTITION BY reservation_id ORDER BY rent_remainder DESC, month
        ) AS rent_rank,
        abs(commission_cents) - sum(commission_floor) OVER stay AS commission_left,
        row_number() OVER (
            PARTITION BY reservation_id ORDER BY commission_remainder DESC, month
        ) AS commission_rank
    FROM shares
    WINDOW stay AS (PARTITION BY reservation_id)
)
SELECT
    reservation_id,
    property_id,
    source,
    CASE part WHEN 0 THEN first_month ELSE last_month END AS month,
    CASE part WHEN 0 THEN least(nights, first_nights) ELSE nights - first_nights END
        AS nights_in_month,
    CASE part WHEN 0 THEN first_rent ELSE rent_cents - first_rent END AS rent_cents,
    CASE part WHEN 0 THEN first_commission ELSE commission_cents - first_commission END
        AS commission_cents,
    CASE part WHEN 0 THEN fees_cents ELSE 0 END AS fees_cents
FROM first_shares
UNION ALL
SELECT
    reservation_id,
    property_id,
    source,
    month,
    nights_in_month,
    sign(rent_cents) * (rent_floor + CASE WHEN rent_rank <= rent_left THEN 1 ELSE 0 END),
    sign(commission_cents)
        * (commission_floor + CASE WHEN commission_rank <= commission_left THEN 1 ELSE 0 END),
    CASE WHEN month = first_month THEN fees_cents ELSE 0 END
FROM ranked
"""

# Rows: every property not offboarded, for every month in which any property has a live night
# (so a month with no booking shows occupancy 0, not a missing row), plus any property-month
# with a live night (an offboarded property's history keeps its revenue).
PROPERTY_PERFORMANCE = """
CREATE MATERIALIZED VIEW analytics.property_performance_mv AS
WITH cover_months AS (
    -- Each stay's new nights, month by month (generate_series in the select list, as in
    -- occupancy_trends_mv).
    SELECT
        property_id,
        month,
        CASE WHEN booked_from IS NOT NULL THEN
            greatest(0, least(check_out, (month + interval '1 month')::date)
                - greatest(booked_from, month))
        ELSE 0 END AS booked,
        greatest(0, least(check_out, (month + interval '1 month')::date)
            - greatest(covered_from, month)) AS covered
    FROM (
        SELECT
            c.property_id, c.booked_from, c.covered_from, c.check_out,
            generate_series(
                date_trunc('month', coalesce(c.booked_from, c.covered_from)::timestamp),
                date_trunc('month', (c.check_out - 1)::timestamp),
                interval '1 month'
            )::date AS month
        FROM analytics.night_cover c
        WHERE c.covered_from < c.check_out OR c.booked_from < c.check_out
    ) AS by_month
),
covered AS (
    SELECT
        property_id, month,
        coalesce(sum(booked), 0)::int AS booked_nights,
        sum(covered)::int AS covered_nights
    FROM cover_months
    GROUP BY property_id, month
),
revenue AS (
    -- Revenue is revenue_summary_mv's gross rent, so the two screens can never disagree (and
    -- the stays' money is split by month once per refresh): refreshed after it.
    SELECT property_id, month, sum(gross_rent) AS revenue
    FROM analytics.revenue_summary_mv
    GROUP BY property_id, month
),
grid AS (
    SELECT p.id AS property_id, months.month
    FROM property.properties p
    CROSS JOIN (SELECT DISTINCT month FROM covered) AS months
    WHERE p.status <> 'offboarded'
    UNION ALL
    SELECT c.property_id, c.month
    FROM covered c
    JOIN property.properties p ON p.id = c.property_id
    WHERE p.status = 'offboarded'
),
nights AS (
    SELECT
        g.property_id,
        g.month,
        ((g.month + interval '1 month')::date - g.month) AS nights_in_month,
        coalesce(c.covered_nights - c.booked_nights, 0) AS owner_block_nights,
        coalesce(c.booked_nights, 0) AS booked_nights,
        coalesce(r.revenue, 0) AS revenue
    FROM grid g
    LEFT JOIN covered c ON c.property_id = g.property_id AND c.month = g.month
    LEFT JOIN revenue r ON r.property_id = g.property_id AND r.month = g.month
)
SELECT
    property_id,
    month,
    nights_in_month,
    owner_block_nights,
    nights_in_month - owner_block_nights AS available_nights,
    booked_nights,
    round(booked_nights::numeric / nullif(nights_in_month - owner_block_nights, 0), 4)
        AS occupancy,
    revenue::numeric(14, 2) AS revenue,
    round(revenue / nullif(booked_nights, 0), 2) AS adr,
    round(revenue / nullif(nights_in_month - owner_block_nights, 0), 2) AS revpar
FROM nights
ORDER BY property_id, month
WITH NO DATA
"""

# Weeks are ISO weeks (Monday to Sunday), keyed by their Monday. Lead time and length of stay
# are of the live guest stays arriving (checking in) in the week.
OCCUPANCY_TRENDS = """
CREATE MATERIALIZED VIEW analytics.occupancy_trends_mv AS
WITH pieces AS (
    -- Each stay's new nights, week by week (generate_series in the select list: a set-returning
    -- function in FROM fills a tuplestore per row, noticeably slower over a million stays) ...
    SELECT
        property_id,
        week_start,
        CASE WHEN booked_from IS NOT NULL THEN
            greatest(0, least(check_out, week_start + 7) - greatest(booked_from, week_start))
        ELSE 0 END AS booked,
        greatest(0, least(check_out, week_start + 7) - greatest(covered_from, week_start))
            AS covered,
        0 AS arrival,
        NULL::int AS lead_time,
        NULL::int AS stay_nights
    FROM (
        SELECT
            c.property_id, c.booked_from, c.covered_from, c.check_out,
            generate_series(
                date_trunc('week', coalesce(c.booked_from, c.covered_from)::timestamp),
                date_trunc('week', (c.check_out - 1)::timestamp),
                interval '7 days'
            )::date AS week_start
        FROM analytics.night_cover c
        WHERE c.covered_from < c.check_out OR c.booked_from < c.check_out
    ) AS by_week
    UNION ALL
    -- ... and each guest stay once more, in the week it arrives.
    SELECT
        property_id,
        date_trunc('week', check_in::timestamp)::date,
        0,
        0,
        1,
        check_in - booked_date,
        nights
    FROM analytics.live_stays
    WHERE reservation_type = 'guest'
),
weekly AS MATERIALIZED (
    SELECT
        property_id,
        week_start,
        sum(booked)::int AS booked_nights,
        sum(covered)::int AS covered_nights,
        -- Averages as sum / count in the final select: an avg() state per group is a palloc'd
        -- array, a sum or count is a plain integer (a million groups at scale 10).
        sum(arrival)::int AS arrivals,
        sum(lead_time) AS lead_time_days,
        sum(stay_nights) AS stay_nights
    FROM pieces
    GROUP BY property_id, week_start
),
grid AS (
    SELECT p.id AS property_id, weeks.week_start
    FROM property.properties p
    CROSS JOIN (SELECT DISTINCT week_start FROM weekly) AS weeks
    WHERE p.status <> 'offboarded'
    UNION ALL
    SELECT w.property_id, w.week_start
    FROM weekly w
    JOIN property.properties p ON p.id = w.property_id
    WHERE p.status = 'offboarded'
)
SELECT
    g.property_id,
    g.week_start,
    date_part('isoyear', g.week_start)::int AS iso_year,
    date_part('week', g.week_start)::int AS iso_week,
    7 - coalesce(w.covered_nights - w.booked_nights, 0) AS available_nights,
    coalesce(w.booked_nights, 0) AS booked_nights,
    round(
        coalesce(w.booked_nights, 0)::numeric
            / nullif(7 - coalesce(w.covered_nights - w.booked_nights, 0), 0),
        4
    ) AS occupancy,
    coalesce(w.arrivals, 0) AS arrivals,
    round(w.lead_time_days::numeric / nullif(w.arrivals, 0), 2) AS avg_lead_time_days,
    round(w.stay_nights::numeric / nullif(w.arrivals, 0), 2) AS avg_length_of_stay
FROM grid g
LEFT JOIN weekly w ON w.property_id = g.property_id AND w.week_start = g.week_start
ORDER BY g.property_id, g.week_start
WITH NO DATA
"""

REVENUE_SUMMARY = """
CREATE MATERIALIZED VIEW analytics.revenue_summary_mv AS
SELECT
    month,
    property_id,
    source,
    (sum(rent_cents) / 100.0)::numeric(14, 2) AS gross_rent,
    (sum(fees_cents) / 100.0)::numeric(14, 2) AS fees,
    (sum(commission_cents) / 100.0)::numeric(14, 2) AS commissions,
    ((sum(rent_cents) + sum(fees_cents) - sum(commission_cents)) / 100.0)::numeric(14, 2) AS net
FROM analytics.guest_stay_months
GROUP BY month, property_id, source
ORDER BY month, property_id, source COLLATE "C"
WITH NO DATA
"""

GUEST_LIFETIME_VALUE = """
CREATE MATERIALIZED VIEW analytics.guest_lifetime_value_mv AS
SELECT
    guest_contact_id,
    count(*)::int AS stays,
    sum(nights)::int AS nights,
    sum(gross_rent)::numeric(14, 2) AS revenue,
    min(check_in) AS first_stay,
    max(check_out) AS last_stay
FROM analytics.live_stays
WHERE reservation_type = 'guest' AND guest_contact_id IS NOT NULL
GROUP BY guest_contact_id
ORDER BY guest_contact_id
WITH NO DATA
"""

# Months are UTC calendar months of the ticket's own timestamps. A ticket without a team counts
# under the nil UUID (00000000-0000-0000-0000-000000000000), so the unique index has no NULLs.
# An SLA outcome is decided when the deadline was met or missed: answered (resolved) in time,
# or late, or recorded as breached by sla.check_breaches (which writes the ticket's
# *_breached_at and its ticket_misses row together). An outcome not breached is the ticket's, in
# the month of its deadline, against its current team; a breached one is its ticket_misses row,
# in the month of breached_at (= the deadline), against the team recorded there (the team
# before escalation). Breaches are all recorded misses. The tickets table is read once, into
# the narrow facts each figure groups by.
OPERATIONAL_KPIS = """
CREATE MATERIALIZED VIEW analytics.operational_kpis_mv AS
WITH facts AS MATERIALIZED (
    SELECT
        coalesce(current_team_id, '00000000-0000-0000-0000-000000000000'::uuid) AS team_id,
        date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS opened_month,
        source = 'recurring' AS recurring,
        date_trunc('month', resolved_at AT TIME ZONE 'UTC')::date AS resolved_month,
        resolved_at - created_at AS resolution_time,
        CASE WHEN response_breached_at IS NULL AND first_response_at IS NOT NULL
            THEN date_trunc('month', response_due_at AT TIME ZONE 'UTC')::date
        END AS response_month,
        first_response_at <= response_due_at AS response_met,
        CASE WHEN resolution_breached_at IS NULL AND resolved_at IS NOT NULL
            THEN date_trunc('month', resolution_due_at AT TIME ZONE 'UTC')::date
        END AS resolution_month,
        resolved_at <= resolution_due_at AS resolution_met
    FROM service.tickets
),
opened AS (
    SELECT
        opened_month AS month, team_id,
        count(*)::int AS tickets_opened,
        (count(*) FILTER (WHERE recurring))::int AS recurring_tickets
    FROM facts
    GROUP BY 1, 2
),
resolved AS (
    SELECT
        resolved_month AS month, team_id,
        count(*)::int AS tickets_resolved,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_time) AS median_resolution
    FROM facts
    WHERE resolved_month IS NOT NULL
    GROUP BY 1, 2
),
response AS (
    SELECT
        response_month AS month, team_id,
        count(*)::int AS total,
        (count(*) FILTER (WHERE response_met))::int AS met
    FROM facts
    WHERE response_month IS NOT NULL
    GROUP BY 1, 2
),
resolution AS (
    SELECT
        resolution_month AS month, team_id,
        count(*)::int AS total,
        (count(*) FILTER (WHERE resolution_met))::int AS met
    FROM facts
    WHERE resolution_month IS NOT NULL
    GROUP BY 1, 2
),
misses AS (
    SELECT
        date_trunc('month', breached_at AT TIME ZONE 'UTC')::date AS month,
        coalesce(team_id, '00000000-0000-0000-0000-000000000000'::uuid) AS team_id,
        (count(*) FILTER (WHERE sla_kind = 'response'))::int AS response_missed,
        (count(*) FILTER (WHERE sla_kind = 'resolution'))::int AS resolution_missed,
        count(*)::int AS breaches
    FROM service.ticket_misses
    GROUP BY 1, 2
),
keys AS (
    SELECT month, team_id FROM opened
    UNION SELECT month, team_id FROM resolved
    UNION SELECT month, team_id FROM response
    UNION SELECT month, team_id FROM resolution
    UNION SELECT month, team_id FROM misses
),
combined AS (
    SELECT
        k.month,
        k.team_id,
        coalesce(o.tickets_opened, 0) AS tickets_opened,
        coalesce(d.tickets_resolved, 0) AS tickets_resolved,
        d.median_resolution,
        coalesce(rp.total, 0) + coalesce(m.response_missed, 0) AS response_total,
        coalesce(rp.met, 0) AS response_met,
        coalesce(rs.total, 0) + coalesce(m.resolution_missed, 0) AS resolution_total,
        coalesce(rs.met, 0) AS resolution_met,
        coalesce(m.breaches, 0) AS breaches,
        coalesce(o.recurring_tickets, 0) AS recurring_tickets
    FROM keys k
    LEFT JOIN opened o ON o.month = k.month AND o.team_id = k.team_id
    LEFT JOIN resolved d ON d.month = k.month AND d.team_id = k.team_id
    LEFT JOIN response rp ON rp.month = k.month AND rp.team_id = k.team_id
    LEFT JOIN resolution rs ON rs.month = k.month AND rs.team_id = k.team_id
    LEFT JOIN misses m ON m.month = k.month AND m.team_id = k.team_id
)
SELECT
    month,
    team_id,
    tickets_opened,
    tickets_resolved,
    round((extract(epoch FROM median_resolution) / 60)::numeric, 1)
        AS median_resolution_minutes,
    response_total AS response_sla_total,
    response_met AS response_sla_met,
    round(response_met::numeric / nullif(response_total, 0), 4) AS response_sla_compliance,
    resolution_total AS resolution_sla_total,
    resolution_met AS resolution_sla_met,
    round(resolution_met::numeric / nullif(resolution_total, 0), 4)
        AS resolution_sla_compliance,
    breaches,
    recurring_tickets
FROM combined
ORDER BY month, team_id
WITH NO DATA
"""

# (view, its unique index's plain columns): what REFRESH ... CONCURRENTLY matches rows on.
MATERIALIZED = (
    ("revenue_summary_mv", REVENUE_SUMMARY, ("month", "property_id", "source")),
    ("property_performance_mv", PROPERTY_PERFORMANCE, ("property_id", "month")),
    ("guest_lifetime_value_mv", GUEST_LIFETIME_VALUE, ("guest_contact_id",)),
    ("occupancy_trends_mv", OCCUPANCY_TRENDS, ("property_id", "week_start")),
    ("operational_kpis_mv", OPERATIONAL_KPIS, ("month", "team_id")),
)
PLAIN = (
    ("live_stays", LIVE_STAYS),
    ("night_cover", NIGHT_COVER),
    ("guest_stay_months", GUEST_STAY_MONTHS),
)


def upgrade() -> None:
    for _name, ddl in PLAIN:
        op.execute(ddl)
    for name, ddl, key in MATERIALIZED:
        op.execute(ddl)
        op.execute(f"CREATE UNIQUE INDEX uq_{name} ON analytics.{name} ({', '.join(key)})")
    # Dashboards read a month (or week) across every property as often as one property's history.
    op.execute(
        "CREATE INDEX ix_property_performance_mv_month ON analytics.property_performance_mv (month)"
    )
    op.execute(
        "CREATE INDEX ix_occupancy_trends_mv_week_start"
        " ON analytics.occupancy_trends_mv (week_start)"
    )


def downgrade() -> None:
    for name, _ddl, _key in reversed(MATERIALIZED):
        op.execute(f"DROP MATERIALIZED VIEW IF EXISTS analytics.{name}")
    for name, _ddl in reversed(PLAIN):
        op.execute(f"DROP VIEW IF EXISTS analytics.{name}")
