"""The SQL of the ops jobs: ops.purge, ops.watch and the metrics a scrape computes."""

from __future__ import annotations

from sqlalchemy import text

# Durations (seconds) of the job-run histogram's buckets (`le`), cumulative as Prometheus has
# them: from a millisecond sweep that found nothing to a statement run of minutes.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_BUCKET_COUNTS = ", ".join(
    f"count(*) FILTER (WHERE duration_ms <= {int(le * 1000)})" for le in DURATION_BUCKETS
)

# -- ops.purge ---------------------------------------------------------------------------------

# A `running` row is left alone whatever its age: it is either running or evidence of a lost
# worker that ops should see.
PURGE_JOB_RUNS = text("DELETE FROM ops.job_runs WHERE started_at < :cutoff AND status <> 'running'")
# Only what was delivered (or given up on); a queued message is still somebody's work.
PURGE_MESSAGES = text(
    "DELETE FROM comms.messages WHERE created_at < :cutoff AND status IN ('sent', 'failed')"
)
# A folded row's age is its last run's (finished_at); the hashed NOT IN keeps every mapping's
# newest row without a lookup per deleted row.
PURGE_SYNC_LOG = text(
    """
    DELETE FROM channel.sync_log s
    WHERE (s.finished_at < :cutoff OR (s.finished_at IS NULL AND s.started_at < :cutoff))
      AND s.id NOT IN (
          SELECT last_sync_log_id FROM channel.channel_mappings
          WHERE last_sync_log_id IS NOT NULL
      )
    """
)
# Incidents resolved long ago; open ones are kept whatever their age.
PURGE_INCIDENTS = text(
    "DELETE FROM ops.incidents WHERE resolved_at IS NOT NULL AND resolved_at < :cutoff"
)

# -- ops.watch: what it looks at --------------------------------------------------------------

# The oldest run on record: slots before it are before this system ran (a fresh install has
# missed nothing). Index-only on ix_job_runs_started_at.
FIRST_RUN = text("SELECT min(started_at) FROM ops.job_runs")
# Whether a run of the task started in [lo, hi] (ix_job_runs_task_name_started_at).
RUN_STARTED_BETWEEN = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM ops.job_runs
        WHERE task_name = :task AND started_at >= :lo AND started_at <= :hi
    )
    """
)
# The task's newest run of each kind that matters, walking its index backwards: the newest
# start, the newest finished (a failure about to be retried is not the task failing), the
# newest success.
LATEST_RUNS = text(
    """
    SELECT t.task,
           s.started_at AS last_started_at, s.status AS last_status,
           f.id AS finished_id, f.status AS finished_status, f.started_at AS finished_at,
           f.error AS finished_error, f.task_id AS finished_task_id,
           ok.started_at AS last_success_at
    FROM unnest(CAST(:tasks AS text[])) AS t(task)
    LEFT JOIN LATERAL (
        SELECT started_at, status FROM ops.job_runs
        WHERE task_name = t.task AND started_at <= :now
        ORDER BY started_at DESC LIMIT 1
    ) s ON true
    LEFT JOIN LATERAL (
        SELECT id, status, started_at, error, task_id FROM ops.job_runs
        WHERE task_name = t.task AND started_at <= :now
          AND (status = 'succeeded'
               OR status = 'failed' AND coalesce(error, '') NOT LIKE '%(will retry)')
        ORDER BY started_at DESC LIMIT 1
    ) f ON true
    LEFT JOIN LATERAL (
        SELECT started_at FROM ops.job_runs
        WHERE task_name = t.task AND status = 'succeeded' AND started_at <= :now
        ORDER BY started_at DESC LIMIT 1
    ) ok ON true
    """
)
# Runs still `running` past the hard time limit: a worker lost, or a task stuck (the partial
# index of running rows).
OVERRUNNING = text(
    """
    SELECT task_name, count(*) AS runs, min(started_at) AS since,
           (array_agg(task_id ORDER BY started_at))[1] AS task_id
    FROM ops.job_runs
    WHERE status = 'running' AND started_at < :before
    GROUP BY task_name
    """
)
# Open dead letters per task (ix_dead_letters_open).
OPEN_DEAD_LETTERS = text(
    """
    SELECT task_name, count(*) AS letters, min(failed_at) AS since
    FROM ops.dead_letters WHERE status = 'open'
    GROUP BY task_name
    """
)
OPEN_INCIDENTS = text(
    """
    SELECT id, task_name, kind, opened_at, details FROM ops.incidents
    WHERE resolved_at IS NULL
    ORDER BY task_name, kind
    """
)

# -- ops.watch: opening and resolving ---------------------------------------------------------

OPEN_INCIDENT = text(
    """
    INSERT INTO ops.incidents (task_name, kind, opened_at, details)
    VALUES (:task, :kind, :now, CAST(:details AS jsonb))
    ON CONFLICT (task_name, kind) WHERE resolved_at IS NULL DO NOTHING
    RETURNING id
    """
)
# Resolves the open incidents whose condition has cleared (those not in :keep, "task|kind").
RESOLVE_CLEARED = text(
    """
    UPDATE ops.incidents SET resolved_at = :now
    WHERE resolved_at IS NULL
      AND task_name || '|' || kind <> ALL(CAST(:keep AS text[]))
    RETURNING id, task_name, kind, opened_at, details
    """
)
NOTIFY = text(
    """
    INSERT INTO comms.messages
        (channel, recipient, subject, body, related_type, related_id, dedupe_key)
    VALUES ('email', :recipient, :subject, :body, 'incident', :incident_id, :dedupe_key)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
    """
)

# -- ops.watch: folding runs and misses into the totals ---------------------------------------

# Finished runs not yet counted (at most :limit a watch: a backlog is folded over a few
# minutes), marked counted and added to the totals, in one statement.
FOLD_JOB_RUNS = text(
    f"""
    WITH picked AS (
        SELECT id FROM ops.job_runs
        WHERE NOT counted AND status <> 'running'
        LIMIT :limit
    ),
    marked AS (
        UPDATE ops.job_runs r SET counted = true
        FROM picked WHERE r.id = picked.id
        RETURNING r.task_name, r.status, r.duration_ms
    ),
    fresh AS (
        SELECT task_name, status, count(*) AS runs,
               coalesce(sum(duration_ms), 0) / 1000.0 AS seconds,
               ARRAY[{_BUCKET_COUNTS}] AS buckets
        FROM marked
        GROUP BY task_name, status
    ),
    added AS (
        INSERT INTO ops.job_run_totals AS t (task_name, status, runs, duration_seconds, buckets)
        SELECT task_name, status, runs, seconds, buckets FROM fresh
        ON CONFLICT (task_name, status) DO UPDATE SET
            runs = t.runs + EXCLUDED.runs,
            duration_seconds = t.duration_seconds + EXCLUDED.duration_seconds,
            buckets = ARRAY(
                SELECT coalesce(a, 0) + coalesce(b, 0)
                FROM unnest(t.buckets, EXCLUDED.buckets) AS u(a, b)
            )
        RETURNING 1
    )
    SELECT coalesce(sum(runs), 0) AS folded, (SELECT count(*) FROM added) AS rows FROM fresh
    """
)
FOLD_MISSES = text(
    """
    WITH marked AS (
        UPDATE service.ticket_misses m SET counted = true
        WHERE m.id IN (SELECT id FROM service.ticket_misses WHERE NOT counted LIMIT :limit)
        RETURNING m.sla_kind
    ),
    fresh AS (SELECT sla_kind, count(*) AS breaches FROM marked GROUP BY sla_kind),
    added AS (
        INSERT INTO ops.sla_breach_totals AS t (sla_kind, breaches)
        SELECT sla_kind, breaches FROM fresh
        ON CONFLICT (sla_kind) DO UPDATE SET breaches = t.breaches + EXCLUDED.breaches
        RETURNING 1
    )
    SELECT coalesce(sum(breaches), 0) AS folded, (SELECT count(*) FROM added) AS rows
    FROM fresh
    """
)

# -- metrics: computed at scrape time ---------------------------------------------------------

# The counters are the totals plus the finished runs not yet counted (a minute's worth); the
# two are added up in Python (a few dozen rows).
JOB_RUN_TOTALS = text(
    "SELECT task_name, status, runs, duration_seconds AS seconds, buckets FROM ops.job_run_totals"
)
RECENT_JOB_RUNS = text(
    f"""
    SELECT task_name, status, count(*) AS runs,
           coalesce(sum(duration_ms), 0) / 1000.0 AS seconds,
           ARRAY[{_BUCKET_COUNTS}] AS buckets
    FROM ops.job_runs
    WHERE NOT counted AND status <> 'running'
    GROUP BY task_name, status
    """
)
SLA_BREACH_COUNTS = text(
    """
    SELECT sla_kind, sum(breaches) AS breaches FROM (
        SELECT sla_kind, breaches FROM ops.sla_breach_totals
        UNION ALL
        SELECT sla_kind, count(*) FROM service.ticket_misses WHERE NOT counted
        GROUP BY sla_kind
    ) u
    GROUP BY sla_kind ORDER BY sla_kind
    """
)
# Feeds that need a look, by why: failing (errors in a row), held (cancellations held back),
# stale (no successful sync for a day while active).
UNHEALTHY_FEEDS = text(
    """
    SELECT count(*) FILTER (WHERE m.consecutive_failures > 0) AS failing,
           count(*) FILTER (WHERE m.consecutive_failures = 0 AND m.hold_started_at IS NOT NULL)
               AS held,
           count(*) FILTER (WHERE m.consecutive_failures = 0 AND m.hold_started_at IS NULL
                            AND coalesce(m.last_synced_at, m.created_at) < :stale_before)
               AS stale
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    WHERE m.is_active AND m.import_url IS NOT NULL AND c.status = 'active'
    """
)
