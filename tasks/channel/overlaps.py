"""Double bookings found by channel sync (SPEC 6.4, 7.1).

A stay of this mapping that overlaps another live stay of the same property (guest and owner
stays; blocks overlap stays by design: a channel re-exporting our calendar shows our stays as
its blocks) raises one urgent RSV ticket per pair, never a rejected row, and never again for
the same pair, resolved or not: every pair is recorded in `channel.overlap_pairs` when first
found. One import raises at most MAX_TICKETS_PER_IMPORT pair tickets for its property; past
that it raises one ticket for the property naming how many pairs it found. While that summary
is open, the pairs later imports find are recorded and noted on it as events, not raised one
by one. Every pair is still recorded, so none is raised later either: a hostile feed of 200
events on the same dates is 19,900 pairs, 10 tickets and one summary, not 19,900 tickets and
19,900 `sla.apply` jobs. One import records at most MAX_PAIRS_PER_IMPORT new pairs (the scan
stops there), so even the largest feed allowed, 5,000 events on the same dates (12.5 million
pairs), costs one import a bounded amount of work; later imports record the rest.

Runs under the property's advisory lock (tasks.channel.sync), so two feeds of one property
never check overlaps without seeing each other's stays.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

MAX_TICKETS_PER_IMPORT = 10
# New pairs one import records at most (see the module docstring).
MAX_PAIRS_PER_IMPORT = 100_000

OVERLAP_TICKETS = text(
    """
    WITH live AS (
        SELECT r.id, r.check_in, r.check_out, r.confirmation_code, r.source,
               r.reservation_type
        FROM reservations.reservations r
        WHERE r.property_id = :property_id AND r.status <> 'cancelled'
          AND r.reservation_type IN ('guest', 'owner_stay') AND r.check_out > :today
    ),
    mine AS (
        SELECT DISTINCT r.id, r.check_in, r.check_out
        FROM channel.channel_bookings b
        JOIN live r ON r.id = b.reservation_id
        WHERE b.mapping_id = :mapping_id AND b.status = 'active' AND b.end_date > :today
    ),
    conflicts AS (
        SELECT count(*) AS n FROM mine a
        WHERE EXISTS (
            SELECT 1 FROM live o
            WHERE o.id <> a.id AND o.check_in < a.check_out AND o.check_out > a.check_in
        )
    ),
    -- Each pair once (two stays of this feed: from the lower id), never seen before, and no
    -- more than :pair_limit of them: the scan stops there, however many a hostile feed makes.
    fresh AS (
        SELECT least(a.id, o.id) AS lo, greatest(a.id, o.id) AS hi
        FROM mine a
        JOIN live o
          ON o.id <> a.id AND o.check_in < a.check_out AND o.check_out > a.check_in
         AND (o.id > a.id OR o.id NOT IN (SELECT id FROM mine))
        WHERE NOT EXISTS (
            SELECT 1 FROM channel.overlap_pairs x
            WHERE x.lo = least(a.id, o.id) AND x.hi = greatest(a.id, o.id)
        )
        LIMIT :pair_limit
    ),
    -- While a summary ticket of the property is open, its pairs are noted on it, not raised
    -- one by one (a broken feed would otherwise raise ten more at every import).
    summary_open AS (
        SELECT id FROM service.tickets
        WHERE dedupe_key = 'channel:overlaps:' || CAST(:property_id AS text)
          AND status NOT IN ('resolved', 'closed', 'cancelled')
    ),
    numbered AS (
        SELECT lo, hi, row_number() OVER (ORDER BY lo, hi) AS n FROM fresh
    ),
    recorded AS (
        INSERT INTO channel.overlap_pairs (lo, hi, property_id, mapping_id, ticket_id, found_at)
        SELECT lo, hi, :property_id, :mapping_id,
               CASE WHEN n <= :cap AND NOT EXISTS (SELECT 1 FROM summary_open)
                    THEN ops.uuid_generate_v7() END,
               :as_of
        FROM numbered
        ON CONFLICT (lo, hi) DO NOTHING
        RETURNING lo, hi, ticket_id
    ),
    created AS (
        INSERT INTO service.tickets
            (id, ticket_type, category, title, description, status, priority, source,
             property_id, reservation_id, dedupe_key)
        SELECT k.ticket_id, 'RSV', 'double_booking',
               format('Possible double booking at %s: %s to %s', p.property_code,
                      greatest(a.check_in, b.check_in), least(a.check_out, b.check_out)),
               format('Two live stays of %s overlap: %s (%s, %s, %s to %s) and %s (%s, %s,'
                      ' %s to %s). Found by channel sync: move or cancel one of them.',
                      p.property_code,
                      coalesce(a.confirmation_code, 'no code'), a.source, a.reservation_type,
                      a.check_in, a.check_out,
                      coalesce(b.confirmation_code, 'no code'), b.source, b.reservation_type,
                      b.check_in, b.check_out),
               'open', 'urgent', 'channel', :property_id, k.hi,
               'channel:overlap:' || k.lo::text || ':' || k.hi::text
        FROM recorded k
        JOIN live a ON a.id = k.lo
        JOIN live b ON b.id = k.hi
        JOIN property.properties p ON p.id = :property_id
        WHERE k.ticket_id IS NOT NULL
        ON CONFLICT (dedupe_key)
            WHERE dedupe_key IS NOT NULL
              AND status NOT IN ('resolved', 'closed', 'cancelled')
            DO NOTHING
        RETURNING id, reservation_id, dedupe_key
    ),
    found AS (
        SELECT count(*) AS total,
               CASE WHEN count(*) >= :pair_limit THEN 'at least ' ELSE '' END AS qualifier
        FROM recorded
    ),
    summary AS (
        INSERT INTO service.tickets
            (ticket_type, category, title, description, status, priority, source,
             property_id, dedupe_key)
        SELECT 'RSV', 'double_booking',
               format('Possible double bookings at %s: %s%s overlapping pairs of stays',
                      p.property_code, f.qualifier, f.total),
               format('One channel import found %s%s pairs of live stays of %s that overlap;'
                      ' the first %s have tickets of their own, the rest are recorded'
                      ' (channel.overlap_pairs) and will not be raised again; while this'
                      ' ticket is open, pairs found later are noted here. So many usually means'
                      ' a broken feed: check the listing''s calendar at the channel (mapping'
                      ' %s).',
                      f.qualifier, f.total, p.property_code, CAST(:cap AS int),
                      CAST(:mapping_id AS uuid)),
               'open', 'urgent', 'channel', :property_id,
               'channel:overlaps:' || CAST(:property_id AS text)
        FROM found f JOIN property.properties p ON p.id = :property_id
        WHERE f.total > :cap AND NOT EXISTS (SELECT 1 FROM summary_open)
        ON CONFLICT (dedupe_key)
            WHERE dedupe_key IS NOT NULL
              AND status NOT IN ('resolved', 'closed', 'cancelled')
            DO NOTHING
        RETURNING id
    ),
    events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, occurred_at, actor, data)
        SELECT c.id, 'created', :as_of, 'system',
               jsonb_build_object('reason', 'possible_double_booking',
                                  'reservation_ids',
                                  jsonb_build_array(split_part(c.dedupe_key, ':', 3),
                                                    c.reservation_id),
                                  'mapping_id', CAST(:mapping_id AS uuid))
        FROM created c
        UNION ALL
        SELECT s.id, 'created', :as_of, 'system',
               jsonb_build_object('reason', 'possible_double_bookings',
                                  'pairs', (SELECT total FROM found),
                                  'mapping_id', CAST(:mapping_id AS uuid))
        FROM summary s
        UNION ALL
        SELECT o.id, 'overlaps_found', :as_of, 'system',
               jsonb_build_object('pairs', f.total, 'mapping_id', CAST(:mapping_id AS uuid))
        FROM summary_open o, found f
        WHERE f.total > 0
    )
    SELECT (SELECT n FROM conflicts) AS conflicts,
           (SELECT total FROM found) AS new_pairs,
           coalesce((SELECT array_agg(id) FROM created), '{}'::uuid[])
               || coalesce((SELECT array_agg(id) FROM summary), '{}'::uuid[]) AS tickets
    """
)


def raise_overlap_tickets(
    session: Session,
    *,
    mapping_id: uuid.UUID,
    property_id: uuid.UUID,
    as_of: dt.datetime,
    today: dt.date,
) -> tuple[int, list[uuid.UUID]]:
    """(this mapping's stays that overlap another live stay, the tickets created)."""
    row = session.execute(
        OVERLAP_TICKETS,
        {
            "mapping_id": mapping_id,
            "property_id": property_id,
            "as_of": as_of,
            "today": today,
            "cap": MAX_TICKETS_PER_IMPORT,
            "pair_limit": MAX_PAIRS_PER_IMPORT,
        },
    ).one()
    return row.conflicts, list(row.tickets)
