"""Queues, one per job family, and which worker drains which.

In `cmw dev` and the compose file one worker drains all of them but `channel`, which has
workers of its own (a batch of feeds waits on slow channels for seconds, SPEC 7.1), so a slow
channel import never delays an SLA sweep that must run every minute. A larger deployment runs
a worker per family (`-Q sla`, `-Q channel`, ...).
"""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    DEFAULT = "default"  # ops housekeeping (purge) and anything unrouted
    SLA = "sla"  # sla.apply, sla.check_breaches: latency-sensitive, every minute
    RECURRING = "recurring"  # recurring.generate, recurring.sync_reservation
    INVENTORY = "inventory"  # linen.reorder, inventory.reorder_stock
    CHANNEL = "channel"  # channel.*: network-bound iCal imports and exports
    FINANCE = "finance"  # statements.*, finance.*: owner statements, receipts, the trust
    ANALYTICS = "analytics"  # analytics.refresh: long, heavy reads
    JOURNEYS = "journeys"  # journeys.*: guest messages and door codes, due to the minute


ALL_QUEUES: tuple[str, ...] = tuple(q.value for q in Queue)

# Routing by task name, so `send_task("sla.apply")` through this app lands on the right queue
# even when the sender does not name one.
TASK_ROUTES: dict[str, dict[str, str]] = {
    "ops.*": {"queue": Queue.DEFAULT.value},
    "sla.*": {"queue": Queue.SLA.value},
    "recurring.*": {"queue": Queue.RECURRING.value},
    "linen.*": {"queue": Queue.INVENTORY.value},
    "inventory.*": {"queue": Queue.INVENTORY.value},
    "channel.*": {"queue": Queue.CHANNEL.value},
    "statements.*": {"queue": Queue.FINANCE.value},
    "finance.*": {"queue": Queue.FINANCE.value},
    "analytics.*": {"queue": Queue.ANALYTICS.value},
    "journeys.*": {"queue": Queue.JOURNEYS.value},
}
