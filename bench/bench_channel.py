"""Benchmark channel sync: 1,000 mappings x 100 events, served locally, through a real worker.

    python bench/bench_channel.py --scale 1 [--mappings 1000] [--events 100] [--concurrency 4]
                                  [--no-write-doc] [--keep]

On a fresh database (created on `CMW_BENCH_ADMIN_URL`, default the local PostgreSQL, migrated
and loaded with `seed_bench` at the given scale), the seed's channel mappings are replaced by
one mapping per property for the first `--mappings` properties, spread over the seed's three
connections (Airbnb, Vrbo, Booking.com). Each mapping's feed is served, in its channel's own
format and with an ETag, by a threaded HTTP server on 127.0.0.1 in this process (the
test-suite's tests.support.feeds.FeedServer): `--events` events per feed, placed after the
seed's stays (so the seed's own reservations do not turn into thousands of double bookings),
about 60% stays and 40% blocks on Airbnb and Vrbo, every Booking.com event a block (as that
channel exports them), and one overlapping pair in one feed of fifty.

Measured:

- the floors, in this process: every feed fetched through the guarded client; every body
  parsed (the fast path), and a sample through `icalendar.Calendar.from_ical` for comparison;
  the import's SQL (apply_feed and the overlap check) for a sample of mappings, in a
  transaction rolled back; one follow-up `send_task`;
- the first sync through a real worker (a `celery worker -Q channel` subprocess): from
  sending `channel.sync` until every mapping's sync_log row is written (the follow-ups it
  enqueues -- `recurring.sync_reservation` per stay, `sla.apply` per ticket -- are sent, and
  counted in, but are drained by no worker here: they are other jobs' work);
- the second sync, where every feed answers 304;
- channel.export_calendars in-process (first build and an unchanged rebuild);
- EXPLAIN ANALYZE of the import's statements (rolled back),

and writes the "channel" section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

ROOT = Path(__file__).resolve().parents[1]
# `python bench/bench_channel.py` puts bench/ on sys.path, not the project root.
sys.path.insert(0, str(ROOT))

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

from bench.database import create_database, drop_database  # noqa: E402

console = Console()
err = Console(stderr=True)

TARGET_FIRST_S = 60.0
TARGET_SECOND_S = 10.0
SAMPLE = 100  # mappings in the SQL floor and the icalendar comparison
STAY_SHARE = 0.6
OVERLAP_EVERY = 50


# -- database ------------------------------------------------------------------------------------


MAPPINGS_SQL = """
    WITH props AS (
        SELECT id, property_code, row_number() OVER (ORDER BY property_code) AS n
        FROM property.properties ORDER BY property_code LIMIT :limit
    ),
    conns AS (
        SELECT id, channel, row_number() OVER (ORDER BY channel) - 1 AS k,
               count(*) OVER () AS total
        FROM channel.channel_connections
    )
    INSERT INTO channel.channel_mappings
        (connection_id, property_id, external_listing_id, import_url)
    SELECT c.id, p.id, p.property_code,
           'http://127.0.0.1:' || :port || '/feeds/' || p.property_code || '.ics'
    FROM props p JOIN conns c ON c.k = p.n % c.total
    RETURNING id, property_id, external_listing_id AS property_code,
              (SELECT channel FROM channel.channel_connections x WHERE x.id = connection_id)
                  AS channel
"""


def setup_mappings(engine: Any, port: int, limit: int) -> list[Any]:
    """One mapping per property for the first `limit` properties (set-based)."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM channel.channel_mappings"))
        rows = conn.execute(text(MAPPINGS_SQL), {"limit": limit, "port": port}).all()
        conn.execute(text("UPDATE channel.channel_connections SET next_sync_at = NULL"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE channel.channel_mappings"))
    return rows


# -- feeds ---------------------------------------------------------------------------------------


def feed_body(channel: str, code: str, events: int, start: dt.date, rng: random.Random) -> bytes:
    from tests.support import feeds

    items = []
    day = start + dt.timedelta(days=rng.randint(0, 6))
    overlap = rng.randrange(OVERLAP_EVERY) == 0
    for n in range(events):
        nights = rng.randint(2, 7)
        end = day + dt.timedelta(days=nights)
        uid = f"{code.lower()}-{n:04d}-{rng.getrandbits(48):012x}"
        stay = channel != "booking_com" and rng.random() < STAY_SHARE
        if channel == "airbnb":
            event = (
                feeds.airbnb_stay(uid, day, end, f"HM{rng.getrandbits(40):010X}")
                if stay
                else feeds.airbnb_block(uid, day, end)
            )
        elif channel == "vrbo":
            event = feeds.vrbo_stay(uid, day, end) if stay else feeds.vrbo_block(uid, day, end)
        else:
            event = feeds.booking_closed(uid, day, end)
        items.append(event)
        day = end + dt.timedelta(days=rng.randint(0, 5))
    if overlap and channel != "booking_com":
        # A second channel-side stay over the first one's nights: one double booking.
        first = items[0]
        maker = feeds.airbnb_stay if channel == "airbnb" else feeds.vrbo_stay
        extra = "HMOVERLAP1" if channel == "airbnb" else "Overlap"
        items[0] = maker(f"{code.lower()}-x1", first.start, first.end, extra)
        items[1] = maker(f"{code.lower()}-x2", first.start + dt.timedelta(days=1),
                         first.end + dt.timedelta(days=1), extra)  # fmt: skip
    render = {"airbnb": feeds.airbnb_feed, "vrbo": feeds.vrbo_feed}
    return render.get(channel, feeds.booking_feed)(items)


# -- measuring -----------------------------------------------------------------------------------


def count(engine: Any, statement: str, **params: Any) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text(statement), params).scalar_one()


def wait_for_logs(engine: Any, expected: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if count(engine, "SELECT count(*) FROM channel.sync_log") >= expected:
            return time.monotonic()
        time.sleep(0.25)
    raise TimeoutError(f"fewer than {expected} sync_log rows after {timeout} s")


def run_figures(engine: Any, since: dt.datetime) -> dict[str, Any]:
    from sqlalchemy import text

    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) AS runs, percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)"
                " AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,"
                " extract(epoch FROM max(finished_at) - min(started_at)) AS span"
                " FROM ops.job_runs WHERE task_name = 'channel.sync_mapping'"
                " AND started_at >= :since"
            ),
            {"since": since},
        ).one()
        statuses = dict(
            conn.execute(
                text(
                    "SELECT status, count(*) FROM channel.sync_log WHERE created_at >= :since"
                    " GROUP BY status"
                ),
                {"since": since},
            ).all()
        )
    return {
        "runs": row.runs,
        "p50_ms": float(row.p50 or 0),
        "p95_ms": float(row.p95 or 0),
        "span_s": float(row.span or 0),
        "statuses": statuses,
    }


def floors(engine: Any, mappings: list[Any], bodies: dict[str, bytes], as_of: dt.datetime,
           server_url: str) -> dict[str, Any]:  # fmt: skip
    """Fetch, parse, SQL and send costs, in this process (see the module docstring)."""
    from sqlalchemy.orm import Session

    from tasks.channel.fetch import fetch_feed
    from tasks.channel.ical import _read_icalendar, parse_feed
    from tasks.channel.importer import LOAD_MAPPING, apply_feed, raise_overlap_tickets
    from workers.app import app

    tz_today = as_of.date()
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("America/New_York")
    started = time.perf_counter()
    for m in mappings:
        fetch_feed(f"{server_url}/feeds/{m.property_code}.ics", allowed_hosts={"127.0.0.1"})
    fetch_s = time.perf_counter() - started

    started = time.perf_counter()
    parsed = {
        m.id: parse_feed(bodies[m.property_code], channel=m.channel, today=tz_today, tz=tz)
        for m in mappings
    }
    parse_s = time.perf_counter() - started
    sample = mappings[:SAMPLE]
    started = time.perf_counter()
    for m in sample:
        _read_icalendar(bodies[m.property_code])
    icalendar_s = (time.perf_counter() - started) * len(mappings) / len(sample)

    # The import's statements for a sample, in one transaction rolled back.
    with engine.connect() as conn:
        trans = conn.begin()
        session = Session(bind=conn)
        started = time.perf_counter()
        for m in sample:
            row = session.execute(LOAD_MAPPING, {"id": m.id}).one()
            apply_feed(session, row, parsed[m.id], as_of=as_of, today=tz_today)
            raise_overlap_tickets(
                session, mapping_id=m.id, property_id=row.property_id, as_of=as_of,
                today=tz_today,
            )  # fmt: skip
        sql_ms = (time.perf_counter() - started) * 1000 / len(sample)
        session.close()
        trans.rollback()

    # As inside a worker, where a sent task's result is never subscribed to (Celery's redis
    # backend subscribes only when a join could block, i.e. outside a worker).
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(True)
    queue = f"bench-scratch-{uuid.uuid4().hex[:6]}"
    n = 500
    started = time.perf_counter()
    for _ in range(n):
        app.send_task("recurring.sync_reservation", kwargs={"reservation_id": str(uuid.uuid4())},
                      queue=queue)  # fmt: skip
    send_ms = (time.perf_counter() - started) * 1000 / n
    # The same without the "task sent" event (task_send_sent_event): one Redis round trip of
    # the two each send costs.
    app.conf.task_send_sent_event = False
    started = time.perf_counter()
    for _ in range(n):
        app.send_task("recurring.sync_reservation", kwargs={"reservation_id": str(uuid.uuid4())},
                      queue=queue)  # fmt: skip
    send_no_event_ms = (time.perf_counter() - started) * 1000 / n
    app.conf.task_send_sent_event = True
    _set_task_join_will_block(False)
    with app.connection_for_write() as connection:
        connection.default_channel.client.delete(queue)
    stays = sum(1 for f in parsed.values() for e in f.events if e.kind == "reservation")
    return {
        "fetch_s": fetch_s,
        "parse_s": parse_s,
        "icalendar_s": icalendar_s,
        "sql_ms_per_import": sql_ms,
        "send_ms": send_ms,
        "send_no_event_ms": send_no_event_ms,
        "stays": stays,
        "events": sum(len(f.events) for f in parsed.values()),
    }


EXPLAINED = ("OVERLAP_TICKETS", "CANCEL_GONE", "LINK_RESERVATIONS", "CLAIM_DUE")


def explain_all(engine: Any, mapping: Any, as_of: dt.datetime) -> dict[str, str]:
    from sqlalchemy import text

    from tasks.channel import importer

    today = as_of.date()
    params = {
        "OVERLAP_TICKETS": {
            "mapping_id": mapping.id, "property_id": mapping.property_id, "as_of": as_of,
            "today": today,
        },
        "CANCEL_GONE": {"mapping_id": mapping.id, "as_of": as_of, "today": today,
                        "present": []},
        "LINK_RESERVATIONS": {"mapping_id": mapping.id, "uids": ["none"], "codes": [None],
                              "property_id": mapping.property_id, "source": "airbnb",
                              "as_of": as_of},
        "CLAIM_DUE": {"as_of": as_of + dt.timedelta(days=1), "connection_id": None},
    }  # fmt: skip
    plans = {}
    for name in EXPLAINED:
        statement = getattr(importer, name)
        with engine.connect() as conn:
            trans = conn.begin()
            rows = conn.execute(
                text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) " + statement.text),
                params[name],
            ).scalars()
            plans[name] = "\n".join(rows)
            trans.rollback()
    return plans


def timed_export(as_of: dt.datetime) -> tuple[float, dict[str, Any]]:
    from db.session import session_scope
    from tasks.channel.export import export_calendars

    started = time.perf_counter()
    with session_scope() as session:
        result = export_calendars(session, as_of=as_of)
    return time.perf_counter() - started, result


def machine(engine: Any) -> str:
    from sqlalchemy import text

    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar_one().split()[0]
    return f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, PostgreSQL {version}"


def measure(
    scale: int, url: str, redis_url: str, n_mappings: int, events: int, concurrency: int
) -> dict[str, Any]:
    # Settings are read once, from the environment: point them at this database first.
    os.environ["DATABASE_URL"] = url
    os.environ["REDIS_URL"] = redis_url
    os.environ["CMW_CHANNEL_ALLOWED_HOSTS"] = "127.0.0.1"
    from db.seeds.bench import seed_bench
    from db.session import dispose_engine, get_engine
    from tests.support.feeds import FeedServer
    from tests.support.worker import WorkerProcess
    from workers.settings import get_settings

    get_settings.cache_clear()
    dispose_engine()
    err.print(f"Seeding scale {scale} ...")
    seed_bench(url, scale=scale, console=err)
    engine = get_engine()
    as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
    server = FeedServer().start()
    try:
        mappings = setup_mappings(engine, server.port, n_mappings)
        err.print(f"Serving {len(mappings)} feeds of {events} events on port {server.port} ...")
        rng = random.Random(20260701)
        horizon = as_of.date() + dt.timedelta(days=220)  # after the seed's stays (6 months)
        bodies = {}
        for m in mappings:
            body = feed_body(m.channel, m.property_code, events, horizon, rng)
            bodies[m.property_code] = body
            server.set_feed(f"/feeds/{m.property_code}.ics", body)
        figures: dict[str, Any] = {"scale": scale, "mappings": len(mappings), "events": events}
        err.print("Floors ...")
        figures["floors"] = floors(
            engine, mappings, bodies, as_of, f"http://127.0.0.1:{server.port}"
        )

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log_dir = Path(tempfile.mkdtemp(prefix="cmw-bench-channel-"))
        worker = WorkerProcess(
            env, queues=("channel",), concurrency=concurrency, log_dir=log_dir, include=()
        ).start()
        from workers.app import app

        try:
            err.print("First sync through the worker ...")
            load_before = os.getloadavg()[0]
            since = dt.datetime.now(dt.UTC)
            started = time.monotonic()
            app.send_task("channel.sync", kwargs={"as_of": as_of.isoformat()}).get(timeout=120)
            done = wait_for_logs(engine, len(mappings), timeout=1800)
            figures["first_s"] = done - started
            figures["first"] = run_figures(engine, since)
            figures["first"]["load"] = load_before

            err.print("Second sync (every feed 304) ...")
            with engine.begin() as conn:
                from sqlalchemy import text

                conn.execute(text("UPDATE channel.channel_connections SET next_sync_at = NULL"))
            later = as_of + dt.timedelta(minutes=15)
            load_before = os.getloadavg()[0]
            since = dt.datetime.now(dt.UTC)
            started = time.monotonic()
            app.send_task("channel.sync", kwargs={"as_of": later.isoformat()}).get(timeout=120)
            done = wait_for_logs(engine, 2 * len(mappings), timeout=1800)
            figures["second_s"] = done - started
            figures["second"] = run_figures(engine, since)
            figures["second"]["load"] = load_before
        finally:
            worker.stop()
        figures["rows"] = {
            "bookings": count(engine, "SELECT count(*) FROM channel.channel_bookings"),
            "reservations": count(
                engine,
                "SELECT count(*) FROM reservations.reservations r WHERE EXISTS"
                " (SELECT 1 FROM channel.channel_bookings b WHERE b.reservation_id = r.id)",
            ),
            "tickets": count(
                engine,
                "SELECT count(*) FROM service.tickets WHERE source = 'channel'"
                " AND category = 'double_booking'",
            ),  # fmt: skip
        }
        err.print("Export ...")
        figures["export_first_s"], figures["export_first"] = timed_export(as_of)
        figures["export_second_s"], figures["export_second"] = timed_export(as_of)
        figures["plans"] = explain_all(engine, mappings[0], as_of)
        figures["machine"] = machine(engine)
        figures["concurrency"] = concurrency
        figures["date"] = dt.date.today().isoformat()
    finally:
        server.close()
    first, second = figures["first_s"], figures["second_s"]
    console.print(
        f"scale {scale}: {len(mappings)} mappings x {events} events: first sync {first:.1f} s"
        f" (target {TARGET_FIRST_S:.0f} s), second (304) {second:.1f} s"
        f" (target {TARGET_SECOND_S:.0f} s); export {figures['export_first_s']:.1f} s /"
        f" {figures['export_second_s']:.1f} s"
    )
    console.print(figures["floors"], figures["first"], figures["second"], figures["rows"])
    return figures


def markdown(r: dict[str, Any]) -> str:
    fl = r["floors"]
    verdict1 = "met" if r["first_s"] < TARGET_FIRST_S else "MISSED"
    verdict2 = "met" if r["second_s"] < TARGET_SECOND_S else "MISSED"
    lines = [
        "## Channel sync",
        "",
        f"`python bench/bench_channel.py --scale {r['scale']}`: `seed_bench` at scale"
        f" {r['scale']}, then {r['mappings']:,} mappings (one per property, over the Airbnb,",
        f"Vrbo and Booking.com connections) whose feeds of {r['events']} events each are",
        "served with ETags by a threaded HTTP server on 127.0.0.1 in the benchmark's process.",
        "Events lie after the seed's stays; on Airbnb and Vrbo about 60% are stays and 40%",
        "blocks, on Booking.com all are blocks; one feed in fifty carries a double booking.",
        f"Syncs run through a real worker (`celery worker -Q channel -c {r['concurrency']}`,",
        "prefork): the time is from sending `channel.sync` until every mapping's sync_log row",
        "is written. The follow-ups each import sends after its commit",
        "(`recurring.sync_reservation` per stay, `sla.apply` per ticket) are included in the",
        "imports' time; running them is their own jobs' cost, so no worker drains them here.",
        "",
        "| sync | mappings | time | target | per import p50 / p95 | outcome | load at start |",
        "| --- | ---: | ---: | --- | ---: | --- | ---: |",
        f"| first | {r['mappings']:,} | {r['first_s']:.1f} s | < {TARGET_FIRST_S:.0f} s:"
        f" {verdict1} | {r['first']['p50_ms']:.0f} / {r['first']['p95_ms']:.0f} ms |"
        f" {r['first']['statuses']} | {r['first']['load']:.1f} |",
        f"| second (all 304) | {r['mappings']:,} | {r['second_s']:.1f} s | <"
        f" {TARGET_SECOND_S:.0f} s: {verdict2} | {r['second']['p50_ms']:.0f} /"
        f" {r['second']['p95_ms']:.0f} ms | {r['second']['statuses']} |"
        f" {r['second']['load']:.1f} |",
        "",
        f"Rows after the first sync: {r['rows']['bookings']:,} channel bookings,"
        f" {r['rows']['reservations']:,} reservations (stays and blocks),"
        f" {r['rows']['tickets']} double-booking tickets; {fl['stays']:,} stays, so as many",
        "`recurring.sync_reservation` messages sent.",
        "",
        "Floors, in one process (what an import is made of):",
        "",
        "| part | total for all feeds | per feed |",
        "| --- | ---: | ---: |",
        f"| fetch (guarded client, local server) | {fl['fetch_s']:.1f} s |"
        f" {fl['fetch_s'] * 1000 / r['mappings']:.1f} ms |",
        f"| parse, fast path | {fl['parse_s']:.1f} s | {fl['parse_s'] * 1000 / r['mappings']:.1f}"
        " ms |",
        f"| parse, `icalendar.Calendar.from_ical` (sample of {SAMPLE}, extrapolated) |"
        f" {fl['icalendar_s']:.1f} s | {fl['icalendar_s'] * 1000 / r['mappings']:.1f} ms |",
        f"| import SQL (apply_feed + overlap check, sample of {SAMPLE}, rolled back) |"
        f" {fl['sql_ms_per_import'] * r['mappings'] / 1000:.1f} s |"
        f" {fl['sql_ms_per_import']:.1f} ms |",
        f"| one follow-up `send_task` (as in a worker) | {fl['send_ms'] * fl['stays'] / 1000:.1f}"
        f" s for {fl['stays']:,} | {fl['send_ms']:.2f} ms each |",
        f"| the same without the task-sent event |"
        f" {fl['send_no_event_ms'] * fl['stays'] / 1000:.1f} s |"
        f" {fl['send_no_event_ms']:.2f} ms each |",
        "",
        f"`channel.export_calendars` (in-process, {r['export_first']['properties']:,}"
        f" properties, {r['export_first']['events']:,} events): first build"
        f" {r['export_first_s']:.1f} s, unchanged rebuild {r['export_second_s']:.1f} s"
        f" ({r['export_second']['calendars_written']} rewritten).",
        "",
        f"Measured {r['date']} on {r['machine']}, with other engineers' test suites running",
        "on the same two cores (the load column): the figures are pessimistic.",
        "",
        "Plans of the import's statements for one mapping after the first sync (`EXPLAIN",
        "(ANALYZE, BUFFERS, COSTS OFF, TIMING OFF)`, rolled back):",
    ]
    for name, plan in r["plans"].items():
        lines += [
            "",
            f"<details><summary>{name}</summary>",
            "",
            "```",
            plan,
            "```",
            "",
            "</details>",
        ]
    return "\n".join(lines)


def record_channel_summary(scale: int, r: dict[str, Any]) -> None:
    """The summary rows: first sync and all-304 sync, against the parts of an import measured
    alone (fetch, parse, SQL, follow-up sends) summed and spread over the two cores."""
    from bench.report import record_summary

    fl = r["floors"]
    cores = min(r["concurrency"], os.cpu_count() or 1)
    first_floor = (
        fl["fetch_s"] + fl["parse_s"] + fl["sql_ms_per_import"] * r["mappings"] / 1000
        + fl["send_ms"] * fl["stays"] / 1000
    ) / cores  # fmt: skip
    record_summary(f"channel.sync, first ({r['mappings']:,} feeds)", scale,
                   rows=r["rows"]["bookings"] + r["rows"]["reservations"],
                   wall_s=r["first_s"], floor_s=first_floor, target="< 60 s")  # fmt: skip
    record_summary(f"channel.sync, all 304 ({r['mappings']:,} feeds)", scale, rows=0,
                   wall_s=r["second_s"], floor_s=fl["fetch_s"] / cores,
                   target="< 10 s")  # fmt: skip


def main(
    scale: Annotated[int, typer.Option(help="seed_bench scale (1 = 1,000 properties).")] = 1,
    mappings: Annotated[int, typer.Option(help="Mappings (feeds) to sync.")] = 1000,
    events: Annotated[int, typer.Option(help="Events per feed.")] = 100,
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 4,
    write_doc: Annotated[
        bool, typer.Option(help="Record the figures in docs/PERFORMANCE.md.")
    ] = True,
    keep: Annotated[bool, typer.Option(help="Keep the database afterwards.")] = False,
    admin_url: Annotated[
        str, typer.Option(envvar="CMW_BENCH_ADMIN_URL", help="libpq URL to create databases from.")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
) -> None:
    from tests.support.services import claim_redis_database

    # A Redis database of its own (claimed like a test session's, emptied at exit).
    redis_url = f"redis://127.0.0.1:6379/{claim_redis_database('redis://127.0.0.1:6379')}"
    name = f"cmw_bench_channel_{scale}"
    url = create_database(admin_url, name)
    try:
        figures = measure(scale, url, redis_url, mappings, events, concurrency)
    finally:
        from db.session import dispose_engine, get_engine

        get_engine().dispose()
        dispose_engine()
        if keep:
            console.print(f"Kept database [bold]{name}[/]")
        else:
            drop_database(admin_url, name)
    if write_doc:
        from bench.report import write_section

        write_section("channel", markdown(figures))
        record_channel_summary(scale, figures)
        console.print("Recorded in docs/PERFORMANCE.md")


if __name__ == "__main__":
    typer.run(main)
