"""analytics.refresh: refresh the materialized views of SPEC 6.6 (beat, hourly).

The views and every figure in them are defined in migrations/versions/0007_analytics_views.py
and explained in docs/ANALYTICS.md. This job only keeps them current:

- it runs as a singleton (the task base's transaction-scoped advisory lock), so two refreshes
  never overlap: a second copy records `skipped`;
- a view never populated (`pg_matviews.ispopulated` false: just migrated, or reset WITH NO
  DATA) is populated with a plain REFRESH, which CONCURRENTLY cannot do; every later refresh
  is CONCURRENTLY, so readers keep reading the previous contents until the job commits;
- views are refreshed in dependency order (VIEWS: property_performance_mv reads
  revenue_summary_mv); a view asked for brings the views it reads and those that read it, and
  a view whose source was refreshed in the run is refreshed too, so the two always agree;
- a view refreshed by a successful run less than `analytics_min_interval_minutes` ago is left
  alone unless `force`: when each view was last refreshed is read from the results of earlier
  runs in ops.job_runs, so no table of our own is needed;
- each view's outcome and duration are the run's result, stored in its ops.job_runs row.

All refreshes happen in the job's one transaction: the views commit together with the run's
record, so ops.job_runs never claims a refresh that was rolled back.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.session import local_settings
from tasks.analytics import queries as q

TASK_NAME = "analytics.refresh"
SCHEMA = "analytics"

# Refresh order: a view comes after the views it reads (DEPENDS_ON, checked at import).
# property_performance_mv reads its revenue from revenue_summary_mv; the others read only
# tables and the plain views of the migration, which are always current.
VIEWS: tuple[str, ...] = (
    "revenue_summary_mv",
    "property_performance_mv",
    "guest_lifetime_value_mv",
    "occupancy_trends_mv",
    "operational_kpis_mv",
)
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "revenue_summary_mv": (),
    "property_performance_mv": ("revenue_summary_mv",),
    "guest_lifetime_value_mv": (),
    "occupancy_trends_mv": (),
    "operational_kpis_mv": (),
}

INVALID_PARAMETER_VALUE = "22023"


def _check_order() -> None:
    assert set(DEPENDS_ON) == set(VIEWS)
    for i, view in enumerate(VIEWS):
        for needed in DEPENDS_ON[view]:
            if needed not in VIEWS[:i]:
                raise RuntimeError(f"{view} reads {needed}, which must be refreshed before it")


def with_related(views: set[str]) -> set[str]:
    """The views asked for, the views they read and the views that read them (transitively):
    a view is never built on a stale source, and a refreshed source never leaves a view that
    reads it disagreeing with it."""
    readers: dict[str, set[str]] = {view: set() for view in VIEWS}
    for view, sources in DEPENDS_ON.items():
        for source in sources:
            readers[source].add(view)
    wanted: set[str] = set()
    todo = list(views)
    while todo:
        view = todo.pop()
        if view not in wanted:
            wanted.add(view)
            todo.extend(DEPENDS_ON[view])
            todo.extend(readers[view])
    return wanted


_check_order()


def bare_name(name: str) -> str:
    """Accept `property_performance_mv` and `analytics.property_performance_mv` alike."""
    prefix = SCHEMA + "."
    return name[len(prefix) :] if name.startswith(prefix) else name


def last_refreshed(session: Session, view: str, *, since: dt.datetime) -> dt.datetime | None:
    """When a successful analytics.refresh last populated or refreshed `view`, if after `since`.

    Read from the per-view `refreshed_at` in the results of earlier runs; bounded by started_at
    so the (task_name, started_at) index finds the few recent runs.
    """
    return session.execute(
        q.LAST_REFRESHED, {"view": view, "task": TASK_NAME, "since": since}
    ).scalar_one()


def is_populated(session: Session, view: str) -> bool:
    populated = session.execute(
        q.IS_POPULATED, {"schema": SCHEMA, "view": view}
    ).scalar_one_or_none()
    if populated is None:
        raise RuntimeError(f"{SCHEMA}.{view} does not exist: is the database migrated?")
    return bool(populated)


def refresh_views(
    session: Session,
    *,
    views: list[str] | None = None,
    force: bool = False,
    now: dt.datetime,
    min_interval: dt.timedelta,
) -> dict[str, Any]:
    """Populate or refresh the requested views (default all) in dependency order.

    Returns {"order": [name, ...], "views": {name: {"status", "duration_ms", "refreshed_at" |
    "last_refreshed_at"}}, "populated": n, "refreshed": n, "fresh": n, "duration_ms": total}.
    Status is `populated` (was never populated: plain REFRESH), `refreshed` (REFRESH
    CONCURRENTLY) or `fresh` (left alone: refreshed less than `min_interval` before `now`, and
    not forced).
    """
    wanted = with_related(set(VIEWS) if views is None else {bare_name(v) for v in views})
    with local_settings(session, **q.REFRESH_SETTINGS):
        _size_temp_buffers(session)
        return _refresh_in_order(session, wanted, force=force, now=now, min_interval=min_interval)


def _size_temp_buffers(session: Session) -> None:
    """q.TEMP_BUFFERS for this transaction, when the connection still allows it. Not through
    local_settings: temp_buffers cannot be changed (not even put back) once the connection
    has used a temporary table, which a concurrent refresh does."""
    try:
        with session.begin_nested():
            session.execute(q.SET_TEMP_BUFFERS, {"value": q.TEMP_BUFFERS})
    except sqlalchemy.exc.DBAPIError as exc:
        # This connection already used temporary tables (an earlier refresh): its local
        # buffers are sized for good, by that refresh.
        if getattr(exc.orig, "sqlstate", None) != INVALID_PARAMETER_VALUE:
            raise


def _refresh_in_order(
    session: Session,
    wanted: set[str],
    *,
    force: bool,
    now: dt.datetime,
    min_interval: dt.timedelta,
) -> dict[str, Any]:
    started = time.monotonic()
    outcome: dict[str, dict[str, Any]] = {}
    for view in VIEWS:
        if view not in wanted:
            continue
        # The one statement not in queries.py: REFRESH takes no bound parameter, and the view
        # is an identifier, so the statement is built here, from the VIEWS constant (the payload
        # was checked against it), never from input.
        qualified = f"{SCHEMA}.{view}"
        if not is_populated(session, view):
            status, statement = "populated", f"REFRESH MATERIALIZED VIEW {qualified}"
        else:
            # A view whose source view changed in this run is refreshed whatever its age, so
            # the two never disagree.
            source_changed = any(
                outcome.get(dep, {}).get("status") in ("populated", "refreshed")
                for dep in DEPENDS_ON[view]
            )
            last = (
                None
                if force or source_changed
                else last_refreshed(session, view, since=now - min_interval)
            )
            if last is not None and last > now - min_interval:
                outcome[view] = {
                    "status": "fresh",
                    "duration_ms": 0,
                    "last_refreshed_at": last.isoformat(),
                }
                continue
            status = "refreshed"
            statement = f"REFRESH MATERIALIZED VIEW CONCURRENTLY {qualified}"
        view_started = time.monotonic()
        session.execute(text(statement))
        refreshed_at = session.execute(q.CLOCK_NOW).scalar_one()
        outcome[view] = {
            "status": status,
            "duration_ms": int((time.monotonic() - view_started) * 1000),
            "refreshed_at": refreshed_at.isoformat(),
        }
    counts = {
        kind: sum(1 for o in outcome.values() if o["status"] == kind)
        for kind in ("populated", "refreshed", "fresh")
    }
    return {
        # jsonb keeps no key order: the order the views were taken in is written down too.
        "order": list(outcome),
        "views": outcome,
        **counts,
        "duration_ms": int((time.monotonic() - started) * 1000),
    }
