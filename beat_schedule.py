"""The one table of periodic jobs: key -> task by name, crontab, queue, expires, and why.

Crontabs, never intervals: a beat restart resets an interval's clock but not a crontab's.
`expires` is at most the interval, so a slot that waited out a broker outage is dropped in
favour of the next one instead of piling up behind it (every sweep catches up by itself: it
works from the database's state, not from the slot). Entries carry no `as_of`: each job runs as
of the time it executes. All times are UTC. No results are stored (`ignore_result`): nobody
waits on a beat slot, its job_runs row is its record, and results would grow Redis for
`result_expires`.
"""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict] = {
    # Every minute: a missed, failing or overrunning periodic job, or open dead letters, become
    # an incident (and one ops email) within a couple of minutes; the metrics' totals are
    # folded here too. On `default`, which no long job occupies.
    "ops-watch-every-minute": {
        "task": "ops.watch",
        "schedule": crontab(),
        "options": {"queue": "default", "expires": 60, "ignore_result": True},
    },
    # Every minute: SLA deadlines are minutes apart (urgent response is 15 min), so a breach is
    # recorded, escalated and notified within a minute of its deadline.
    "sla-check-breaches-every-minute": {
        "task": "sla.check_breaches",
        "schedule": crontab(),
        "options": {"queue": "sla", "expires": 60, "ignore_result": True},
    },
    # Every minute: guest messages go out at the minute their rule says, in the property's
    # local time (quiet hours honoured), and door codes open and expire on time; a sweep with
    # nothing due reads two partial indexes and costs milliseconds.
    "journeys-release-due-every-minute": {
        "task": "journeys.release_due",
        "schedule": crontab(),
        "options": {"queue": "journeys", "expires": 60, "ignore_result": True},
    },
    # Every 5 minutes: fans out one import per channel mapping whose connection is due (each
    # connection has its own sync interval, 15 min by default, and backoff).
    "channel-sync-every-5-minutes": {
        "task": "channel.sync",
        "schedule": crontab(minute="*/5"),
        "options": {"queue": "channel", "expires": 300, "ignore_result": True},
    },
    # Every 5 minutes: guest payments and refunds the payment service recorded reach the
    # ledger (trust cash, the stay's clearing account) within minutes; a backlog drains in
    # batches that enqueue each other, not one per slot.
    "finance-post-payments-every-5-minutes": {
        "task": "finance.post_payments",
        "schedule": crontab(minute="*/5"),
        "options": {"queue": "finance", "expires": 300, "ignore_result": True},
    },
    # Every 15 minutes: recurring tickets whose lead time has come; lead times are hours to
    # days, so a quarter-hour is well inside them.
    "recurring-generate-every-15-minutes": {
        "task": "recurring.generate",
        "schedule": crontab(minute="*/15"),
        "options": {"queue": "recurring", "expires": 900, "ignore_result": True},
    },
    # Every 15 minutes, offset from recurring: the iCal exports channels poll (Airbnb and Vrbo
    # re-read a calendar every 1-3 hours, so 15 minutes is never the bottleneck).
    "channel-export-calendars-every-15-minutes": {
        "task": "channel.export_calendars",
        "schedule": crontab(minute="7,22,37,52"),
        "options": {"queue": "channel", "expires": 900, "ignore_result": True},
    },
    # Hourly at :11: dashboards are hourly; refreshes never overlap (advisory lock).
    "analytics-refresh-hourly": {
        "task": "analytics.refresh",
        "schedule": crontab(minute="11"),
        "options": {"queue": "analytics", "expires": 3600, "ignore_result": True},
    },
    # Daily at 05:00 UTC (night in the Americas, morning in Europe): linen orders for the day,
    # before suppliers' cut-off times.
    "linen-reorder-daily": {
        "task": "linen.reorder",
        "schedule": crontab(minute="0", hour="5"),
        "options": {"queue": "inventory", "expires": 23 * 3600, "ignore_result": True},
    },
    # Daily at 05:15 UTC, after linen: storage stock purchases.
    "inventory-reorder-stock-daily": {
        "task": "inventory.reorder_stock",
        "schedule": crontab(minute="15", hour="5"),
        "options": {"queue": "inventory", "expires": 23 * 3600, "ignore_result": True},
    },
    # Daily at 03:30 UTC, the quietest hour for the Americas: trims job runs and sent
    # notifications older than the retention window so the ops tables stay small.
    "ops-purge-daily": {
        "task": "ops.purge",
        "schedule": crontab(minute="30", hour="3"),
        "options": {"queue": "default", "expires": 24 * 3600, "ignore_result": True},
    },
    # Monthly on the 1st at 06:00 UTC (the previous month has ended in every property's zone,
    # Honolulu included): draft owner statements for the previous month; the payload names no
    # period, so the job takes the month before as_of.
    "statements-generate-monthly": {
        "task": "statements.generate",
        "schedule": crontab(minute="0", hour="6", day_of_month="1"),
        "options": {"queue": "finance", "expires": 24 * 3600, "ignore_result": True},
    },
    # Monthly on the 5th at 07:00 UTC: the trust account's three-way reconciliation for the
    # previous month, once the month-end bank balance is in (ops enter it in the first days;
    # a later run by hand, `{"month": "YYYY-MM"}`, brings the month's result up to date).
    "finance-reconcile-trust-monthly": {
        "task": "finance.reconcile_trust",
        "schedule": crontab(minute="0", hour="7", day_of_month="5"),
        "options": {"queue": "finance", "expires": 24 * 3600, "ignore_result": True},
    },
}
