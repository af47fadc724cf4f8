"""Every SQL statement of linen.reorder (SPEC 6.3), one named constant each: the one
set-based statement that places the orders and opens the no-supplier tickets (tasks.linen.reorder
explains what it computes), the settings it runs with, and the check of a property_id."""

from __future__ import annotations

from sqlalchemy import text

from db.fragments import sql_list, ticket_events_cte
from db.models.inventory import LINEN_ISSUE_TYPES_REDUCING_STOCK, LINEN_ORDER_OPEN_STATUSES
from db.models.service import TICKET_OPEN_SQL

# Properties whose linen is managed (see tasks.linen.reorder's docstring).
REORDER_PROPERTY_STATUSES = ("active", "onboarding")


def _jsonb_number(expr: str) -> str:
    """A jsonb value as an integer when it is a JSON number, else NULL (a malformed count or
    delivery entry is ignored rather than failing every property's reorder)."""
    return f"(CASE WHEN jsonb_typeof({expr}) = 'number' THEN ({expr})::int END)"


# The statuses of an open linen order, as an SQL list (the predicate of the partial index
# uq_linen_orders_open_per_property_type).
OPEN_ORDERS = sql_list(LINEN_ORDER_OPEN_STATUSES)
# The counted, delivered and picked-up quantities of a type, read from the jsonb of a count or
# a delivery.
COUNTED_LATEST = _jsonb_number("lc.counts -> r.type_code -> 'counted'")
COUNTED = _jsonb_number("c.counts -> cl.type_code -> 'counted'")
DELIVERED = _jsonb_number("d.items_delivered -> lc.type_code")
PICKED_UP = _jsonb_number("d.items_picked_up -> lc.type_code")

# The `created` event of each no-supplier ticket REORDER_SQL opens, with the shortages found.
NO_SUPPLIER_EVENTS = ticket_events_cte(
    "new_events",
    "new_tickets nt JOIN no_supplier ns ON ns.property_id = nt.property_id",
    "jsonb_build_object('job', 'linen.reorder', 'reason', 'no_linen_supplier',"
    " 'shortages', ns.shortages)",
    ticket_id="nt.id",
)

# One statement: the CTEs compute every property x type position; the data-modifying CTEs
# insert the orders and the no-supplier tickets (with their `created` events); the final
# SELECT summarises. Parameters: as_of (timestamptz), property_id (uuid or NULL).
REORDER_SQL = text(f"""
WITH props AS (
    SELECT p.id, p.property_code, p.name,
           (CAST(:as_of AS timestamptz) AT TIME ZONE p.timezone)::date AS local_date
    FROM property.properties p
    WHERE p.status IN {sql_list(REORDER_PROPERTY_STATUSES)}
      AND (CAST(:property_id AS uuid) IS NULL OR p.id = CAST(:property_id AS uuid))
),
types AS (
    SELECT t.id, t.type_code, t.standard_cost, t.sort_order
    FROM inventory.linen_types t
    WHERE t.is_active IS NOT FALSE
),
requirement AS (
    -- The property-level row wins (there is at most one per property and type:
    -- idx_linen_pars_unique, NULLS NOT DISTINCT); otherwise the room-level rows add up.
    SELECT lp.property_id, lp.linen_type_id, lp.type_code, lp.local_date,
           bool_or(lp.room_id IS NULL) AS property_level,
           count(*) FILTER (WHERE lp.room_id IS NOT NULL) AS room_rows,
           COALESCE(max(lp.reorder_point) FILTER (WHERE lp.room_id IS NULL),
                    sum(lp.reorder_point)) AS reorder_point,
           COALESCE(max(lp.order_up_to) FILTER (WHERE lp.room_id IS NULL),
                    sum(lp.order_up_to)) AS order_up_to
    FROM (
        SELECT lp.property_id, lp.linen_type_id, lp.room_id, t.type_code, p.local_date,
               COALESCE(lp.min_quantity, lp.par_quantity) AS reorder_point,
               COALESCE(lp.max_quantity, lp.par_quantity) AS order_up_to
        FROM inventory.linen_pars lp
        JOIN props p ON p.id = lp.property_id
        JOIN types t ON t.id = lp.linen_type_id
        WHERE lp.is_active IS NOT FALSE
    ) lp
    GROUP BY lp.property_id, lp.linen_type_id, lp.type_code, lp.local_date
),
latest_count AS (
    -- Each property's latest finished count on or before its local date: one index probe per
    -- property (idx_linen_counts_property_date), however long the count history.
    SELECT p.id AS property_id, c.count_id, c.count_date, c.counts
    FROM props p
    CROSS JOIN LATERAL (
        SELECT c.count_id, c.count_date, c.counts
        FROM inventory.linen_counts c
        WHERE c.property_id = p.id AND c.count_date <= p.local_date
          AND c.status IS DISTINCT FROM 'in_progress'
        ORDER BY c.count_date DESC, c.created_at DESC, c.id DESC
        LIMIT 1
    ) c
),
counted_latest AS (
    SELECT r.property_id, r.linen_type_id, r.type_code, r.local_date,
           lc.count_id, lc.count_date, {COUNTED_LATEST} AS counted
    FROM requirement r
    LEFT JOIN latest_count lc ON lc.property_id = r.property_id
),
last_count AS (
    -- The last count *of this type*: usually the property's latest count; a type that count
    -- left out (a spot check of some types) is looked up in the older counts, per pair.
    SELECT cl.property_id, cl.linen_type_id, cl.type_code, cl.local_date,
           cl.count_id, cl.count_date, cl.counted
    FROM counted_latest cl
    WHERE cl.counted IS NOT NULL
    UNION ALL
    SELECT cl.property_id, cl.linen_type_id, cl.type_code, cl.local_date,
           older.count_id, older.count_date, older.counted
    FROM counted_latest cl
    CROSS JOIN LATERAL (
        SELECT c.count_id, c.count_date, {COUNTED} AS counted
        FROM inventory.linen_counts c
        WHERE c.property_id = cl.property_id AND c.count_date <= cl.local_date
          AND c.status IS DISTINCT FROM 'in_progress'
          AND {COUNTED} IS NOT NULL
        ORDER BY c.count_date DESC, c.created_at DESC, c.id DESC
        LIMIT 1
    ) older
    WHERE cl.counted IS NULL
),
since AS (
    -- Per property, the earliest count date any of its types starts from: deliveries and
    -- issues are read once per property from there, not once per type.
    SELECT lc.property_id, min(lc.count_date) AS since, min(lc.local_date) AS local_date
    FROM last_count lc
    GROUP BY lc.property_id
),
recent_deliveries AS (
    SELECT d.property_id, d.delivery_date, d.items_delivered, d.items_picked_up
    FROM since s
    JOIN inventory.linen_deliveries d
      ON d.property_id = s.property_id
     AND d.delivery_date > s.since AND d.delivery_date <= s.local_date
    WHERE COALESCE(d.status, 'completed') = 'completed'
),
delivery_lines AS MATERIALIZED (
    -- One narrow row per delivery and type: each jsonb is read here once, and the wide rows
    -- are never sorted or hashed by the aggregate below.
    SELECT lc.property_id, lc.linen_type_id,
           COALESCE({DELIVERED}, 0) AS delivered, COALESCE({PICKED_UP}, 0) AS picked_up
    FROM last_count lc
    JOIN recent_deliveries d
      ON d.property_id = lc.property_id AND d.delivery_date > lc.count_date
),
deliveries AS (
    SELECT dl.property_id, dl.linen_type_id,
           sum(dl.delivered) AS delivered, sum(dl.picked_up) AS picked_up
    FROM delivery_lines dl
    GROUP BY dl.property_id, dl.linen_type_id
),
issues AS (
    SELECT lc.property_id, lc.linen_type_id, sum(COALESCE(i.quantity, 1)) AS removed
    FROM since s
    JOIN inventory.linen_issues i
      ON i.property_id = s.property_id
     AND i.issue_date > s.since AND i.issue_date <= s.local_date
    JOIN last_count lc
      ON lc.property_id = i.property_id AND lc.linen_type_id = i.linen_type_id
     AND i.issue_date > lc.count_date
    WHERE i.issue_type IN {sql_list(LINEN_ISSUE_TYPES_REDUCING_STOCK)}
    GROUP BY lc.property_id, lc.linen_type_id
),
on_order AS (
    -- Repeats the predicate of uq_linen_orders_open_per_property_type, so the index serves.
    SELECT o.destination_property_id AS property_id, o.linen_type_id,
           sum(GREATEST(o.quantity_ordered - COALESCE(o.quantity_received, 0), 0)) AS quantity,
           min(o.order_id) AS order_id
    FROM inventory.linen_orders o
    JOIN requirement r
      ON r.property_id = o.destination_property_id AND r.linen_type_id = o.linen_type_id
    WHERE o.status IN {OPEN_ORDERS}
    GROUP BY o.destination_property_id, o.linen_type_id
),
position AS (
    SELECT r.property_id, r.linen_type_id, r.property_level, r.room_rows,
           r.reorder_point, GREATEST(r.order_up_to, r.reorder_point) AS order_up_to,
           p.property_code, p.name AS property_name, p.local_date,
           t.type_code, t.standard_cost, t.sort_order,
           lc.count_id, lc.count_date, lc.counted,
           COALESCE(d.delivered, 0) AS delivered, COALESCE(d.picked_up, 0) AS picked_up,
           COALESCE(i.removed, 0) AS removed,
           lc.counted + COALESCE(d.delivered, 0) - COALESCE(d.picked_up, 0)
               - COALESCE(i.removed, 0) AS on_hand,
           COALESCE(o.quantity, 0) AS on_order,
           o.order_id AS open_order_id
    FROM requirement r
    JOIN props p ON p.id = r.property_id
    JOIN types t ON t.id = r.linen_type_id
    LEFT JOIN last_count lc
      ON lc.property_id = r.property_id AND lc.linen_type_id = r.linen_type_id
    LEFT JOIN deliveries d ON d.property_id = r.property_id AND d.linen_type_id = r.linen_type_id
    LEFT JOIN issues i ON i.property_id = r.property_id AND i.linen_type_id = r.linen_type_id
    LEFT JOIN on_order o ON o.property_id = r.property_id AND o.linen_type_id = r.linen_type_id
),
supplier_own AS (
    SELECT DISTINCT ON (va.property_id) va.property_id, va.company_id
    FROM directory.vendor_assignments va
    JOIN props p ON p.id = va.property_id
    WHERE va.service_category = 'linen' AND va.is_active
    ORDER BY va.property_id, va.priority, va.created_at, va.id
),
supplier_any AS (
    SELECT va.company_id
    FROM directory.vendor_assignments va
    WHERE va.service_category = 'linen' AND va.is_active AND va.property_id IS NULL
    ORDER BY va.priority, va.created_at, va.id
    LIMIT 1
),
short AS (
    SELECT pos.*,
           pos.order_up_to - (pos.on_hand + pos.on_order) AS quantity,
           COALESCE(so.company_id, sa.company_id) AS supplier_id
    FROM position pos
    LEFT JOIN supplier_own so ON so.property_id = pos.property_id
    LEFT JOIN supplier_any sa ON true
    WHERE pos.counted IS NOT NULL AND pos.on_hand + pos.on_order < pos.reorder_point
),
new_orders AS (
    INSERT INTO inventory.linen_orders
        (linen_type_id, supplier_company_id, destination_property_id, order_date,
         quantity_ordered, unit_cost, status, notes)
    SELECT s.linen_type_id, s.supplier_id, s.property_id, s.local_date, s.quantity,
           s.standard_cost, 'pending',
           format('linen.reorder as of %s (local date %s), %s %s: '
                  || 'reorder point %s, order-up-to %s (%s); '
                  || 'on hand %s = counted %s on %s (%s) + delivered %s - picked up %s '
                  || '- missing/damaged %s since; on order %s; '
                  || 'ordered %s - (%s + %s) = %s at %s.',
                  date_trunc('second', CAST(:as_of AS timestamptz)), s.local_date,
                  s.property_code, s.type_code,
                  s.reorder_point, s.order_up_to,
                  CASE WHEN s.property_level THEN 'property-level par'
                       ELSE 'sum of ' || s.room_rows || ' room pars' END,
                  s.on_hand, s.counted, s.count_date, s.count_id, s.delivered, s.picked_up,
                  s.removed, s.on_order,
                  s.order_up_to, s.on_hand, s.on_order, s.quantity, s.standard_cost)
    FROM short s
    WHERE s.supplier_id IS NOT NULL AND s.standard_cost IS NOT NULL AND s.open_order_id IS NULL
    ORDER BY s.property_code, s.sort_order NULLS LAST, s.type_code
    ON CONFLICT (destination_property_id, linen_type_id) WHERE status IN {OPEN_ORDERS}
    DO NOTHING
    RETURNING id, quantity_ordered
),
no_supplier AS (
    SELECT s.property_id, s.property_code, s.property_name,
           string_agg(s.type_code, ', ' ORDER BY s.sort_order NULLS LAST, s.type_code) AS types,
           string_agg(format('%s: on hand %s + on order %s < reorder point %s; '
                             || '%s needed to reach %s',
                             s.type_code, s.on_hand, s.on_order, s.reorder_point, s.quantity,
                             s.order_up_to),
                      E'\\n' ORDER BY s.sort_order NULLS LAST, s.type_code) AS detail,
           jsonb_agg(jsonb_build_object(
               'type_code', s.type_code, 'on_hand', s.on_hand, 'on_order', s.on_order,
               'reorder_point', s.reorder_point, 'order_up_to', s.order_up_to,
               'quantity_needed', s.quantity)
               ORDER BY s.sort_order NULLS LAST, s.type_code) AS shortages
    FROM short s
    WHERE s.supplier_id IS NULL
    GROUP BY s.property_id, s.property_code, s.property_name
),
new_tickets AS (
    INSERT INTO service.tickets
        (ticket_type, category, title, description, status, priority, source, property_id,
         dedupe_key, created_at, updated_at)
    SELECT 'PC', 'linen',
           format('No linen supplier: %s (%s) is short of %s', ns.property_name,
                  ns.property_code, ns.types),
           format(E'linen.reorder found a linen shortage but no active ''linen'' vendor '
                  || E'assignment for this property or company-wide, so it ordered nothing.\\n'
                  || E'%s\\nAssign a linen supplier; the next run will order.', ns.detail),
           'open', 'high', 'system', ns.property_id,
           'linen:no_supplier:' || ns.property_id,
           CAST(:as_of AS timestamptz), CAST(:as_of AS timestamptz)
    FROM no_supplier ns
    ORDER BY ns.property_code
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND {TICKET_OPEN_SQL}
    DO NOTHING
    RETURNING id, property_id
),
{NO_SUPPLIER_EVENTS}
SELECT
    (SELECT count(*) FROM position) AS pairs_checked,
    (SELECT count(*) FROM short) AS short,
    (SELECT count(*) FROM new_orders) AS orders_created,
    (SELECT COALESCE(sum(quantity_ordered), 0) FROM new_orders) AS units_ordered,
    (SELECT count(*) FROM short WHERE open_order_id IS NOT NULL) AS short_with_open_order,
    (SELECT COALESCE(array_agg(ticket_id), '{{}}') FROM new_events) AS ticket_ids,
    (SELECT count(*) FROM no_supplier) AS no_supplier_count,
    (SELECT COALESCE(array_agg(property_code ORDER BY property_code), '{{}}')
       FROM no_supplier) AS no_supplier_codes,
    (SELECT count(DISTINCT property_id) FROM position WHERE counted IS NULL) AS no_count_count,
    (SELECT COALESCE(array_agg(DISTINCT property_code), '{{}}')
       FROM position WHERE counted IS NULL) AS no_count_codes,
    (SELECT count(*) FROM short
      WHERE supplier_id IS NOT NULL AND standard_cost IS NULL AND open_order_id IS NULL)
       AS no_cost_count,
    (SELECT COALESCE(array_agg(DISTINCT type_code), '{{}}') FROM short
      WHERE supplier_id IS NOT NULL AND standard_cost IS NULL AND open_order_id IS NULL)
       AS no_cost_types
""")


# The settings REORDER_SQL runs with (db.session.local_settings). JIT off: its estimated cost
# (a dozen CTEs over every property x type) is far above jit_above_cost, and compiling its few
# hundred expressions takes longer than running it (scale 1: 2.1 s with JIT, 0.9 s without).
# work_mem 64MB: at scale 10 the hash joins and aggregates over 60,000 pairs and 270,000
# delivery lines spill to disk at the 4MB default; they need tens of megabytes, for a second,
# once a day.
REORDER_SETTINGS = {"jit": "off", "work_mem": "64MB"}

# Does the property a payload names exist (any status)?
PROPERTY_EXISTS = text("SELECT 1 FROM property.properties WHERE id = :id")
