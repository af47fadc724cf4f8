"""The demo carries a full guest journey (SPEC 7.6): `cmw dev` shows scheduled messages and
door codes for the upcoming stays at once, and the release sweep sends what is due."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

from db.seeds.demo import seed_demo


def rows(engine: Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_the_demo_plans_a_journey_for_every_upcoming_stay(engine: Engine, migrated_db: str):
    counts = seed_demo(migrated_db)
    assert counts["comms.message_templates"] == 8 and counts["comms.message_rules"] == 8
    today = dt.date.today()
    # Every live guest stay not yet over has one code; none for owner stays or cancelled ones.
    [(upcoming, with_code, wrong)] = rows(
        engine,
        """
        SELECT count(*) FILTER (WHERE s.reservation_type = 'guest'
                                  AND s.status IN ('confirmed', 'checked_in')
                                  AND p.status = 'active'
                                  AND s.check_out > CAST(:today AS date)),
               count(*) FILTER (WHERE a.id IS NOT NULL),
               count(*) FILTER (WHERE a.id IS NOT NULL AND (s.reservation_type <> 'guest'
                                                            OR s.status = 'cancelled'))
        FROM reservations.reservations s
        JOIN property.properties p ON p.id = s.property_id
        LEFT JOIN property.access_codes a ON a.reservation_id = s.id
        """,
        today=today,
    )
    assert upcoming > 50 and with_code == upcoming and wrong == 0
    by_rule = dict(
        rows(
            engine,
            "SELECT r.name, count(*) FROM comms.messages m"
            " JOIN comms.message_rules r ON r.id = m.message_rule_id"
            " WHERE m.status = 'scheduled' GROUP BY r.name",
        )
    )
    for name in ("Pre-arrival with door code", "Door code by SMS", "Checkout reminder"):
        assert by_rule[name] > 10, name
    assert by_rule["Owner arrival note"] > 0
    # One `set` command per code for the lock service.
    [(commands,)] = rows(
        engine, "SELECT count(*) FROM comms.messages WHERE related_type = 'access_code'"
    )
    assert commands == with_code

    # The first sweep after the load releases what is due (in-house guests' late door codes
    # among them), each message with its stay's code.
    from db.session import session_scope
    from tasks.journeys.release import release_due

    with session_scope() as s:
        result = release_due(s, as_of=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert result["released"] > 5 and result["failed"] == 0
    bodies = rows(
        engine,
        "SELECT m.body, a.code FROM comms.messages m"
        " JOIN comms.message_rules r ON r.id = m.message_rule_id"
        " JOIN property.access_codes a ON a.reservation_id = m.related_id"
        " WHERE m.status = 'queued' AND r.name IN ('Pre-arrival with door code',"
        " 'Door code by SMS')",
    )
    assert bodies and all(f"your door code is {code}" in body for body, code in bodies)
