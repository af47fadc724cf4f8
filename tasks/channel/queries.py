"""The SQL of channel sync: every statement of the package, by the module that runs it.

The constants are named for what they do; tasks.channel.<module> imports this as `q`.
"""

from __future__ import annotations

from sqlalchemy import text

# -- The sweep (channel.sync): due connections and their mappings. -------------------------------

CONNECTION_EXISTS = text("SELECT 1 FROM channel.channel_connections WHERE id = :id")
# Claims the due connections' round (one interval ahead: two sweeps cannot both claim it) and
# requests their mappings that are not backing off on their own.
REQUEST_DUE = text(
    """
    WITH claimed AS (
        UPDATE channel.channel_connections c
        SET next_sync_at = CAST(:anchor AS timestamptz)
                           + make_interval(mins => c.sync_interval_minutes)
        WHERE c.status = 'active'
          AND (CAST(:connection_id AS uuid) IS NULL
               AND (c.next_sync_at IS NULL OR c.next_sync_at <= :as_of)
               OR c.id = :connection_id)
        RETURNING c.id
    )
    UPDATE channel.channel_mappings m
    SET sync_requested_at = coalesce(m.sync_requested_at, :as_of)
    FROM claimed
    WHERE claimed.id = m.connection_id AND m.is_active AND m.import_url IS NOT NULL
      AND (CAST(:connection_id AS uuid) IS NOT NULL
           OR m.next_sync_at IS NULL OR m.next_sync_at <= :as_of)
    RETURNING m.id, m.connection_id
    """
)


# The end of a held-cancellations episode, by ops (`cmw channels release`).
END_HOLD_EPISODE = text(
    "UPDATE channel.channel_mappings SET hold_started_at = NULL WHERE id = :mapping_id"
)

# -- Claims and locks (tasks.channel.sync). ------------------------------------------------------

LOCK_PROPERTY = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")

# Claims are taken one batch at a time, so two batches starting together split the requested
# mappings between them instead of racing for the same ones.
LOCK_CLAIMS = text("SELECT pg_advisory_xact_lock(hashtextextended('cmw.channel.claim', 0))")

CLAIMED_COLUMNS = """
    m.id, m.connection_id, m.property_id, m.import_url, m.last_etag, m.last_modified,
    m.last_feed_hash, m.consecutive_failures, m.hold_started_at, m.last_sync_log_id,
    c.channel, c.sync_interval_minutes, c.settings,
    c.consecutive_failures AS connection_failures, p.timezone
"""

SYNCABLE = "m.is_active AND c.status = 'active' AND m.import_url IS NOT NULL"

CLAIMABLE = "(m.claimed_until IS NULL OR m.claimed_until < now() OR m.claimed_by = :token)"

CLAIM_ONE = text(
    f"""
    UPDATE channel.channel_mappings m
    SET claimed_by = :token, claimed_until = now() + make_interval(secs => :lease)
    FROM channel.channel_connections c, property.properties p
    WHERE m.id = :mapping_id AND c.id = m.connection_id AND p.id = m.property_id
      AND {SYNCABLE} AND {CLAIMABLE}
    RETURNING {CLAIMED_COLUMNS}
    """
)

WHY_NOT_CLAIMED = text(
    """
    SELECT m.is_active, c.status AS connection_status, m.import_url IS NOT NULL AS imports
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    WHERE m.id = :mapping_id
    """
)

# Requested mappings that can no longer be synced (made inactive, connection paused) stop
# being requested, so they never take a batch's place.
DROP_UNSYNCABLE = text(
    f"""
    UPDATE channel.channel_mappings m SET sync_requested_at = NULL
    FROM channel.channel_connections c
    WHERE m.sync_requested_at IS NOT NULL AND c.id = m.connection_id AND NOT ({SYNCABLE})
    """
)

# The next `limit` requested mappings, taking turns between hosts (the first requested feed of
# each host, then the second of each, ...) so that every host's slots are busy at once.
CLAIM_BATCH = text(
    f"""
    WITH turns AS (
        SELECT m.id,
               row_number() OVER (
                   PARTITION BY lower(substring(m.import_url from
                       '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\\[[^]]*\\]|[^/?#:]*)'))
                   ORDER BY m.sync_requested_at, m.id) AS turn,
               m.sync_requested_at
        FROM channel.channel_mappings m
        JOIN channel.channel_connections c ON c.id = m.connection_id
        WHERE m.sync_requested_at IS NOT NULL AND {SYNCABLE}
          AND (m.claimed_until IS NULL OR m.claimed_until < now())
    ),
    picked AS (
        SELECT id FROM turns ORDER BY turn, sync_requested_at, id LIMIT :limit
    )
    UPDATE channel.channel_mappings m
    SET claimed_by = :token, claimed_until = now() + make_interval(secs => :lease)
    FROM channel.channel_connections c, property.properties p
    WHERE m.id IN (SELECT id FROM picked) AND c.id = m.connection_id AND p.id = m.property_id
      AND {SYNCABLE} AND {CLAIMABLE}
    RETURNING {CLAIMED_COLUMNS}
    """
)

# The claims of a batch that ran out of time, handed back (still requested).
UNCLAIM = text(
    """
    UPDATE channel.channel_mappings SET claimed_by = NULL, claimed_until = NULL
    WHERE id = ANY(CAST(:ids AS uuid[])) AND claimed_by = :token
    """
)

# Step 3's first statement: the claim is still ours (it did not lapse while we fetched), and
# the mapping's row is locked for the rest of the apply.
STILL_CLAIMED = text(
    """
    SELECT 1 FROM channel.channel_mappings
    WHERE id = :mapping_id AND claimed_by = :token
    FOR UPDATE
    """
)

RELEASE_CLAIM = text(
    f"""
    SELECT {CLAIMED_COLUMNS}
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    JOIN property.properties p ON p.id = m.property_id
    WHERE m.id = :mapping_id
    FOR UPDATE OF m
    """
)


# -- Applying a feed: bookings, reservations, held cancellations (tasks.channel.apply). ----------

EXISTING_BOOKINGS = text(
    """
    SELECT external_uid, kind, payload_hash, status, reservation_id
    FROM channel.channel_bookings
    WHERE mapping_id = :mapping_id AND external_uid = ANY(CAST(:uids AS text[]))
    """
)

UPSERT_BOOKINGS = text(
    """
    INSERT INTO channel.channel_bookings AS b
        (mapping_id, external_uid, kind, start_date, end_date, summary, description,
         payload_hash, status, first_seen_at, last_seen_at)
    SELECT :mapping_id, f.uid, f.kind, f.start_date, f.end_date, f.summary, f.description,
           f.payload_hash, 'active', :as_of, :as_of
    FROM unnest(CAST(:uids AS text[]), CAST(:kinds AS text[]), CAST(:starts AS date[]),
                CAST(:ends AS date[]), CAST(:summaries AS text[]),
                CAST(:descriptions AS text[]), CAST(:hashes AS text[]))
         AS f(uid, kind, start_date, end_date, summary, description, payload_hash)
    ON CONFLICT (mapping_id, external_uid) DO UPDATE SET
        kind = EXCLUDED.kind,
        start_date = EXCLUDED.start_date,
        end_date = EXCLUDED.end_date,
        summary = EXCLUDED.summary,
        description = EXCLUDED.description,
        payload_hash = EXCLUDED.payload_hash,
        status = 'active',
        cancelled_at = NULL,
        held_since = NULL,
        last_seen_at = EXCLUDED.last_seen_at
    """
)

REFRESH_LAST_SEEN = text(
    """
    UPDATE channel.channel_bookings SET last_seen_at = :as_of
    WHERE mapping_id = :mapping_id AND external_uid = ANY(CAST(:uids AS text[]))
      AND last_seen_at < :stale_before
    """
)


def _adopt(rows: str, key: str) -> str:
    """The CTEs `candidates` and `adopted`: for each stay of `rows` (keyed by `key`, with `kind`
    and `code`), the live reservation of this property that another service (the channel
    gateway) already recorded under the same channel and confirmation code, matched one to one.
    Adopting it instead of creating another avoids a ghost double booking."""
    return f"""
    candidates AS (
        SELECT DISTINCT ON (s.{key}) s.{key}, r.id AS reservation_id
        FROM {rows} s
        JOIN reservations.reservations r
          ON r.property_id = :property_id AND r.confirmation_code = s.code
         AND r.source = :source AND r.status <> 'cancelled' AND r.reservation_type <> 'block'
        WHERE s.kind = 'reservation' AND s.code IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM channel.channel_bookings x WHERE x.reservation_id = r.id
          )
        ORDER BY s.{key}, r.id
    ),
    adopted AS (
        SELECT DISTINCT ON (reservation_id) {key}, reservation_id
        FROM candidates ORDER BY reservation_id, {key}
    )"""


def _create_reservations(rows: str) -> str:
    """The CTE `created`: a reservation for each row of `rows` (its id made beforehand, so the
    booking is linked in the same statement): a stay, or a block for a block."""
    return f"""
    created AS (
        INSERT INTO reservations.reservations
            (id, property_id, source, reservation_type, status, check_in, check_out,
             confirmation_code, booked_at)
        SELECT reservation_id, :property_id, :source,
               CASE WHEN kind = 'block' THEN 'block' ELSE 'guest' END, 'confirmed',
               start_date, end_date, code, :as_of
        FROM {rows}
        RETURNING id
    )"""


# New events: each booking is inserted with its reservation in one statement (adopted, or made
# here), so neither row is written twice.
INSERT_NEW = text(
    f"""
    WITH feed AS (
        SELECT * FROM unnest(CAST(:uids AS text[]), CAST(:kinds AS text[]),
                             CAST(:starts AS date[]), CAST(:ends AS date[]),
                             CAST(:summaries AS text[]), CAST(:descriptions AS text[]),
                             CAST(:hashes AS text[]), CAST(:codes AS text[]))
            AS f(uid, kind, start_date, end_date, summary, description, payload_hash, code)
    ),
    {_adopt("feed", "uid")},
    ids AS (
        SELECT f.*, coalesce(a.reservation_id, ops.uuid_generate_v7()) AS reservation_id,
               a.uid IS NOT NULL AS adopted
        FROM feed f LEFT JOIN adopted a ON a.uid = f.uid
    ),
    {_create_reservations("ids WHERE NOT adopted")},
    booked AS (
        INSERT INTO channel.channel_bookings
            (mapping_id, external_uid, kind, start_date, end_date, summary, description,
             payload_hash, status, reservation_id, first_seen_at, last_seen_at)
        SELECT :mapping_id, uid, kind, start_date, end_date, summary, description,
               payload_hash, 'active', reservation_id, :as_of, :as_of
        FROM ids
        RETURNING external_uid
    )
    SELECT uid, reservation_id, kind, adopted FROM ids
    """
)

# A changed booking without a reservation (another service deleted it) gets one again, adopted
# or new, linked in the same statement.
LINK_RESERVATIONS = text(
    f"""
    WITH src AS (
        SELECT b.id AS booking_id, b.kind, b.start_date, b.end_date, f.code
        FROM unnest(CAST(:uids AS text[]), CAST(:codes AS text[])) AS f(uid, code)
        JOIN channel.channel_bookings b
          ON b.mapping_id = :mapping_id AND b.external_uid = f.uid
        WHERE b.reservation_id IS NULL AND b.status = 'active'
    ),
    {_adopt("src", "booking_id")},
    fresh AS (
        SELECT s.*, ops.uuid_generate_v7() AS reservation_id
        FROM src s
        WHERE NOT EXISTS (SELECT 1 FROM adopted a WHERE a.booking_id = s.booking_id)
    ),
    {_create_reservations("fresh")},
    links AS (
        SELECT booking_id, reservation_id, false AS adopted FROM fresh
        UNION ALL
        SELECT booking_id, reservation_id, true AS adopted FROM adopted
    )
    UPDATE channel.channel_bookings b SET reservation_id = l.reservation_id
    FROM links l
    WHERE b.id = l.booking_id
    RETURNING b.external_uid, b.reservation_id, b.kind, l.adopted
    """
)

# The reservations of written bookings follow their events: dates, stay vs block, the code,
# and a cancelled one comes back when its event is in the feed again.
UPDATE_RESERVATIONS = text(
    """
    WITH target AS (
        SELECT r.id, b.external_uid, b.start_date, b.end_date,
               CASE WHEN b.kind = 'block' THEN 'block'
                    WHEN r.reservation_type = 'block' THEN 'guest'
                    ELSE r.reservation_type END AS new_type,
               CASE WHEN r.status = 'cancelled' THEN 'confirmed' ELSE r.status END
                   AS new_status,
               coalesce(f.code, r.confirmation_code) AS new_code,
               r.status = 'cancelled' AS reactivated
        FROM unnest(CAST(:uids AS text[]), CAST(:codes AS text[])) AS f(uid, code)
        JOIN channel.channel_bookings b
          ON b.mapping_id = :mapping_id AND b.external_uid = f.uid
        JOIN reservations.reservations r ON r.id = b.reservation_id
    )
    UPDATE reservations.reservations r SET
        check_in = t.start_date,
        check_out = t.end_date,
        reservation_type = t.new_type,
        status = t.new_status,
        cancelled_at = CASE WHEN t.reactivated THEN NULL ELSE r.cancelled_at END,
        confirmation_code = t.new_code
    FROM target t
    WHERE r.id = t.id
      AND (r.check_in, r.check_out, r.reservation_type, r.status, r.confirmation_code)
          IS DISTINCT FROM (t.start_date, t.end_date, t.new_type, t.new_status, t.new_code)
    RETURNING r.id, t.external_uid, r.reservation_type
    """
)

# Every live booking whose stay has not ended, and whether the feed still lists it.
LIVE_BOOKINGS = text(
    """
    SELECT id, held_since, external_uid <> ALL(CAST(:present AS text[])) AS gone
    FROM channel.channel_bookings
    WHERE mapping_id = :mapping_id AND status = 'active' AND end_date > :today
    """
)

# Held bookings the feed lists again, or whose stay has ended meanwhile, are held no more.
UNHOLD = text(
    """
    UPDATE channel.channel_bookings SET held_since = NULL
    WHERE mapping_id = :mapping_id AND held_since IS NOT NULL
      AND (external_uid = ANY(CAST(:present AS text[])) OR end_date <= :today
           OR status <> 'active')
    """
)

HOLD = text(
    """
    UPDATE channel.channel_bookings SET held_since = :as_of
    WHERE id = ANY(CAST(:ids AS uuid[])) AND held_since IS NULL
    """
)

# Bookings cancelled with their reservations -- unless the guest is already checked in or
# out, which a person must sort out (the booking is still marked cancelled, and the result
# counts it).
CANCEL_BOOKINGS = text(
    """
    WITH gone AS (
        UPDATE channel.channel_bookings b
        SET status = 'cancelled', cancelled_at = :as_of, held_since = NULL
        WHERE b.id = ANY(CAST(:ids AS uuid[])) AND b.status = 'active'
        RETURNING b.id, b.reservation_id
    ),
    cancelled AS (
        UPDATE reservations.reservations r SET status = 'cancelled', cancelled_at = :as_of
        FROM gone
        WHERE r.id = gone.reservation_id AND r.status IN ('inquiry', 'confirmed')
        RETURNING r.id, r.reservation_type
    )
    SELECT
        (SELECT count(*) FROM gone) AS bookings,
        (SELECT count(*) FROM cancelled) AS reservations,
        (SELECT count(*) FROM gone JOIN reservations.reservations r ON r.id = gone.reservation_id
          WHERE r.status IN ('checked_in', 'checked_out')) AS kept,
        coalesce(
            (SELECT array_agg(id) FROM cancelled WHERE reservation_type <> 'block'),
            '{}'::uuid[]
        ) AS stays
    """
)

# The bookings still held for a mapping (live, not ended), and those whose hold has run out.
HELD_BOOKINGS = text(
    """
    SELECT id, held_since <= :expire_before AS expired
    FROM channel.channel_bookings
    WHERE mapping_id = :mapping_id AND held_since IS NOT NULL AND status = 'active'
      AND end_date > :today
    """
)


# -- Double bookings (tasks.channel.overlaps). ---------------------------------------------------

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


# -- What an import records: sync_log, backoff, notices (tasks.channel.bookkeeping). -------------

# The run's sync_log row (a fold into the newest one when both changed nothing) and the
# mapping's bookkeeping, in one round trip. The claim is released here too.
RECORD_SUCCESS = text(
    """
    WITH folded AS (
        UPDATE channel.sync_log s SET
            runs = s.runs + 1, last_started_at = :started_at, finished_at = :finished_at,
            http_status = :http_status, events_seen = :events_seen
        WHERE :foldable AND s.id = CAST(:last_log_id AS uuid) AND s.mapping_id = :mapping_id
          AND s.status = :status AND s.error IS NULL
          AND s.created = 0 AND s.updated = 0 AND s.cancelled = 0
          AND s.held = :held AND s.rejected = :rejected AND s.conflicts = :conflicts
        RETURNING s.id
    ),
    inserted AS (
        INSERT INTO channel.sync_log
            (connection_id, mapping_id, started_at, finished_at, status, http_status,
             events_seen, created, updated, cancelled, conflicts, held, rejected, error)
        SELECT :connection_id, :mapping_id, :started_at, :finished_at, :status, :http_status,
               :events_seen, :created, :updated, :cancelled, :conflicts, :held, :rejected, NULL
        WHERE NOT EXISTS (SELECT 1 FROM folded)
        RETURNING id
    ),
    logged AS (SELECT id FROM folded UNION ALL SELECT id FROM inserted)
    UPDATE channel.channel_mappings SET
        last_etag = :etag, last_modified = :last_modified, last_feed_hash = :feed_hash,
        last_synced_at = :as_of,
        last_changed_at = CASE WHEN :changed THEN :as_of ELSE last_changed_at END,
        next_sync_at = NULL, consecutive_failures = 0, failing_since = NULL, last_error = NULL,
        hold_started_at = :hold_started_at,
        last_sync_log_id = (SELECT id FROM logged),
        claimed_by = NULL, claimed_until = NULL, sync_requested_at = NULL
    WHERE id = :mapping_id
    RETURNING last_sync_log_id AS log_id, (SELECT count(*) FROM folded) AS folded
    """
)

MAPPING_FAILED = text(
    """
    UPDATE channel.channel_mappings SET
        consecutive_failures = consecutive_failures + 1,
        failing_since = coalesce(failing_since, :as_of),
        last_error = :error,
        next_sync_at = :next_sync_at,
        claimed_by = NULL, claimed_until = NULL, sync_requested_at = NULL
    WHERE id = :id
    """
)

INSERT_ERROR_LOG = text(
    """
    WITH logged AS (
        INSERT INTO channel.sync_log
            (connection_id, mapping_id, started_at, finished_at, status, http_status, error)
        VALUES (:connection_id, :mapping_id, :started_at, :finished_at, 'error', :http_status,
                :error)
        RETURNING id
    )
    UPDATE channel.channel_mappings SET last_sync_log_id = (SELECT id FROM logged)
    WHERE id = :mapping_id
    RETURNING last_sync_log_id AS id
    """
)

# The connection aggregates its active mappings: failing (and backing off as a whole, to the
# earliest retry any of them wants) only while every one of them is failing.
CONNECTION_AGGREGATE = text(
    """
    UPDATE channel.channel_connections c SET
        consecutive_failures = a.min_failures,
        failing_since = CASE WHEN a.min_failures > 0 THEN a.failing_since END,
        last_error = CASE WHEN :failed THEN :error
                          WHEN a.max_failures = 0 THEN NULL
                          ELSE c.last_error END,
        last_success_at = CASE WHEN :failed THEN c.last_success_at
                               ELSE greatest(c.last_success_at, :as_of) END,
        next_sync_at = CASE WHEN a.min_failures > 0 THEN greatest(c.next_sync_at, a.retry_at)
                            WHEN :failed THEN c.next_sync_at
                            ELSE least(coalesce(c.next_sync_at, :next_round), :next_round) END
    FROM (
        SELECT coalesce(min(consecutive_failures), 0) AS min_failures,
               coalesce(max(consecutive_failures), 0) AS max_failures,
               max(failing_since) AS failing_since,
               min(next_sync_at) AS retry_at
        FROM channel.channel_mappings
        WHERE connection_id = :connection_id AND is_active AND import_url IS NOT NULL
    ) a
    WHERE c.id = :connection_id
    """
)

CONNECTION_SUCCEEDED = text(
    """
    UPDATE channel.channel_connections SET last_success_at = :as_of
    WHERE id = :connection_id AND (last_success_at IS NULL OR last_success_at < :as_of)
    """
)

# One notice per mapping and episode: the key carries the last success (or the mapping's
# creation when it never succeeded), so a feed that recovers and fails again is reported
# again, while every sweep of one episode finds the notice already queued.
FEED_HEALTH_NOTICES = text(
    """
    INSERT INTO comms.messages
        (channel, recipient, subject, body, related_type, related_id, dedupe_key)
    SELECT :ops_channel, :ops_recipient,
           format('Channel feed unhealthy: %s on %s', p.property_code, c.name),
           format('No successful sync of the %s feed of %s (%s) since %s.%s Check the listing'
                  ' and its feed URL at the channel (mapping %s).',
                  c.name, p.property_code, p.name,
                  CASE WHEN m.last_synced_at IS NULL THEN 'it was set up'
                       ELSE to_char(m.last_synced_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD HH24:MI "UTC"') END,
                  CASE WHEN m.consecutive_failures > 0
                       THEN format(' %s failures in a row, the last: %s.',
                                   m.consecutive_failures, m.last_error)
                       ELSE ' It has not been synced (is the worker or beat running?).' END,
                  m.id),
           'channel_mapping', m.id,
           'channel:feed_health:' || m.id::text || ':'
               || to_char(coalesce(m.last_synced_at, m.created_at) AT TIME ZONE 'UTC',
                          'YYYYMMDD"T"HH24MISS.US')
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    JOIN property.properties p ON p.id = m.property_id
    WHERE m.is_active AND m.import_url IS NOT NULL AND c.status <> 'paused'
      AND coalesce(m.last_synced_at, m.created_at) < :stale_before
      AND (CAST(:mapping_id AS uuid) IS NULL OR m.id = :mapping_id)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
    """
)

# One notice per held episode: the key carries the episode's start.
HOLD_NOTICE = text(
    """
    INSERT INTO comms.messages
        (channel, recipient, subject, body, related_type, related_id, dedupe_key)
    SELECT :ops_channel, :ops_recipient,
           format('Channel cancellations held: %s on %s', p.property_code, c.name),
           format('The %s feed of %s (%s) suddenly lists %s of its %s upcoming bookings no'
                  ' more. Channels glitch, so these cancellations are held, not applied: if'
                  ' the events come back nothing is cancelled; if they are still missing'
                  ' after %s hours they are cancelled then. If the bookings really are gone,'
                  ' apply the cancellations now: cmw channels release %s',
                  c.name, p.property_code, p.name, CAST(:held AS int), CAST(:live AS int),
                  CAST(:hold_hours AS numeric), m.id),
           'channel_mapping', m.id,
           'channel:held:' || m.id::text || ':'
               || to_char(CAST(:episode AS timestamptz) AT TIME ZONE 'UTC',
                          'YYYYMMDD"T"HH24MISS.US')
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    JOIN property.properties p ON p.id = m.property_id
    WHERE m.id = :mapping_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
    """
)


# -- The calendar export (tasks.channel.export). -------------------------------------------------

PROPERTIES_TO_EXPORT = text(
    """
    SELECT p.id FROM property.properties p
    WHERE CASE WHEN CAST(:property_id AS uuid) IS NULL
               THEN EXISTS (SELECT 1 FROM channel.channel_mappings m
                            WHERE m.property_id = p.id AND m.is_active)
               ELSE p.id = :property_id END
    ORDER BY p.id
    """
)

LIVE_STAYS = text(
    """
    SELECT p.id AS property_id, p.property_code, p.name, r.id AS reservation_id,
           r.reservation_type, r.check_in, r.check_out, r.updated_at
    FROM property.properties p
    LEFT JOIN reservations.reservations r
      ON r.property_id = p.id AND r.status <> 'cancelled'
     AND r.check_out >= (CAST(:as_of AS timestamptz) AT TIME ZONE p.timezone)::date
    WHERE p.id = ANY(CAST(:ids AS uuid[]))
    ORDER BY p.id, r.check_in, r.check_out, r.id
    """
)

UPSERT_EXPORTS = text(
    """
    INSERT INTO channel.calendar_exports AS e (property_id, ics, etag, generated_at)
    SELECT f.property_id, f.ics, f.etag, :as_of
    FROM unnest(CAST(:ids AS uuid[]), CAST(:ics AS text[]), CAST(:etags AS text[]))
         AS f(property_id, ics, etag)
    ON CONFLICT (property_id) DO UPDATE SET
        ics = EXCLUDED.ics, etag = EXCLUDED.etag, generated_at = EXCLUDED.generated_at
    WHERE e.etag IS DISTINCT FROM EXCLUDED.etag
    RETURNING e.property_id
    """
)


# -- `cmw channels` (tasks.channel.cli). ---------------------------------------------------------

HEALTH_ROWS = text(
    """
    SELECT m.id, c.channel, c.name AS connection, c.status AS connection_status,
           p.property_code, m.is_active, m.import_url IS NOT NULL AS imports,
           m.last_synced_at, m.last_changed_at, m.consecutive_failures, m.failing_since,
           m.last_error, m.created_at, m.hold_started_at,
           greatest(m.next_sync_at, c.next_sync_at) AS next_sync_at,
           coalesce(f.failures, 0) AS failures_24h
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    JOIN property.properties p ON p.id = m.property_id
    LEFT JOIN LATERAL (
        SELECT count(*) AS failures FROM channel.sync_log s
        WHERE s.mapping_id = m.id AND s.started_at >= :since AND s.status = 'error'
    ) f ON true
    ORDER BY c.name, p.property_code, m.id
    """
)
