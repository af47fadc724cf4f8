"""Feed URLs are secrets (SPEC 7.1): a token in an import URL's path or query, or a password
in its user-info, reaches no log line of a real worker or of `cmw run` (the HTTP client's own
request lines included), no job run, dead letter, sync log, notification or error column --
whether the feed is imported, fails, is refused or times out."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest
from sqlalchemy import text

from tests.support import factories as f
from tests.support import feeds
from tests.support.cli import start_cmw_run

pytestmark = pytest.mark.e2e

SECRETS = ("S3cretPassw0rd", "TOKENPATH", "TOKENQUERY", "TOKENREDIRECT")


@pytest.fixture(scope="module")
def server():
    with feeds.FeedServer() as srv:
        yield srv


def secret_url(server, name: str) -> tuple[str, str]:
    path = f"/feeds/TOKENPATH{name}{uuid.uuid4().hex[:6]}.ics"
    return path, f"http://feeduser:S3cretPassw0rd@127.0.0.1:{server.port}{path}?s=TOKENQUERY{name}"


TABLES = {
    "ops.job_runs": "SELECT * FROM ops.job_runs",
    "ops.dead_letters": "SELECT * FROM ops.dead_letters",
    "channel.sync_log": "SELECT * FROM channel.sync_log",
    "comms.messages": "SELECT * FROM comms.messages",
    "channel.channel_connections": "SELECT * FROM channel.channel_connections",
    # Every column but the URL itself.
    "channel.channel_mappings": "SELECT id, last_error, last_etag, claimed_by FROM"
    " channel.channel_mappings",
    "service.tickets": "SELECT * FROM service.tickets",
}


def test_no_secret_of_a_feed_url_is_logged_or_stored(make_worker, celery_app, session, server):
    today = dt.date.today()
    prop = f.property_(session, code=f"SEC{uuid.uuid4().hex[:4]}")
    conn = feeds.connection(session, channel="airbnb")
    ok_path, ok_url = secret_url(server, "ok")
    server.set_feed(
        ok_path,
        feeds.airbnb_feed(
            [feeds.airbnb_stay("sec1", today + dt.timedelta(3), today + dt.timedelta(6), "HMSEC")]
        ),
    )
    bad_path, bad_url = secret_url(server, "bad")
    server.set_error(bad_path, 500)
    hop_path, hop_url = secret_url(server, "hop")
    server.set_redirect(hop_path, "http://10.0.0.1/TOKENREDIRECT/feed.ics?key=TOKENREDIRECT")
    slow_path, slow_url = secret_url(server, "slow")
    server.routes[slow_path] = feeds.Route(body=b"", delay=3.0)
    slow_conn = feeds.connection(session, channel="vrbo", settings={"timeout_seconds": 1})
    ok = feeds.mapping(session, conn, prop, ok_url)
    bad = feeds.mapping(session, conn, prop, bad_url)
    feeds.mapping(session, conn, prop, hop_url)
    feeds.mapping(session, slow_conn, prop, slow_url)
    session.commit()

    worker = make_worker(queues=("channel",))
    celery_app.send_task("channel.sync", kwargs={}, queue="channel").get(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session.commit()
        done = session.execute(text("SELECT count(*) FROM channel.sync_log")).scalar()
        if done >= 4:
            break
        time.sleep(0.3)
    assert done == 4
    assert len(server.hits(ok_path)) == 1  # the feed really was fetched, user-info and all
    assert server.hits(ok_path)[0].headers["authorization"].startswith("Basic ")

    # `cmw run` by hand: once for the good feed, once for the failing one a day later (its
    # feed-health notice names the mapping, never the URL).
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)).isoformat()
    outputs, results = [], []
    for payload in ({"mapping_id": str(ok)}, {"mapping_id": str(bad), "as_of": later}):
        proc = start_cmw_run("channel.sync_mapping", payload)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out + err)
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["status"] in ("ok", "not_modified") and results[1]["status"] == "error"
    session.commit()
    assert (
        session.execute(
            text("SELECT count(*) FROM comms.messages WHERE related_type = 'channel_mapping'")
        ).scalar()
        == 1
    )

    worker.stop()
    logged = worker.log()
    assert "channel.sync_mapping" in logged and "task finished" in logged  # the log is real
    for secret in SECRETS:
        assert secret not in logged, f"{secret} in the worker log"
        for output in outputs:
            assert secret not in output, f"{secret} in cmw run's output"
    for table, sql in TABLES.items():
        rows = session.execute(text(sql)).mappings().all()
        dumped = json.dumps([dict(r) for r in rows], default=str)
        for secret in SECRETS:
            assert secret not in dumped, f"{secret} in {table}"
