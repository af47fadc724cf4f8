"""Every SQL statement of analytics.refresh (SPEC 6.6), one named constant each, and the
settings the refreshes run with. The REFRESH statements themselves are built in refresh.py:
a view's name is an identifier, which cannot be a bound parameter."""

from __future__ import annotations

from sqlalchemy import text

# Settings for the refreshes (db.session.local_settings), measured in bench/bench_analytics.py:
# - work_mem: memory per sort or hash of a refresh; the server default of 4 MB sends the window
#   sorts and the concurrent refresh's diff to disk at scale 10;
# - jit off: compiling these wide plans costs seconds per view and saves less than it costs
#   (at scale 1, JIT tripled the refresh's CPU time).
REFRESH_SETTINGS = {"work_mem": "128MB", "jit": "off"}
# A concurrent refresh writes the new contents to a temporary table first; with the default
# 8 MB of local buffers a million-row view goes through the disk on its way (about a third of
# occupancy_trends_mv's refresh time at scale 10). Settable only before the connection's first
# temporary table, so it takes effect on a connection's first refresh and stays for its life.
TEMP_BUFFERS = "256MB"

# temp_buffers for this transaction (refused once the connection has used temporary tables).
SET_TEMP_BUFFERS = text("SELECT set_config('temp_buffers', :value, true)")

# When a successful run last populated or refreshed :view, from the results of the runs of
# :task started since a day before :since (the (task_name, started_at) index finds them).
LAST_REFRESHED = text(
    "SELECT max((result -> 'views' -> CAST(:view AS text) ->> 'refreshed_at')::timestamptz)"
    " FROM ops.job_runs"
    " WHERE task_name = :task AND status = 'succeeded'"
    " AND started_at >= CAST(:since AS timestamptz) - interval '1 day'"
    " AND result -> 'views' -> CAST(:view AS text) ->> 'status'"
    " IN ('populated', 'refreshed')"
)

# Whether a materialized view has contents (NULL: no such view).
IS_POPULATED = text(
    "SELECT ispopulated FROM pg_matviews WHERE schemaname = :schema AND matviewname = :view"
)

# The real time (not the transaction's start): when a view's refresh finished.
CLOCK_NOW = text("SELECT clock_timestamp()")
