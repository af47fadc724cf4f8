"""Prometheus metrics, computed at scrape time from the database and the broker (SPEC 7.4).

`cmw metrics serve` registers `CmwCollector` and answers `/metrics` in the text format. Every
figure is read when Prometheus asks, from indexed queries: nothing is kept in the serving
process, so any number of them agree, and restarting one loses nothing.

- `cmw_job_runs_total{task,status}` (counter): finished runs, from ops.job_run_totals plus
  the finished runs ops.watch has not folded yet;
- `cmw_job_run_duration_seconds{task}` (histogram): those runs' durations;
- `cmw_job_last_run_timestamp_seconds{task}`, `cmw_job_last_success_timestamp_seconds{task}`,
  `cmw_job_next_due_timestamp_seconds{task}` (gauges, Unix time): each periodic job's newest
  start, newest successful start (absent until there is one) and next slot;
- `cmw_dead_letters_open{task}`, `cmw_incidents_open{task,kind}` (gauges);
- `cmw_queue_messages{queue}` (gauge): messages waiting in each broker queue;
- `cmw_channel_feeds_unhealthy{reason}` (gauge): active feeds failing, held or stale;
- `cmw_sla_breaches_total{kind}` (counter): SLA misses recorded, response or resolution;
- `cmw_up{component}` (gauge): 1 when the database / the broker answered this scrape;
- `cmw_scrape_duration_seconds` (gauge): how long this scrape took to compute.

Counters never go down: ops.purge deletes old job runs only after ops.watch has folded them
into the totals. A run is counted once it has finished (its final status known).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tasks.channel.bookkeeping import HEALTH_AFTER
from tasks.ops import queries as q
from tasks.ops.watch import evaluate

log = logging.getLogger("cmw.metrics")

# Every family this exporter has: name (counters without `_total`), type, help, labels. The
# alert rules and the dashboard in deploy/ use exactly these (a test checks).
FAMILIES: dict[str, tuple[str, str, list[str]]] = {
    "cmw_job_runs": ("counter", "Finished job runs by task and final status", ["task", "status"]),
    "cmw_job_run_duration_seconds": ("histogram", "Durations of finished job runs", ["task"]),
    "cmw_job_last_run_timestamp_seconds": (
        "gauge", "When each periodic job last started (Unix time)", ["task"],
    ),
    "cmw_job_last_success_timestamp_seconds": (
        "gauge", "When each periodic job last started a run that succeeded (Unix time)", ["task"],
    ),
    "cmw_job_next_due_timestamp_seconds": (
        "gauge", "When each periodic job is next due (Unix time)", ["task"],
    ),
    "cmw_dead_letters_open": ("gauge", "Open dead letters by task", ["task"]),
    "cmw_incidents_open": ("gauge", "Open incidents by task and kind", ["task", "kind"]),
    "cmw_queue_messages": ("gauge", "Messages waiting in each broker queue", ["queue"]),
    "cmw_channel_feeds_unhealthy": (
        "gauge", "Active channel feeds failing, with cancellations held, or stale", ["reason"],
    ),
    "cmw_sla_breaches": ("counter", "SLA breaches recorded, by kind", ["kind"]),
    "cmw_up": ("gauge", "1 when the component answered this scrape", ["component"]),
    "cmw_scrape_duration_seconds": ("gauge", "Seconds this scrape took to compute", []),
}  # fmt: skip
_KINDS = {
    "counter": CounterMetricFamily,
    "gauge": GaugeMetricFamily,
    "histogram": HistogramMetricFamily,
}


def family(name: str) -> Any:
    kind, documentation, labels = FAMILIES[name]
    return _KINDS[kind](name, documentation, labels=labels or None)


def series_names() -> set[str]:
    """The names of the series these families make, as PromQL sees them."""
    names = set()
    for name, (kind, _, _) in FAMILIES.items():
        if kind == "counter":
            names.add(name + "_total")
        elif kind == "histogram":
            names |= {name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(name)
    return names


class CmwCollector(Collector):
    """Everything in the module docstring, on every scrape."""

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        up_db = family("cmw_up")
        try:
            yield from self._database()
            up_db.add_metric(["database"], 1)
        except Exception:  # a scrape must answer whatever fails; the error is logged
            log.exception("metrics: the database query failed")
            up_db.add_metric(["database"], 0)
        try:
            yield queue_depths()
            up_db.add_metric(["broker"], 1)
        except Exception:
            log.exception("metrics: the broker could not be read")
            up_db.add_metric(["broker"], 0)
        yield up_db
        duration = family("cmw_scrape_duration_seconds")
        duration.add_metric([], time.monotonic() - started)
        yield duration

    def _database(self) -> Iterator[Metric]:
        from db.session import session_scope

        now = dt.datetime.now(dt.UTC)
        with session_scope() as session:
            totals = job_run_counts(session)
            evaluation = evaluate(session, now=now)
            feeds = session.execute(q.UNHEALTHY_FEEDS, {"stale_before": now - HEALTH_AFTER}).one()
            breaches = session.execute(q.SLA_BREACH_COUNTS).all()
            session.rollback()  # read only

        runs = family("cmw_job_runs")
        durations = family("cmw_job_run_duration_seconds")
        by_task: dict[str, dict[str, Any]] = {}
        for (task, status), row in sorted(totals.items()):
            runs.add_metric([task, status], row["runs"])
            agg = by_task.setdefault(task, {"runs": 0, "seconds": 0.0, "buckets": None})
            agg["runs"] += row["runs"]
            agg["seconds"] += row["seconds"]
            agg["buckets"] = _add(agg["buckets"], row["buckets"])
        for task, agg in sorted(by_task.items()):
            buckets = [
                (str(le), float(n))
                for le, n in zip(q.DURATION_BUCKETS, agg["buckets"], strict=True)
            ]
            durations.add_metric(
                [task], buckets + [("+Inf", float(agg["runs"]))], sum_value=agg["seconds"]
            )
        yield runs
        yield durations

        last_run = family("cmw_job_last_run_timestamp_seconds")
        last_success = family("cmw_job_last_success_timestamp_seconds")
        next_due = family("cmw_job_next_due_timestamp_seconds")
        # A job that never ran has no series (not NaN): alerts say `absent(...)` for it.
        for state in evaluation.jobs:
            task = [state.job.task]
            if state.last_started_at is not None:
                last_run.add_metric(task, state.last_started_at.timestamp())
            if state.last_success_at is not None:
                last_success.add_metric(task, state.last_success_at.timestamp())
            if state.next_due_at is not None:
                next_due.add_metric(task, state.next_due_at.timestamp())
        yield last_run
        yield last_success
        yield next_due

        open_letters = family("cmw_dead_letters_open")
        for row in evaluation.letters.values():
            open_letters.add_metric([row.task_name], row.letters)
        yield open_letters
        open_incidents = family("cmw_incidents_open")
        counts = Counter((i.task_name, i.kind) for i in evaluation.open_incidents)
        for (task, kind), n in counts.items():
            open_incidents.add_metric([task, kind], n)
        yield open_incidents
        unhealthy = family("cmw_channel_feeds_unhealthy")
        for reason in ("failing", "held", "stale"):
            unhealthy.add_metric([reason], getattr(feeds, reason))
        yield unhealthy
        sla = family("cmw_sla_breaches")
        for row in breaches:
            sla.add_metric([row.sla_kind], row.breaches)
        yield sla


def job_run_counts(session: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Finished runs per (task, status): the folded totals plus those not yet counted."""
    counts: dict[tuple[str, str], dict[str, Any]] = {}
    for statement in (q.JOB_RUN_TOTALS, q.RECENT_JOB_RUNS):
        for row in session.execute(statement):
            agg = counts.setdefault(
                (row.task_name, row.status), {"runs": 0, "seconds": 0.0, "buckets": None}
            )
            agg["runs"] += int(row.runs)
            agg["seconds"] += float(row.seconds)
            agg["buckets"] = _add(agg["buckets"], row.buckets)
    return counts


def _add(a: list[int] | None, b: list[int] | None) -> list[int]:
    size = len(q.DURATION_BUCKETS)
    a = list(a or [0] * size) + [0] * (size - len(a or []))
    b = list(b or [0] * size) + [0] * (size - len(b or []))
    return [int(x) + int(y) for x, y in zip(a[:size], b[:size], strict=True)]


def queue_depths() -> Metric:
    """Messages waiting in each queue of workers.queues, from the broker itself (Redis list
    lengths, priority lists included; RabbitMQ's passive declare)."""
    from workers.app import app
    from workers.queues import ALL_QUEUES

    depth = family("cmw_queue_messages")
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)
        for name in ALL_QUEUES:
            depth.add_metric([name], _queue_size(connection, name))
    return depth


def _queue_size(connection: Any, name: str) -> int:
    size = getattr(connection.default_channel, "_size", None)
    if size is not None:  # kombu's Redis channel: LLEN over the queue's priority lists
        return int(size(name))
    # AMQP: a passive declare answers the count; a queue not declared yet has nothing waiting
    # (and the error closes its channel, so each queue gets a channel of its own).
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=name, passive=True).message_count)
    except connection.channel_errors:
        return 0
    finally:
        try:
            channel.close()
        except connection.channel_errors + connection.connection_errors:
            pass
