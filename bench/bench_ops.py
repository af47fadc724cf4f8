"""Benchmark job health (SPEC 7.4): `ops.watch` and one Prometheus scrape at scale, with 30 days
of job runs at the production cadence.

    python -m bench.bench_ops --scale 10 [--keep] [--no-write-doc]

On a fresh database loaded by `seed_bench` (scale 10: 10,000 properties, 20,000 channel feeds
if synced every 15 minutes), `ops.job_runs` gets 30 days of what production writes, set-based:
every periodic job at every slot of its crontab (sla.check_breaches and ops.watch every minute,
channel.sync every 5, ...), plus the per-entity tasks at production volume (40
channel.sync_mapping batches per 15-minute cycle, sla.apply and recurring.sync_reservation by the
thousand a day), 1% of them failed, some dead letters open and a run left `running`. Those
runs are counted (folded into the totals) as a running system's are; each measured round then
adds one minute of new runs, uncounted, and times:

- `ops.watch` (the function the task runs: evaluation, incidents, the fold of that minute);
- one scrape of `cmw metrics serve` (a real server process, HTTP), which includes the broker's
  queue lengths.

Target: each under 100 ms. Writes the "ops" section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

import typer
from sqlalchemy import text

from bench import harness
from bench.harness import ADMIN_URL, ROOT, AdminUrl, Keep, Scale, WriteDoc, console, err

DAYS = 30
ROUNDS = 15
TARGET_MS = 100.0
# Per-entity tasks and how many runs a day production makes of each at scale 10.
PER_DAY = {
    "channel.sync_mapping": 40 * 96,  # 20,000 feeds in batches of 500, every 15 minutes
    "sla.apply": 6000,
    "recurring.sync_reservation": 3000,
    "statements.finalize": 400,
}

# Runs of one task at fixed steps: 1% failed, durations spread over two orders of magnitude.
INSERT_RUNS = text(
    """
    INSERT INTO ops.job_runs
        (task_name, task_id, run_key, status, as_of, started_at, finished_at, duration_ms,
         error, worker, counted)
    SELECT :task, gen_random_uuid()::text, :task,
           CASE WHEN random() < 0.01 THEN 'failed' ELSE 'succeeded' END,
           t, t, t + make_interval(secs => d / 1000.0), d,
           NULL, 'bench@host', :counted
    FROM generate_series(CAST(:start AS timestamptz), CAST(:stop AS timestamptz),
                         CAST(:step AS interval)) AS t,
         LATERAL (SELECT (5 + random() * random() * 2000)::int AS d) AS dur
    """
)


def seed_runs(engine: Any, now: dt.datetime) -> int:
    """30 days of runs, counted, as a running system has them."""
    from tasks.ops.watch import periodic_jobs

    start = now - dt.timedelta(days=DAYS)
    steps = {job.task: job.period for job in periodic_jobs()}
    steps.update({task: dt.timedelta(days=1) / n for task, n in PER_DAY.items()})
    with engine.begin() as conn:
        for task, step in steps.items():
            conn.execute(
                INSERT_RUNS,
                {"task": task, "start": start, "stop": now - dt.timedelta(minutes=2),
                 "step": step, "counted": True},
            )  # fmt: skip
        conn.execute(
            text("UPDATE ops.job_runs SET error = 'ValueError: bench' WHERE status = 'failed'")
        )
        conn.execute(
            text(
                "INSERT INTO ops.job_runs (task_name, status, started_at)"
                " VALUES ('analytics.refresh', 'running', :t)"
            ),
            {"t": now - dt.timedelta(hours=1)},
        )
        conn.execute(
            text(
                "INSERT INTO ops.dead_letters (task_name, payload, error, error_kind)"
                " SELECT 'sla.apply', '{}', 'invalid payload', 'validation'"
                " FROM generate_series(1, 25)"
            )
        )
        # The totals a running system would have folded.
        from tasks.ops import queries as q

        conn.execute(
            text(
                f"""
                INSERT INTO ops.job_run_totals (task_name, status, runs, duration_seconds,
                                                buckets)
                SELECT task_name, status, count(*), coalesce(sum(duration_ms), 0) / 1000.0,
                       ARRAY[{q._BUCKET_COUNTS}]
                FROM ops.job_runs WHERE status <> 'running' GROUP BY task_name, status
                """
            )
        )
        total = conn.execute(text("SELECT count(*) FROM ops.job_runs")).scalar_one()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE ops.job_runs"))
    return total


def add_minute(engine: Any, now: dt.datetime) -> None:
    """One more minute of production runs, not yet counted."""
    per_minute = {"sla.check_breaches": 1, "ops.watch": 1, **{
        task: max(1, round(n / 1440)) for task, n in PER_DAY.items()}}  # fmt: skip
    with engine.begin() as conn:
        for task, n in per_minute.items():
            conn.execute(
                INSERT_RUNS,
                {"task": task, "start": now - dt.timedelta(seconds=60),
                 "stop": now - dt.timedelta(seconds=1), "step": dt.timedelta(seconds=60 / n),
                 "counted": False},
            )  # fmt: skip


def time_watch(engine: Any) -> list[float]:
    from db.session import session_scope
    from tasks.ops.watch import watch

    times = []
    for _ in range(ROUNDS):
        now = dt.datetime.now(dt.UTC)
        add_minute(engine, now)
        started = time.perf_counter()
        with session_scope() as session:
            watch(session, as_of=now)
        times.append((time.perf_counter() - started) * 1000)
    return times


def time_scrapes(url: str, env: dict[str, str], engine: Any) -> tuple[list[float], int]:
    from workers.dev.system import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "metrics", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        endpoint = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=10).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        times, size = [], 0
        for _ in range(ROUNDS):
            add_minute(engine, dt.datetime.now(dt.UTC))
            started = time.perf_counter()
            body = urllib.request.urlopen(endpoint, timeout=30).read()
            times.append((time.perf_counter() - started) * 1000)
            size = len(body)
        return times, size
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def plans(engine: Any) -> dict[str, str]:
    from tasks.ops import queries as q
    from tasks.ops.watch import periodic_jobs

    now = dt.datetime.now(dt.UTC)
    tasks = [j.task for j in periodic_jobs()]
    statements = {
        "LATEST_RUNS": (q.LATEST_RUNS, {"tasks": tasks, "now": now}),
        "RUN_STARTED_BETWEEN": (
            q.RUN_STARTED_BETWEEN,
            {"task": "sla.check_breaches", "lo": now - dt.timedelta(minutes=3),
             "hi": now - dt.timedelta(minutes=1)},
        ),
        "OVERRUNNING": (q.OVERRUNNING, {"before": now - dt.timedelta(minutes=6)}),
        "OPEN_DEAD_LETTERS": (q.OPEN_DEAD_LETTERS, {}),
        "RECENT_JOB_RUNS": (q.RECENT_JOB_RUNS, {}),
        "FOLD_JOB_RUNS": (q.FOLD_JOB_RUNS, {"limit": 20000}),
    }  # fmt: skip
    return harness.explain_each(engine, statements)


def measure(scale: int, url: str) -> dict[str, Any]:
    from db.session import get_engine

    harness.seed(url, scale)
    engine = get_engine()
    now = dt.datetime.now(dt.UTC)
    err.print(f"{DAYS} days of job runs ...")
    runs = seed_runs(engine, now)
    err.print(f"{runs:,} job runs; timing ops.watch ...")
    watch_ms = time_watch(engine)
    err.print("Timing scrapes ...")
    scrape_ms, size = time_scrapes(url, {**os.environ, "PYTHONPATH": str(ROOT)}, engine)
    figures = {
        "scale": scale,
        "runs": runs,
        "watch_ms": watch_ms,
        "scrape_ms": scrape_ms,
        "scrape_bytes": size,
        "plans": plans(engine),
        "machine": f"{os.cpu_count()} cores, PostgreSQL {harness.server_version(url)}",
        "load": os.getloadavg()[0],
        "date": dt.date.today().isoformat(),
    }
    console.print(
        f"scale {scale}, {runs:,} job runs: ops.watch p50 {statistics.median(watch_ms):.1f} ms"
        f" (max {max(watch_ms):.1f}); scrape p50 {statistics.median(scrape_ms):.1f} ms"
        f" (max {max(scrape_ms):.1f}); target {TARGET_MS:.0f} ms"
    )
    return figures


def markdown(r: dict[str, Any]) -> str:
    def row(name: str, values: list[float]) -> str:
        p50, worst = statistics.median(values), max(values)
        verdict = "met" if p50 < TARGET_MS and worst < TARGET_MS else "MISSED"
        return f"| {name} | {p50:.1f} ms | {worst:.1f} ms | < {TARGET_MS:.0f} ms: {verdict} |"

    lines = [
        "## Job health: ops.watch and a metrics scrape",
        "",
        f"`python -m bench.bench_ops --scale {r['scale']}` (`make bench-ops`): `seed_bench` at"
        f" scale {r['scale']}, then {DAYS} days of job runs at the production cadence, every"
        f" periodic job at every slot and the per-entity tasks at production volume"
        f" ({r['runs']:,} rows, 1% failed, 25 open dead letters, one run left `running`),",
        "counted as a running system has them. Each of the"
        f" {ROUNDS} rounds adds a minute of new runs (uncounted) and times the watch"
        " (evaluation, incidents, the fold of that minute) or one scrape of a real"
        f" `cmw metrics serve` over HTTP ({r['scrape_bytes']:,} bytes, broker queue lengths"
        " included).",
        "",
        "| what | p50 | worst | target |",
        "| --- | ---: | ---: | --- |",
        row("ops.watch", r["watch_ms"]),
        row("one scrape of /metrics", r["scrape_ms"]),
        "",
        f"Measured {r['date']} on {r['machine']}, load average {r['load']:.1f} at the end.",
        "",
        *harness.plans("Plans", r["plans"]),
    ]
    return "\n".join(lines)


def main(
    scale: Scale = 10,
    write_doc: WriteDoc = True,
    keep: Keep = False,
    admin_url: AdminUrl = ADMIN_URL,
) -> None:
    with harness.bench_database(
        admin_url,
        f"cmw_bench_ops_{scale}",
        keep=keep,
        environment={"REDIS_URL": harness.bench_redis_url()},
    ) as url:
        figures = measure(scale, url)
    if write_doc:
        from bench.report import record_summary, write_section

        write_section("ops", markdown(figures))
        record_summary("ops.watch (30 days of runs)", scale, rows=figures["runs"],
                       wall_s=statistics.median(figures["watch_ms"]) / 1000, floor_s=None,
                       target="< 100 ms")  # fmt: skip
        record_summary("metrics scrape (30 days of runs)", scale, rows=figures["runs"],
                       wall_s=statistics.median(figures["scrape_ms"]) / 1000, floor_s=None,
                       target="< 100 ms")  # fmt: skip
        console.print("Recorded in docs/PERFORMANCE.md")


if __name__ == "__main__":
    typer.run(main)
