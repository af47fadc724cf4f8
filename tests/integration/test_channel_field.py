"""Channel sync in the field (SPEC 7.1), against real HTTP servers on 127.0.0.1 and 127.0.0.2:
no transaction across a slow fetch, many feeds in flight within limits, bodies bounded after
decoding, hostile feeds bounded, capped double-booking tickets, folded sync logs and their
purge, claims, and a clock that cannot push a feed out of reach."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
import time
import uuid
import zlib
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import text

from db.session import session_scope
from tasks.channel.fetch import FeedFetcher, Fetched, FetchError
from tasks.channel.overlaps import MAX_PAIRS_PER_IMPORT
from tasks.channel.plan import plan_sync
from tasks.channel.sync import (
    apply_fetched,
    claim_batch,
    claim_mapping,
    import_mapping,
    import_mappings,
    plain_context,
)
from tests.support import factories as f
from tests.support import feeds
from tests.support.cli import start_cmw_run
from tests.support.services import ROOT

NY = ZoneInfo("America/New_York")
AS_OF = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
TODAY = AS_OF.astimezone(NY).date()


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


@pytest.fixture(scope="module")
def server():
    with feeds.FeedServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def server2():
    with feeds.FeedServer(host="127.0.0.2") as srv:
        yield srv


def q(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def new_mapping(session, server, body: bytes | None = None, *, channel="airbnb", **route):
    prop = f.property_(session, code=f"FD{uuid.uuid4().hex[:6]}")
    path = f"/field/{uuid.uuid4().hex}.ics"
    if body is not None:
        server.set_feed(path, body, **route)
    mid = feeds.mapping(session, feeds.connection(session, channel=channel), prop, server.url(path))
    return mid, path, prop


def logs(engine, mapping_id):
    return q(
        engine,
        "SELECT * FROM channel.sync_log WHERE mapping_id = :m ORDER BY created_at",
        m=mapping_id,
    )


# -- no transaction across the network --------------------------------------------------------

IDLE_IN_TRANSACTION = """
    SELECT pid, application_name, now() - state_change AS idle
    FROM pg_stat_activity
    WHERE datname = current_database() AND application_name LIKE 'cmw%'
      AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()
"""


def _probe(services):
    return psycopg.connect(
        services.url_for(services.database_name).replace("postgresql+psycopg", "postgresql"),
        application_name="probe",
        autocommit=True,
    )


def test_no_cmw_session_sits_idle_in_transaction_during_a_slow_fetch(
    engine, session, server, services
):
    mid, path, _ = new_mapping(session, server)
    body = feeds.airbnb_feed([feeds.airbnb_stay("slow", day(3), day(6), "HMSLOW")])
    server.routes[path] = feeds.Route(body=body, delay=6.0)
    session.commit()
    worst = dt.timedelta(0)
    with _probe(services) as probe:
        proc = start_cmw_run("channel.sync_mapping", {"mapping_id": str(mid)})
        while proc.poll() is None:
            for row in probe.execute(IDLE_IN_TRANSACTION).fetchall():
                worst = max(worst, row[2])
            time.sleep(0.1)
        out, err = proc.communicate()
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["status"] == "ok"
        assert len(server.hits(path)) == 1
        assert worst < dt.timedelta(seconds=1.5), worst

        # The probe does see a cmw session that holds a transaction open (the check can fail).
        held = psycopg.connect(
            services.url_for(services.database_name).replace("postgresql+psycopg", "postgresql"),
            application_name="cmw-control",
        )
        held.execute("SELECT 1")
        time.sleep(1.6)
        seen = probe.execute(IDLE_IN_TRANSACTION).fetchall()
        held.close()
        assert any(r[1] == "cmw-control" and r[2] > dt.timedelta(seconds=1.5) for r in seen)


# -- many feeds in flight -----------------------------------------------------------------------


def test_many_feeds_in_flight_within_the_process_and_per_host_limits(
    engine, session, server, server2
):
    servers = (server, server2)
    ids = []
    for n in range(24):
        srv = servers[n % 2]
        mid, path, _ = new_mapping(session, srv)
        body = feeds.airbnb_feed([feeds.airbnb_stay(f"c{n}", day(3), day(5), f"HMC{n:03d}")])
        srv.routes[path] = feeds.Route(body=body, delay=0.4)
        ids.append(mid)
    # One feed failing and one too slow for its connection's budget: their own errors only.
    bad, bad_path, _ = new_mapping(session, server)
    server.set_error(bad_path, 500)
    # On a server of its own (same host, another port): the server keeps "answering" it after
    # the client gave up, which must not count in the peaks measured below.
    slow_server = feeds.FeedServer(host="127.0.0.2").start()
    slow, slow_path, _ = new_mapping(session, slow_server)
    slow_server.routes[slow_path] = feeds.Route(body=b"", delay=3.0)
    session.execute(
        text(
            "UPDATE channel.channel_connections SET settings = '{\"timeout_seconds\": 1}'"
            " WHERE id = (SELECT connection_id FROM channel.channel_mappings WHERE id = :m)"
        ),
        {"m": slow},
    )
    session.execute(
        text("UPDATE channel.channel_mappings SET sync_requested_at = :t"), {"t": AS_OF}
    )
    session.commit()
    for srv in servers:
        srv.peak = 0
    fetcher = FeedFetcher({"127.0.0.1", "127.0.0.2"}, concurrency=6, per_host=4)
    try:
        batch = import_mappings(plain_context(AS_OF), batch_size=100, fetcher=fetcher)
    finally:
        fetcher.close()
        slow_server.close()

    assert batch.claimed == 26
    statuses = {m: o.result.get("status") for m, o in batch.outcomes.items()}
    assert [statuses[m] for m in ids] == ["ok"] * 24
    assert statuses[bad] == "error" and statuses[slow] == "error"
    assert "timed out" in batch.outcomes[slow].result["error"]
    # Each host saw at most 4 at once, and both together at most 6 (not 8), and the fetcher
    # did keep several in flight (one at a time would have peaked at 1).
    assert server.peak <= 4 and server2.peak <= 4
    assert server.peak + server2.peak >= 5
    overlap = _max_overlap(
        [
            (r.at, s.routes[r.path].delay)
            for s in servers
            for r in s.requests
            if r.path in s.routes and s.routes[r.path].delay
        ]
    )
    assert overlap <= 6
    rows = q(engine, "SELECT mapping_id, count(*) AS n FROM channel.sync_log GROUP BY mapping_id")
    assert {r.mapping_id: r.n for r in rows} == {m: 1 for m in [*ids, bad, slow]}
    assert (
        q(
            engine,
            "SELECT count(*) AS n FROM channel.channel_mappings WHERE claimed_by IS NOT NULL",
        )[0].n
        == 0
    )


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals (start, length) that overlap at one instant, less 20 ms of slack."""
    points = sorted(
        [(start, 1) for start, _ in intervals] + [(start + n - 0.02, -1) for start, n in intervals]
    )
    current = peak = 0
    for _, step in points:
        current += step
        peak = max(peak, current)
    return peak


def test_a_batch_claims_requested_mappings_taking_turns_between_hosts(
    engine, session, server, server2
):
    first = [new_mapping(session, server)[0] for _ in range(3)]
    second = [new_mapping(session, server2)[0] for _ in range(3)]
    session.commit()
    with session_scope() as s:
        result, requested = plan_sync(s, as_of=AS_OF)
    assert sorted(requested) == sorted(first + second) and result["mappings_enqueued"] == 6
    with session_scope() as s:
        claimed = claim_batch(s, "batch-a", limit=4)
    hosts = sorted("127.0.0.2" in r.import_url for r in claimed)
    assert hosts == [False, False, True, True]  # two of each, not four of one
    with session_scope() as s:
        rest = claim_batch(s, "batch-b", limit=4)
    assert len(rest) == 2 and not {r.id for r in rest} & {r.id for r in claimed}
    with session_scope() as s:
        assert claim_batch(s, "batch-c", limit=4) == []


def test_a_lapsed_claim_is_not_applied_over_the_import_that_took_it(engine, session, server):
    mid, path, _ = new_mapping(
        session, server, feeds.airbnb_feed([feeds.airbnb_stay("l1", day(3), day(5), "HML1")])
    )
    session.commit()
    with session_scope() as s:
        mine = claim_mapping(s, mid, "lost-worker")
        s.execute(
            text("UPDATE channel.channel_mappings SET claimed_until = now() - interval '1 s'")
        )
    with session_scope() as s:
        theirs = claim_mapping(s, mid, "new-worker")
    assert not isinstance(theirs, dict)
    fetched = Fetched(mid, FetchError("HTTP 500 from 127.0.0.1", http_status=500), lambda: None)
    outcome = apply_fetched(plain_context(AS_OF), mine, fetched, "lost-worker")
    assert outcome.result == {"skipped": "the claim lapsed; another import took it"}
    assert logs(engine, mid) == []
    [m] = q(engine, "SELECT claimed_by FROM channel.channel_mappings WHERE id = :m", m=mid)
    assert m.claimed_by == "new-worker"


# -- bodies bounded after decoding ------------------------------------------------------------


def _gzip_stream(size: int) -> bytes:
    """gzip of `size` zero bytes, made without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    parts = [packer.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + packer.flush()


# VmHWM, this process's own peak: ru_maxrss would carry the parent's peak across exec.
PEAK_SCRIPT = """
import json, re, sys
from tasks.channel.fetch import FetchError, fetch_feed
try:
    fetch_feed(sys.argv[1], allowed_hosts={"127.0.0.1"}, max_bytes=1024 * 1024)
    outcome = "ok"
except FetchError as exc:
    outcome = str(exc)
status = open("/proc/self/status").read()
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
print(json.dumps({"outcome": outcome, "peak_kb": peak_kb}))
"""


def _fetch_peak(url: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_stacked_gzip_bomb_stops_at_the_cap_with_bounded_memory(server):
    bomb = gzip.compress(_gzip_stream(256 << 20))  # 256 MiB of zeros, gzipped twice
    assert len(bomb) < 64 * 1024
    server.set_feed("/bomb.ics", bomb, etag=False, headers={"Content-Encoding": "gzip, gzip"})
    server.set_feed("/small.ics", feeds.airbnb_feed([]), etag=False)
    control = _fetch_peak(server.url("/small.ics"))
    bombed = _fetch_peak(server.url("/bomb.ics"))
    assert control["outcome"] == "ok"
    assert "too big" in bombed["outcome"]
    # The cap is 1 MiB here: the fetch held a few MiB at most, never the 256 MiB.
    assert bombed["peak_kb"] - control["peak_kb"] < 32 * 1024, (bombed, control)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("gzip, gzip", lambda b: gzip.compress(gzip.compress(b))),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send it
        ("identity", lambda b: b),
        ("gzip", lambda b: gzip.compress(b[:100]) + gzip.compress(b[100:])),  # two members
    ],
)
def test_encoded_feeds_import_like_plain_ones(engine, session, server, encoding, encode):
    body = feeds.airbnb_feed([feeds.airbnb_stay("enc", day(3), day(6), "HMENC")])
    mid, _, _ = new_mapping(
        session, server, encode(body), etag=False, headers={"Content-Encoding": encoding}
    )
    session.commit()
    outcome = import_mapping(mid, as_of=AS_OF)
    assert (outcome.result["status"], outcome.result["created"]) == ("ok", 1)


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        ("gzip", b"\x1f\x8b\x08\x00garbage-that-is-not-deflate" * 4, "cannot decode"),
        ("gzip", gzip.compress(b"BEGIN:VCALENDAR\r\n" * 50)[:-12], "truncated"),
        ("br", b"whatever", "unsupported Content-Encoding"),
    ],
)
def test_an_undecodable_body_is_a_sync_error_with_backoff_not_a_task_failure(
    engine, session, server, celery_app, encoding, body, message
):
    mid, _, _ = new_mapping(
        session, server, body, etag=False, headers={"Content-Encoding": encoding}
    )
    session.commit()
    done = celery_app.tasks["channel.sync_mapping"].apply(kwargs={"mapping_id": str(mid)})
    assert done.successful(), done.result
    assert done.result["status"] == "error" and message in done.result["error"]
    [log] = logs(engine, mid)
    assert log.status == "error" and message in log.error
    [m] = q(engine, "SELECT * FROM channel.channel_mappings WHERE id = :m", m=mid)
    assert m.consecutive_failures == 1 and m.next_sync_at is not None
    assert q(engine, "SELECT * FROM ops.dead_letters") == []


# -- hostile feeds ----------------------------------------------------------------------------


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def test_absurd_stays_are_rejected_counted_and_cancel_nothing(engine, session, server):
    horizon = _years_after(TODAY, 3)
    events = [
        feeds.airbnb_stay("forever", dt.date(1, 1, 1), dt.date(9999, 12, 31), "HMFOREVER"),
        feeds.airbnb_stay("year", day(10), day(10 + 366), "HMYEAR"),
        feeds.airbnb_stay(
            "far", horizon + dt.timedelta(days=1), horizon + dt.timedelta(3), "HMFAR"
        ),
        feeds.airbnb_stay("ok365", day(400), day(400 + 365), "HM365"),
        feeds.airbnb_stay("okfar", horizon, horizon + dt.timedelta(days=2), "HMOKFAR"),
    ]
    mid, path, prop = new_mapping(session, server, feeds.airbnb_feed(events), etag=False)
    session.commit()
    outcome = import_mapping(mid, as_of=AS_OF)
    assert (outcome.result["created"], outcome.result["rejected"]) == (2, 3)
    assert logs(engine, mid)[-1].rejected == 3
    uids = {r.external_uid for r in q(engine, "SELECT external_uid FROM channel.channel_bookings")}
    assert uids == {"ok365@airbnb.com", "okfar@airbnb.com"}
    assert q(engine, "SELECT * FROM service.tickets WHERE property_id = :p", p=prop) == []
    # The rejected events are still in the feed: nothing is cancelled for them.
    server.set_feed(path, feeds.airbnb_feed(events[:3] + events[3:]), etag=False)
    again = import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=15))
    assert again.result["cancelled"] == 0


def test_a_feed_with_more_than_5000_events_is_a_sync_error(engine, session, server):
    events = [
        feeds.airbnb_block(f"many{n}", day(1 + n % 300), day(2 + n % 300)) for n in range(5001)
    ]
    mid, _, _ = new_mapping(session, server, feeds.airbnb_feed(events), etag=False)
    session.commit()
    outcome = import_mapping(mid, as_of=AS_OF)
    assert outcome.result["status"] == "error" and "5001 events" in outcome.result["error"]
    assert q(engine, "SELECT * FROM channel.channel_bookings") == []


def test_one_import_raises_at_most_ten_double_booking_tickets_and_one_summary(
    engine, session, server
):
    same = [feeds.airbnb_stay(f"dup{n}", day(5), day(9), f"HMDUP{n:04d}") for n in range(200)]
    mid, path, prop = new_mapping(session, server, feeds.airbnb_feed(same), etag=False)
    session.commit()
    ctx = plain_context(AS_OF)
    batch = import_mappings(ctx, mapping_id=mid)
    outcome = batch.outcomes[mid]

    assert outcome.result["conflicts"] == 200
    tickets = q(
        engine, "SELECT * FROM service.tickets WHERE property_id = :p ORDER BY title", p=prop
    )
    assert len(tickets) == 11 and all(t.priority == "urgent" for t in tickets)
    [summary] = [t for t in tickets if t.dedupe_key.startswith("channel:overlaps:")]
    assert "19900 overlapping pairs" in summary.title
    assert len(outcome.tickets_created) == 11
    assert sum(1 for name, _ in ctx._after_commit if name == "sla.apply") == 11
    pairs = q(
        engine, "SELECT count(*) AS n, count(ticket_id) AS ticketed FROM channel.overlap_pairs"
    )
    assert (pairs[0].n, pairs[0].ticketed) == (19900, 10)

    # Every pair is recorded: the next import raises none of them again.
    server.set_feed(path, feeds.airbnb_feed(same), etag=False)
    assert import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=15)).tickets_created == []
    # New pairs while the summary is open: recorded and noted on it, not raised one by one.
    more = same + [feeds.airbnb_stay("dupx", day(6), day(8), "HMDUPX")]
    server.set_feed(path, feeds.airbnb_feed(more), etag=False)
    later = import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=30))
    assert later.tickets_created == []
    assert q(engine, "SELECT count(*) AS n FROM channel.overlap_pairs")[0].n == 19900 + 200
    notes = q(
        engine,
        "SELECT data FROM service.ticket_events"
        " WHERE ticket_id = :t AND event_type = 'overlaps_found'",
        t=summary.id,
    )
    assert [n.data["pairs"] for n in notes] == [200]
    # Once ops resolve the summary, new pairs are raised one by one again.
    session.execute(
        text("UPDATE service.tickets SET status = 'resolved' WHERE id = :t"), {"t": summary.id}
    )
    session.commit()
    direct = f.reservation(session, prop, day(5), day(6), source="direct")
    session.commit()
    again = import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=45))
    assert len(again.tickets_created) == 11  # 200 new pairs with the direct stay: 10 + summary
    assert direct


def test_the_largest_feed_allowed_records_a_bounded_number_of_pairs_per_import(
    engine, session, server
):
    same = [feeds.airbnb_stay(f"big{n}", day(5), day(9), f"HMBIG{n:05d}") for n in range(1000)]
    mid, _, prop = new_mapping(session, server, feeds.airbnb_feed(same), etag=False)
    session.commit()
    first = import_mapping(mid, as_of=AS_OF)
    assert first.result["conflicts"] == 1000 and len(first.tickets_created) == 11
    pairs = q(engine, "SELECT count(*) AS n FROM channel.overlap_pairs")[0].n
    assert pairs == MAX_PAIRS_PER_IMPORT  # of 499,500: the rest later, a bounded share a run
    [summary] = q(
        engine,
        "SELECT title FROM service.tickets WHERE dedupe_key LIKE 'channel:overlaps:%'",
    )
    assert "at least 100000 overlapping pairs" in summary.title
    second = import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=15))
    assert second.tickets_created == []
    assert q(engine, "SELECT count(*) AS n FROM channel.overlap_pairs")[0].n == 2 * pairs


def test_pairs_ticketed_before_the_upgrade_are_not_raised_again(engine, session, server):
    # Migration 0009 copied every pair already ticketed into overlap_pairs; a pair recorded
    # there (however it got there) is never raised.
    a = feeds.airbnb_stay("p1", day(5), day(9), "HMP1")
    b = feeds.airbnb_stay("p2", day(6), day(8), "HMP2")
    mid, path, prop = new_mapping(session, server, feeds.airbnb_feed([a]), etag=False)
    session.commit()
    import_mapping(mid, as_of=AS_OF)
    direct = f.reservation(session, prop, day(6), day(8), source="direct")
    [mine] = q(engine, "SELECT id FROM reservations.reservations WHERE source = 'airbnb'")
    lo, hi = sorted([mine.id, direct])
    session.execute(
        text(
            "INSERT INTO channel.overlap_pairs (lo, hi, property_id, found_at)"
            " VALUES (:lo, :hi, :p, now())"
        ),
        {"lo": lo, "hi": hi, "p": prop},
    )
    session.commit()
    server.set_feed(path, feeds.airbnb_feed([a, b]), etag=False)
    outcome = import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=15))
    # Only the new pairs (p2 with p1, p2 with the direct stay) are raised.
    assert len(outcome.tickets_created) == 2


# -- volume -----------------------------------------------------------------------------------


def test_unchanged_runs_fold_into_one_sync_log_row(engine, session, server):
    events = [feeds.airbnb_stay("f1", day(3), day(6), "HMF1")]
    mid, path, _ = new_mapping(session, server, feeds.airbnb_feed(events), etag=False)
    session.commit()
    import_mapping(mid, as_of=AS_OF)
    for minutes in (15, 30, 45, 60):
        # Airbnb re-stamps every response: a new DTSTAMP is not a change.
        stamped = [
            feeds.Event(e.uid, e.start, e.end, e.summary, e.description,
                        dtstamp=AS_OF + dt.timedelta(minutes=minutes))
            for e in events
        ]  # fmt: skip
        server.set_feed(path, feeds.airbnb_feed(stamped), etag=False)
        run = import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=minutes))
        assert run.result["status"] == "not_modified"
    rows = logs(engine, mid)
    assert [(r.status, r.runs) for r in rows] == [("ok", 1), ("not_modified", 4)]
    assert rows[1].started_at == AS_OF + dt.timedelta(minutes=15)
    assert rows[1].last_started_at == AS_OF + dt.timedelta(minutes=60)
    assert rows[1].finished_at >= AS_OF + dt.timedelta(minutes=60)
    # A change is a row of its own; the unchanged runs after it fold again.
    events.append(feeds.airbnb_stay("f2", day(10), day(12), "HMF2"))
    server.set_feed(path, feeds.airbnb_feed(events), etag=False)
    import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=75))
    import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=90))
    import_mapping(mid, as_of=AS_OF + dt.timedelta(minutes=105))
    assert [(r.status, r.runs) for r in logs(engine, mid)] == [
        ("ok", 1),
        ("not_modified", 4),
        ("ok", 1),
        ("not_modified", 2),
    ]


def test_a_batch_is_one_job_run_however_many_feeds(engine, session, server, celery_app):
    for n in range(5):
        new_mapping(
            session,
            server,
            feeds.airbnb_feed([feeds.airbnb_stay(f"j{n}", day(3), day(5), f"HMJ{n}")]),
        )
    session.commit()
    swept = celery_app.tasks["channel.sync"].apply(kwargs={"as_of": AS_OF.isoformat()})
    assert swept.result["mappings_enqueued"] == 5 and swept.result["batches_enqueued"] == 1
    celery_app.control.purge()
    done = celery_app.tasks["channel.sync_mapping"].apply(
        kwargs={"batch_size": 500, "as_of": AS_OF.isoformat()}
    )
    assert done.result["mappings"] == 5 and done.result["feeds_ok"] == 5
    runs = q(engine, "SELECT * FROM ops.job_runs WHERE task_name = 'channel.sync_mapping'")
    assert len(runs) == 1
    assert q(engine, "SELECT count(*) AS n FROM channel.sync_log")[0].n == 5
    assert (
        q(
            engine,
            "SELECT count(*) AS n FROM channel.channel_mappings WHERE sync_requested_at IS NULL",
        )[0].n
        == 5
    )
    celery_app.control.purge()


def test_purge_trims_old_sync_logs_but_keeps_each_mappings_newest(engine, session, celery_app):
    old = AS_OF - dt.timedelta(days=40)
    prop = f.property_(session, code=f"PG{uuid.uuid4().hex[:5]}")
    conn = feeds.connection(session)
    quiet = feeds.mapping(session, conn, prop, "http://127.0.0.1/q.ics")
    busy = feeds.mapping(session, conn, prop, "http://127.0.0.1/b.ics")
    ids = {}
    for name, mapping, at in (
        ("quiet_old", quiet, old),
        ("quiet_newest", quiet, old + dt.timedelta(hours=1)),
        ("busy_old", busy, old),
        ("busy_new", busy, AS_OF - dt.timedelta(days=1)),
    ):
        ids[name] = session.execute(
            text(
                "INSERT INTO channel.sync_log (connection_id, mapping_id, started_at,"
                " finished_at, status) VALUES (:c, :m, :at, :at, 'not_modified') RETURNING id"
            ),
            {"c": conn, "m": mapping, "at": at},
        ).scalar_one()
    for mapping, newest in ((quiet, "quiet_newest"), (busy, "busy_new")):
        session.execute(
            text("UPDATE channel.channel_mappings SET last_sync_log_id = :l WHERE id = :m"),
            {"l": ids[newest], "m": mapping},
        )
    session.commit()
    done = celery_app.tasks["ops.purge"].apply(kwargs={"keep_days": 30})
    assert done.result["sync_log_deleted"] == 2
    left = {r.id for r in q(engine, "SELECT id FROM channel.sync_log")}
    assert left == {ids["quiet_newest"], ids["busy_new"]}


# -- the clock --------------------------------------------------------------------------------


def test_a_far_as_of_cannot_push_a_feed_out_of_reach(engine, session, server, celery_app):
    far = AS_OF + dt.timedelta(days=4 * 365)
    mid, path, _ = new_mapping(session, server)
    server.set_error(path, 500)
    session.commit()
    before = dt.datetime.now(dt.UTC)
    swept = celery_app.tasks["channel.sync"].apply(kwargs={"as_of": far.isoformat()})
    assert swept.successful(), swept.result
    celery_app.control.purge()
    [c] = q(
        engine,
        "SELECT c.next_sync_at FROM channel.channel_connections c"
        " JOIN channel.channel_mappings m ON m.connection_id = c.id WHERE m.id = :m",
        m=mid,
    )
    assert before + dt.timedelta(minutes=15) <= c.next_sync_at
    assert c.next_sync_at <= dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)
    failed = import_mapping(mid, as_of=far)
    assert failed.result["status"] == "error"
    [m] = q(engine, "SELECT next_sync_at FROM channel.channel_mappings WHERE id = :m", m=mid)
    assert m.next_sync_at <= dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)


# -- the fetcher under load: a slot per fetch, given back -------------------------------------


def test_the_fetchers_slots_are_given_back_whatever_happens(server):
    server.set_feed("/slots.ics", feeds.airbnb_feed([]), etag=False)
    server.set_error("/slots-500.ics", 500)
    fetcher = FeedFetcher({"127.0.0.1"}, concurrency=3, per_host=3)
    try:
        from tasks.channel.fetch import FeedRequest

        futures = [
            fetcher.start(n, FeedRequest(server.url("/slots.ics" if n % 2 else "/slots-500.ics")))
            for n in range(12)
        ]
        results = []
        for future in futures:
            fetched = future.result(timeout=30)
            results.append(fetched.error is None)
            fetched.done()
        assert results.count(True) == 6
        deadline = time.monotonic() + 5
        while fetcher.in_flight() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fetcher.in_flight() == 0
    finally:
        fetcher.close()
