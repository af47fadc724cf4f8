"""Analytics (SPEC 6.6): the task adapter.

- `analytics.refresh` (beat, hourly; a singleton; payload `views?`, `force?`): the materialized
  views of migration 0007 populated or refreshed in dependency order, each at most once per
  `analytics_min_interval_minutes` unless forced (refresh.refresh_views).

The work is a plain function that takes a Session; the SQL is in queries.py.
"""

from __future__ import annotations

import datetime as dt

from pydantic import field_validator

from db.settings import get_settings
from tasks.analytics.refresh import TASK_NAME, VIEWS, bare_name, refresh_views
from workers.base import JobContext, Payload, job


class RefreshPayload(Payload):
    """`views`: the views to refresh (default all); `force`: ignore the minimum interval.

    No `as_of`: a view is always as of now (SPEC 6.6).
    """

    views: list[str] | None = None
    force: bool = False

    @field_validator("views")
    @classmethod
    def _known_views(cls, views: list[str] | None) -> list[str] | None:
        if views is None:
            return None
        if not views:
            raise ValueError("views, when given, must name at least one view")
        unknown = sorted({v for v in views if bare_name(v) not in VIEWS})
        if unknown:
            raise ValueError(f"unknown view(s) {unknown}; the views are {list(VIEWS)}")
        return views


@job(TASK_NAME, payload=RefreshPayload, singleton=True)
def analytics_refresh(ctx: JobContext, payload: RefreshPayload) -> dict:
    """Refresh the analytics views (SPEC 6.6); see the module docstring."""
    minutes = get_settings().analytics_min_interval_minutes
    return refresh_views(
        ctx.session,
        views=payload.views,
        force=payload.force,
        now=ctx.as_of,
        min_interval=dt.timedelta(minutes=minutes),
    )


__all__ = ["analytics_refresh"]
