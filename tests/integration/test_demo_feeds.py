"""The demo channel feeds `cmw dev` serves: real Airbnb-format calendars the importer takes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from tasks.channel.sync import import_mapping
from tests.support import factories as f
from tests.support import feeds
from workers.dev.demo_feeds import DemoFeedServer
from workers.dev.system import free_port


def test_a_demo_feed_imports_as_two_airbnb_stays_and_then_answers_304(session, engine):
    port = free_port()
    server = DemoFeedServer(port=port).start()
    try:
        prop = f.property_(session, code="KAI-101")
        connection = feeds.connection(session, channel="airbnb")
        mapping = feeds.mapping(
            session, connection, prop, f"http://127.0.0.1:{port}/feeds/KAI-101.ics"
        )
        session.commit()
        as_of = dt.datetime.now(dt.UTC)
        first = import_mapping(mapping, as_of=as_of).result
        second = import_mapping(mapping, as_of=as_of + dt.timedelta(minutes=15)).result
    finally:
        server.stop()
    assert first["status"] == "ok", first
    assert second["status"] == "not_modified", second
    with engine.connect() as conn:
        stays = conn.execute(
            text(
                "SELECT r.reservation_type, r.status, r.source, r.check_in, r.confirmation_code"
                " FROM reservations.reservations r WHERE r.property_id = :p ORDER BY check_in"
            ),
            {"p": prop},
        ).all()
    assert [(s.reservation_type, s.status, s.source) for s in stays] == [
        ("guest", "confirmed", "airbnb"),
        ("guest", "confirmed", "airbnb"),
    ]
    today = dt.datetime.now(dt.UTC).date()
    assert all(s.check_in > today + dt.timedelta(days=399) for s in stays)  # after demo stays
    assert all(s.confirmation_code.startswith("HM") for s in stays)
