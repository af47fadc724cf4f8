"""Benchmark channel sync against slow channels (SPEC 7.1): a full cycle of 20,000 feeds, a
first import of 1,000 large feeds, the old design beside the new, and the concurrency models.

    python -m bench.bench_channel --scale 10 [--latency 0.3] [--old-feeds 400]
                                  [--no-write-doc] [--keep]

On a fresh database seeded by `seed_bench` at the given scale (N x 1,000 properties), with
every feed served by bench/feed_server.py (a process of its own) on 127.0.0.1 to 127.0.0.4 --
standing for Airbnb, Vrbo, Booking.com and another channel, one connection each -- answering
after `--latency` seconds with no validators (the same body every time, as Airbnb does):

1. **first import**: 1,000 new feeds of 100 events each, synced by a worker started as
   docker-compose.yml starts the channel worker (`-Q channel -c 2`, default limits: 50 feeds
   in flight per process, 8 per host); from sending `channel.sync` until no mapping is still
   requested. Target: under 60 s.
2. **full cycle**: two feeds per property (20,000 at scale 10) of 10 events each, imported once,
   then synced again with nothing changed: the cycle that repeats every 15 minutes. Targets:
   under 5 minutes (a third of the default interval) and within 1.25x of the bound the
   concurrency settings allow: feeds x latency / requests in flight at once (processes x
   min(50, hosts x 8)). Also: peak worker memory (the worker's processes, summed) and the rows
   the cycle added to ops.job_runs and channel.sync_log.
3. **old design**: the code before this change (`git archive` of OLD_DESIGN_COMMIT, run by
   a worker of its own as the old compose file ran it: one worker, `-c 2`, a task per feed,
   the fetch inside the task's transaction) on `--old-feeds` feeds of their own, imported then
   synced unchanged; and the new design on the same feeds. Extrapolated to the full cycle.
4. **concurrency models**, fetching alone (bench/channel_alternatives.py, no database): the
   event loop in a thread that channel sync uses, against a thread pool.

Writes the "channel" section of docs/PERFORMANCE.md and the summary rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from bench import harness
from bench.harness import ADMIN_URL, ROOT, AdminUrl, Keep, Scale, WriteDoc, console, err

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
CHANNELS = ("airbnb", "vrbo", "booking_com", "ical")
# docker-compose.yml's channel worker: `-Q channel -c 2`, default limits.
COMPOSE_PROCESSES = 2
FETCH_CONCURRENCY = 50
PER_HOST = 8
TARGET_CYCLE_S = 300.0
TARGET_RATIO = 1.25
TARGET_FIRST_S = 60.0
FIRST_FEEDS = 1000
FIRST_EVENTS = 100
CYCLE_EVENTS = 10
OLD_EVENTS = 5
ALTERNATIVE_FEEDS = 4000
# With one host at SLOW_DELAY, a quarter of these wait on it: few enough to finish in minutes.
ALTERNATIVE_FEEDS_SLOW = 1200
# The last commit before channel sync was redesigned (tasks/channel/importer.py).
OLD_DESIGN_COMMIT = "a6369b92"


# -- feeds -----------------------------------------------------------------------------------


def feed_body(channel: str, code: str, events: int, start: dt.date, rng: random.Random) -> bytes:
    from tests.support import feeds

    # Five days an event on average (2-6 nights, 0-2 days apart): a feed of 100 events spans
    # about 500 days, inside the 3-year horizon beyond which events are rejected.
    items, day = [], start + dt.timedelta(days=rng.randint(0, 2))
    for n in range(events):
        end = day + dt.timedelta(days=rng.randint(2, 6))
        uid = f"{code.lower()}-{n:04d}-{rng.getrandbits(48):012x}"
        stay = channel != "booking_com" and rng.random() < 0.6
        if channel == "airbnb":
            event = (
                feeds.airbnb_stay(uid, day, end, f"HM{rng.getrandbits(40):010X}")
                if stay
                else feeds.airbnb_block(uid, day, end)
            )
        elif channel == "vrbo":
            event = feeds.vrbo_stay(uid, day, end) if stay else feeds.vrbo_block(uid, day, end)
        elif channel == "booking_com":
            event = feeds.booking_closed(uid, day, end)
        else:
            event = feeds.Event(uid, day, end, "Guest stay" if stay else "Owner block")
        items.append(event)
        day = end + dt.timedelta(days=rng.randint(0, 2))
    render = {"airbnb": feeds.airbnb_feed, "vrbo": feeds.vrbo_feed, "ical": feeds.generic_feed}
    return render.get(channel, feeds.booking_feed)(items)


class FeedServer:
    """bench/feed_server.py in a process of its own."""

    def __init__(self, directory: Path, latency: float, slow: str | None = None) -> None:
        from workers.dev.system import free_port

        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.feed_server", "--dir", str(directory),
             "--hosts", ",".join(HOSTS), "--port", str(self.port), "--delay", str(latency),
             *(["--slow", slow] if slow else [])],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the feed server did not start")

    def url(self, host: str, name: str) -> str:
        return f"http://{host}:{self.port}/feeds/{name}.ics"

    def stats(self, reset: bool = False) -> dict[str, Any]:
        import httpx

        path = "/_reset" if reset else "/_stats"
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", trust_env=False).json()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# -- database --------------------------------------------------------------------------------


def q(engine: Any, sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    with engine.begin() as conn:
        return conn.execute(text(sql), params)


def scalar(engine: Any, sql: str, **params: Any) -> Any:
    return q(engine, sql, **params).scalar_one()


def connections(engine: Any, label: str) -> list[Any]:
    """One connection per host, paused until its phase starts."""
    return [
        q(
            engine,
            "INSERT INTO channel.channel_connections (channel, name, status)"
            " VALUES (:c, :n, 'paused') RETURNING id",
            c=channel,
            n=f"{label} {channel}",
        ).scalar_one()
        for channel in CHANNELS
    ]


def add_feeds(
    engine: Any,
    server: FeedServer,
    directory: Path,
    conns: list[Any],
    *,
    label: str,
    feeds_per_property: int,
    limit: int,
    events: int,
    start: dt.date,
    offset: int = 0,
) -> int:
    """`limit` mappings over the properties from `offset`, hosts in turn; bodies written to
    disk. A property's second feed starts after its first one ends (no double bookings)."""
    rng = random.Random(f"{label}-{limit}")
    properties = q(
        engine, "SELECT id, property_code FROM property.properties ORDER BY property_code"
        " OFFSET :o LIMIT :n", o=offset, n=(limit + feeds_per_property - 1) // feeds_per_property,
    ).all()  # fmt: skip
    rows = []
    for n in range(limit):
        prop = properties[n // feeds_per_property]
        k = n % len(HOSTS)
        name = f"{label}-{prop.property_code}-{n % feeds_per_property}"
        window = start + dt.timedelta(days=(n % feeds_per_property) * (events * 6 + 10))
        (directory / f"{name}.ics").write_bytes(feed_body(CHANNELS[k], name, events, window, rng))
        rows.append({"c": conns[k], "p": prop.id, "e": name, "u": server.url(HOSTS[k], name)})
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO channel.channel_mappings"
                " (connection_id, property_id, external_listing_id, import_url)"
                " VALUES (:c, :p, :e, :u)"
            ),
            rows,
        )
    q(engine, "ANALYZE channel.channel_mappings")
    return len(rows)


def start_phase(engine: Any, conns: list[Any]) -> None:
    """Only these connections active, and due now."""
    q(engine, "UPDATE channel.channel_connections SET status = 'paused'")
    q(
        engine,
        "UPDATE channel.channel_connections SET status = 'active', next_sync_at = NULL"
        " WHERE id = ANY(CAST(:ids AS uuid[]))",
        ids=conns,
    )


def counts(engine: Any) -> dict[str, int]:
    return {
        "job_runs": scalar(engine, "SELECT count(*) FROM ops.job_runs"),
        "sync_log": scalar(engine, "SELECT count(*) FROM channel.sync_log"),
    }


# -- the worker and its memory ---------------------------------------------------------------


class MemoryWatch:
    """Peak resident memory of a process tree (the worker and its pool), sampled."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak_total = self.peak_process = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                sizes = [p.memory_info().rss for p in procs]
            except psutil.Error:
                sizes = []
            if sizes:
                self.peak_total = max(self.peak_total, sum(sizes))
                self.peak_process = max(self.peak_process, max(sizes))
            self._stop.wait(0.25)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {"total_mb": self.peak_total / 2**20, "process_mb": self.peak_process / 2**20}


def start_worker(env: dict[str, str], log_dir: Path, cwd: Path = ROOT) -> subprocess.Popen:
    log = open(log_dir / f"worker-{uuid.uuid4().hex[:6]}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "channel",
         "-c", str(COMPOSE_PROCESSES), "-P", "prefork", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
         "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    proc.log_path = Path(log.name)  # type: ignore[attr-defined]
    time.sleep(6)  # the pool up (prefork, two processes)
    if proc.poll() is not None:
        raise RuntimeError(Path(log.name).read_text())
    return proc


def stop_worker(proc: subprocess.Popen) -> None:
    import signal

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def sync_round(
    engine: Any, app: Any, conns: list[Any], *, done_sql: str, expected: int, timeout: float
) -> float:
    """Send channel.sync with these connections due; seconds until `done_sql` counts
    `expected`."""
    start_phase(engine, conns)
    started = time.monotonic()
    app.send_task("channel.sync", kwargs={}, queue="channel").get(timeout=120)
    while time.monotonic() - started < timeout:
        if scalar(engine, done_sql, conns=conns) >= expected:
            return time.monotonic() - started
        time.sleep(0.25)
    raise TimeoutError(f"round not done in {timeout} s")


# New design: done when nothing of these connections is still requested; old design (no
# requests): when every mapping of them has synced since the round began.
NEW_DONE = """
    SELECT count(*) FROM channel.channel_mappings
    WHERE connection_id = ANY(CAST(:conns AS uuid[])) AND sync_requested_at IS NULL
      AND last_synced_at > now() - interval '1 hour' AND claimed_by IS NULL
"""


def old_done_sql(since: dt.datetime) -> str:
    return (
        "SELECT count(*) FROM channel.channel_mappings"
        " WHERE connection_id = ANY(CAST(:conns AS uuid[]))"
        f" AND last_synced_at >= '{since.isoformat()}'"
    )


def new_design_round(engine: Any, app: Any, conns: list[Any], expected: int) -> dict[str, Any]:
    q(
        engine,
        "UPDATE channel.channel_mappings SET last_synced_at = NULL"
        " WHERE connection_id = ANY(CAST(:ids AS uuid[]))",
        ids=conns,
    )
    before = counts(engine)
    wall = sync_round(engine, app, conns, done_sql=NEW_DONE, expected=expected, timeout=3600)
    after = counts(engine)
    return {
        "wall_s": wall,
        "job_runs": after["job_runs"] - before["job_runs"],
        "sync_log": after["sync_log"] - before["sync_log"],
        "statuses": dict(
            q(
                engine,
                "SELECT s.status, count(*) FROM channel.sync_log s"
                " JOIN channel.channel_mappings m ON m.last_sync_log_id = s.id"
                " WHERE m.connection_id = ANY(CAST(:ids AS uuid[])) GROUP BY s.status",
                ids=conns,
            ).all()
        ),
    }


# -- the old design --------------------------------------------------------------------------


def old_design(
    engine: Any, app: Any, env: dict[str, str], log_dir: Path, conns: list[Any], expected: int
) -> dict[str, Any] | None:
    """The pre-change code, from git, on its own worker: an import round, then an unchanged one."""
    old_dir = Path(tempfile.mkdtemp(prefix="cmw-old-design-"))
    archive = subprocess.run(
        ["git", "archive", OLD_DESIGN_COMMIT], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        err.print(f"[yellow]old design skipped: {archive.stderr.decode()[:200]}[/]")
        return None
    subprocess.run(["tar", "-x", "-C", str(old_dir)], input=archive.stdout, check=True)
    worker = start_worker({**env, "PYTHONPATH": str(old_dir)}, log_dir, cwd=old_dir)
    try:
        figures: dict[str, Any] = {}
        for run in ("first", "unchanged"):
            since = dt.datetime.now(dt.UTC)
            before = counts(engine)
            figures[f"{run}_s"] = sync_round(
                engine, app, conns, done_sql=old_done_sql(since), expected=expected, timeout=3600
            )
            after = counts(engine)
            figures[f"{run}_job_runs"] = after["job_runs"] - before["job_runs"]
            figures[f"{run}_sync_log"] = after["sync_log"] - before["sync_log"]
    finally:
        stop_worker(worker)
        shutil.rmtree(old_dir, ignore_errors=True)
    return figures


# -- the concurrency models ------------------------------------------------------------------


SLOW_HOST, SLOW_DELAY = HOSTS[-1], 3.0


def alternatives(
    server: FeedServer, slow_server: FeedServer, names: list[str]
) -> list[dict[str, Any]]:
    """Each model on every feed with the same latency, then with one host ten times slower."""
    results = []
    for scenario, srv, count in (
        ("even", server, ALTERNATIVE_FEEDS),
        ("one slow host", slow_server, ALTERNATIVE_FEEDS_SLOW),
    ):
        listing = Path(tempfile.mkstemp(prefix="cmw-feeds-")[1])
        listing.write_text("\n".join(f"{n}.ics" for n in names[:count]))
        for mode in ("loop", "threads"):
            done = subprocess.run(
                [sys.executable, "-m", "bench.channel_alternatives", "--mode", mode,
                 "--port", str(srv.port), "--names", str(listing), "--slow-host", SLOW_HOST,
                 "--concurrency", str(FETCH_CONCURRENCY), "--per-host", str(PER_HOST)],
                capture_output=True, text=True, check=True, cwd=ROOT,
            )  # fmt: skip
            results.append({**json.loads(done.stdout.strip().splitlines()[-1]),
                            "scenario": scenario})  # fmt: skip
        listing.unlink()
    return results


# -- the plans -------------------------------------------------------------------------------


def plans(engine: Any, conns: list[Any]) -> dict[str, str]:
    from tasks.channel import queries
    from tasks.ops.queries import PURGE_SYNC_LOG

    mapping = q(
        engine,
        "SELECT m.*, p.timezone FROM channel.channel_mappings m"
        " JOIN property.properties p ON p.id = m.property_id"
        " WHERE m.connection_id = :c LIMIT 1",
        c=conns[0],
    ).one()
    today = dt.date.today()
    now = dt.datetime.now(dt.UTC)
    statements = {
        "CLAIM_BATCH": (queries.CLAIM_BATCH, {"token": "plan", "limit": 500, "lease": 60}),
        "LIVE_BOOKINGS": (
            queries.LIVE_BOOKINGS, {"mapping_id": mapping.id, "present": [], "today": today}
        ),
        "OVERLAP_TICKETS": (
            queries.OVERLAP_TICKETS,
            {"mapping_id": mapping.id, "property_id": mapping.property_id, "as_of": now,
             "today": today, "cap": 10, "pair_limit": 100_000},
        ),
        "RECORD_SUCCESS": (
            queries.RECORD_SUCCESS,
            {"mapping_id": mapping.id, "connection_id": mapping.connection_id,
             "last_log_id": mapping.last_sync_log_id, "foldable": True, "etag": None,
             "last_modified": None, "feed_hash": mapping.last_feed_hash, "as_of": now,
             "changed": False, "started_at": now, "finished_at": now, "status": "not_modified",
             "http_status": 200, "events_seen": 0, "created": 0, "updated": 0, "cancelled": 0,
             "conflicts": 0, "held": 0, "rejected": 0, "hold_started_at": None},
        ),
        "PURGE_SYNC_LOG": (PURGE_SYNC_LOG, {"cutoff": now - dt.timedelta(days=30)}),
    }  # fmt: skip
    return harness.explain_each(engine, statements)


# -- measuring -------------------------------------------------------------------------------


def bound_s(feeds: int, latency: float, processes: int) -> float:
    in_flight = processes * min(FETCH_CONCURRENCY, len(HOSTS) * PER_HOST)
    return feeds * latency / in_flight


def measure(scale: int, url: str, latency: float, old_feeds: int) -> dict:
    from db.session import get_engine

    harness.seed(url, scale)
    engine = get_engine()
    q(engine, "DELETE FROM channel.channel_mappings")
    properties = scalar(engine, "SELECT count(*) FROM property.properties")
    cycle_feeds = min(20000, 2 * properties)
    today = dt.date.today()
    directory = Path(tempfile.mkdtemp(prefix="cmw-bench-feeds-"))
    server = FeedServer(directory, latency)
    log_dir = Path(tempfile.mkdtemp(prefix="cmw-bench-channel-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    from workers.app import app

    figures: dict[str, Any] = {"scale": scale, "latency": latency, "properties": properties}
    try:
        first_conns, cycle_conns = connections(engine, "first"), connections(engine, "cycle")
        old_conns, same_conns = connections(engine, "old"), connections(engine, "same")

        # Windows of dates apart, after the seed's stays (six months) and inside the 3-year
        # horizon, so the sets never double-book each other or the seed's stays.
        def at(days: int) -> dt.date:
            return today + dt.timedelta(days=days)

        feed_sets = (  # connections, label, feeds per property, feeds, events, start, offset
            (first_conns, "first", 1, FIRST_FEEDS, FIRST_EVENTS, at(200), 0),
            (cycle_conns, "cycle", 2, cycle_feeds, CYCLE_EVENTS, at(820), 0),
            (old_conns, "old", 1, old_feeds, OLD_EVENTS, at(980), 0),
            (same_conns, "same", 1, old_feeds, OLD_EVENTS, at(980), old_feeds),
        )
        for conns, label, per_property, limit, events, start, offset in feed_sets:
            add_feeds(engine, server, directory, conns, label=label,
                      feeds_per_property=per_property, limit=limit, events=events, start=start,
                      offset=offset)  # fmt: skip

        err.print("Concurrency models, fetching alone ...")
        names = [
            f"cycle-{r.property_code}-{k}"
            for r in q(engine, "SELECT property_code FROM property.properties"
                       " ORDER BY property_code LIMIT :n", n=ALTERNATIVE_FEEDS // 2).all()
            for k in (0, 1)
        ]  # fmt: skip
        slow_server = FeedServer(directory, latency, slow=f"{SLOW_HOST}={SLOW_DELAY}")
        try:
            figures["alternatives"] = alternatives(server, slow_server, names)
        finally:
            slow_server.close()

        err.print(f"Old design on {old_feeds} feeds ...")
        figures["old"] = old_design(engine, app, env, log_dir, old_conns, old_feeds)
        err.print("old:", figures["old"], "alternatives:", figures["alternatives"])

        worker = start_worker(env, log_dir)
        try:
            err.print(f"New design on the same {old_feeds} feeds ...")
            new_design_round(engine, app, same_conns, old_feeds)
            figures["same"] = new_design_round(engine, app, same_conns, old_feeds)
            err.print("same:", figures["same"])

            err.print(f"First import: {FIRST_FEEDS} feeds x {FIRST_EVENTS} events ...")
            watch = MemoryWatch(worker.pid)
            server.stats(reset=True)
            figures["first"] = new_design_round(engine, app, first_conns, FIRST_FEEDS)
            figures["first"]["memory"] = watch.stop()
            figures["first"]["server"] = server.stats()
            err.print("first:", figures["first"])
            figures["first"]["bookings"] = scalar(
                engine, "SELECT count(*) FROM channel.channel_bookings b"
                " JOIN channel.channel_mappings m ON m.id = b.mapping_id"
                " WHERE m.connection_id = ANY(CAST(:c AS uuid[]))", c=first_conns,
            )  # fmt: skip
            app.control.purge()  # the follow-ups: other jobs' work, drained by no one here

            err.print(f"Cycle: importing {cycle_feeds:,} feeds ...")
            watch = MemoryWatch(worker.pid)
            figures["cycle_import"] = new_design_round(engine, app, cycle_conns, cycle_feeds)
            figures["cycle_import"]["memory"] = watch.stop()
            err.print("cycle_import:", figures["cycle_import"])
            app.control.purge()
            err.print(f"Cycle: {cycle_feeds:,} feeds, nothing changed ...")
            figures["cycle_first_unchanged"] = new_design_round(
                engine, app, cycle_conns, cycle_feeds
            )
            err.print("cycle_first_unchanged:", figures["cycle_first_unchanged"])
            err.print(f"Cycle: {cycle_feeds:,} feeds, nothing changed, again ...")
            watch = MemoryWatch(worker.pid)
            server.stats(reset=True)
            load = os.getloadavg()[0]
            figures["cycle"] = new_design_round(engine, app, cycle_conns, cycle_feeds)
            figures["cycle"]["memory"] = watch.stop()
            figures["cycle"]["server"] = server.stats()
            figures["cycle"]["load"] = load
            err.print("cycle:", figures["cycle"])
        finally:
            stop_worker(worker)
        figures["cycle_feeds"] = cycle_feeds
        figures["bound_s"] = bound_s(cycle_feeds, latency, COMPOSE_PROCESSES)
        figures["plans"] = plans(engine, cycle_conns)
        figures["machine"] = harness.hardware(url)
        figures["date"] = dt.date.today().isoformat()
    finally:
        server.close()
        shutil.rmtree(directory, ignore_errors=True)
    report(figures)
    return figures


def report(r: dict[str, Any]) -> None:
    cycle, first = r["cycle"], r["first"]
    console.print(
        f"cycle {r['cycle_feeds']:,} feeds: {cycle['wall_s']:.1f} s (bound {r['bound_s']:.1f} s,"
        f" ratio {cycle['wall_s'] / r['bound_s']:.2f}); first import {FIRST_FEEDS} x"
        f" {FIRST_EVENTS}: {first['wall_s']:.1f} s; memory {cycle['memory']}"
    )
    console.print({k: v for k, v in r.items() if k not in ("plans",)})


def markdown(r: dict[str, Any]) -> str:
    cycle, first, imp = r["cycle"], r["first"], r["cycle_import"]
    ratio = cycle["wall_s"] / r["bound_s"]
    in_flight = COMPOSE_PROCESSES * min(FETCH_CONCURRENCY, len(HOSTS) * PER_HOST)
    verdict_cycle = (
        "met" if cycle["wall_s"] < TARGET_CYCLE_S and ratio <= TARGET_RATIO else "MISSED"
    )
    verdict_first = "met" if first["wall_s"] < TARGET_FIRST_S else "MISSED"
    ms = int(r["latency"] * 1000)
    lines = [
        "## Channel sync",
        "",
        f"`python -m bench.bench_channel --scale {r['scale']}` (`make bench-channel`):"
        f" `seed_bench` at scale {r['scale']} ({r['properties']:,} properties), every feed served",
        "by `bench/feed_server.py` (its own process) on 127.0.0.1 to 127.0.0.4 -- Airbnb, Vrbo,",
        f"Booking.com and another channel, a connection each -- answering after {ms} ms with no",
        "validators (the same body every time, as Airbnb serves it). The worker is started as",
        f"docker-compose.yml starts the channel worker: `-Q channel -c {COMPOSE_PROCESSES}`,"
        f" {FETCH_CONCURRENCY} feeds in flight per process, {PER_HOST} per host. A round is"
        " timed from",
        "sending `channel.sync` until no mapping of its connections is still requested.",
        "",
        "| round | feeds | time | bound | ratio | target | job_runs added | sync_log added"
        " | peak worker memory |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        f"| full cycle, nothing changed | {r['cycle_feeds']:,} | {cycle['wall_s']:.1f} s |"
        f" {r['bound_s']:.1f} s | {ratio:.2f} | < {TARGET_CYCLE_S:.0f} s and <="
        f" {TARGET_RATIO}x bound: {verdict_cycle} | {cycle['job_runs']:,} |"
        f" {cycle['sync_log']:,} | {cycle['memory']['total_mb']:.0f} MB"
        f" ({cycle['memory']['process_mb']:.0f} MB per process) |",
        f"| the cycle before it (the first unchanged one: each feed's first not_modified row) |"
        f" {r['cycle_feeds']:,} | {r['cycle_first_unchanged']['wall_s']:.1f} s |"
        f" {r['bound_s']:.1f} s | {r['cycle_first_unchanged']['wall_s'] / r['bound_s']:.2f} | - |"
        f" {r['cycle_first_unchanged']['job_runs']:,} |"
        f" {r['cycle_first_unchanged']['sync_log']:,} | - |",
        f"| the same feeds' first import ({CYCLE_EVENTS} events each) | {r['cycle_feeds']:,} |"
        f" {imp['wall_s']:.1f} s | {r['bound_s']:.1f} s | {imp['wall_s'] / r['bound_s']:.2f} | -"
        f" | {imp['job_runs']:,} | {imp['sync_log']:,} | {imp['memory']['total_mb']:.0f} MB |",
        f"| first import, {FIRST_EVENTS} events per feed | {FIRST_FEEDS:,} |"
        f" {first['wall_s']:.1f} s | {bound_s(FIRST_FEEDS, r['latency'], COMPOSE_PROCESSES):.1f}"
        f" s | - | < {TARGET_FIRST_S:.0f} s: {verdict_first} | {first['job_runs']:,} |"
        f" {first['sync_log']:,} | {first['memory']['total_mb']:.0f} MB |",
        "",
        f"The bound is feeds x latency / requests in flight at once ({COMPOSE_PROCESSES}"
        f" processes x min({FETCH_CONCURRENCY}, {len(HOSTS)} hosts x {PER_HOST}) ="
        f" {in_flight}). The feed server saw at most"
        f" {cycle['server']['total_peak']} requests at once in the cycle, per host"
        f" {cycle['server']['peak']}. Sync log statuses after the cycle: {cycle['statuses']}.",
        f"The first import wrote {first['bookings']:,} channel bookings (with their",
        "reservations, and a `recurring.sync_reservation` follow-up per stay, sent and not"
        " drained here).",
        f"The cycle ran with a load average of {cycle['load']:.1f} at its start.",
        "",
    ]
    old, same = r.get("old"), r["same"]
    lines += [
        "### The old design beside the new",
        "",
    ]
    if old:
        n = r["same_feeds"]
        per = old["unchanged_s"] / n
        lines += [
            f"The code before this change (`git archive {OLD_DESIGN_COMMIT}`: a task per feed,",
            "each fetch inside its task's transaction, one feed in flight per worker process)",
            f"on a worker of its own, `-c {COMPOSE_PROCESSES}` as the old compose file ran it,"
            f" and the new design on {n} feeds of their own, both at {ms} ms:",
            "",
            "| design | first import | unchanged round | job_runs per round | sync_log per"
            " round | unchanged, extrapolated to the full cycle |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| old | {old['first_s']:.1f} s | {old['unchanged_s']:.1f} s |"
            f" {old['unchanged_job_runs']:,} | {old['unchanged_sync_log']:,} |"
            f" {per * r['cycle_feeds'] / 60:.0f} min |",
            f"| new | - | {same['wall_s']:.1f} s | {same['job_runs']:,} | {same['sync_log']:,} |"
            f" {cycle['wall_s'] / 60:.1f} min (measured above) |",
            "",
        ]
    else:
        lines += ["(Not measured: the old commit was not available to `git archive`.)", ""]
    lines += [
        "### Concurrency models, fetching alone",
        "",
        f"Feeds of the cycle, no database, each model in a process of its own with the same"
        f" limits ({FETCH_CONCURRENCY} in flight, {PER_HOST} per host;"
        f" `bench/channel_alternatives.py`): {ALTERNATIVE_FEEDS:,} feeds with every host at"
        f" {ms} ms, then {ALTERNATIVE_FEEDS_SLOW:,} with {SLOW_HOST} answering in"
        f" {SLOW_DELAY:.0f} s (a channel having a bad day). *Others done*: when every feed of"
        " the other three hosts was in.",
        "",
        "| hosts | model | feeds fetched | wall | others done | CPU of the process |"
        " CPU per feed | peak memory |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {
        "loop": "event loop in a thread (used): httpx AsyncClient, SSRF guard",
        "threads": "thread pool: httpx Client per thread, no guard",
    }
    for a in r["alternatives"]:
        lines.append(
            f"| {a['scenario']} | {names[a['mode']]} | {a['ok']:,} of {a['feeds']:,} |"
            f" {a['wall_s']:.1f} s | {a['others_done_s']:.1f} s | {a['cpu_s']:.1f} s |"
            f" {a['cpu_s'] * 1000 / a['feeds']:.2f} ms | {a['peak_rss_mb']:.0f} MB |"
        )
    lines += [
        "",
        f"Bound with every host at {ms} ms:"
        f" {ALTERNATIVE_FEEDS * r['latency'] / min(FETCH_CONCURRENCY, 32):.1f} s; with the slow"
        f" host, its quarter alone takes {ALTERNATIVE_FEEDS_SLOW / 4 * SLOW_DELAY / PER_HOST:.0f}"
        ' s. Why the event loop: docs/DECISIONS.md, "Channel sync in the field".',
        "",
        f"Measured {r['date']} on {r['machine']}.",
        "",
        *harness.plans(
            "Plans of the statements that run per batch, per feed and per purge",
            r["plans"],
            when="after the cycle, rolled back",
        ),
    ]
    return "\n".join(lines)


def record_channel_summary(scale: int, r: dict[str, Any]) -> None:
    from bench.report import record_summary

    record_summary(f"channel.sync, full cycle unchanged ({r['cycle_feeds']:,} feeds)", scale,
                   rows=r["cycle"]["sync_log"], wall_s=r["cycle"]["wall_s"],
                   floor_s=r["bound_s"], target="< 300 s, <= 1.25x bound")  # fmt: skip
    record_summary(f"channel.sync, first import ({FIRST_FEEDS:,} x {FIRST_EVENTS})", scale,
                   rows=r["first"]["bookings"], wall_s=r["first"]["wall_s"],
                   floor_s=bound_s(FIRST_FEEDS, r["latency"], COMPOSE_PROCESSES),
                   target="< 60 s")  # fmt: skip


def main(
    scale: Scale = 10,
    latency: Annotated[float, typer.Option(help="Seconds each feed takes to answer.")] = 0.3,
    old_feeds: Annotated[int, typer.Option(help="Feeds for the old-design comparison.")] = 400,
    write_doc: WriteDoc = True,
    keep: Keep = False,
    admin_url: AdminUrl = ADMIN_URL,
) -> None:
    environment = {
        "REDIS_URL": harness.bench_redis_url(),
        # The feed server's addresses: channel sync refuses private ones unless allowed.
        "CMW_CHANNEL_ALLOWED_HOSTS": ",".join(HOSTS),
    }
    with harness.bench_database(
        admin_url, f"cmw_bench_channel_{scale}", keep=keep, environment=environment
    ) as url:
        figures = measure(scale, url, latency, old_feeds)
        figures["same_feeds"] = old_feeds
    if write_doc:
        from bench.report import write_section

        write_section("channel", markdown(figures))
        record_channel_summary(scale, figures)
        console.print("Recorded in docs/PERFORMANCE.md")


if __name__ == "__main__":
    typer.run(main)
