"""db.session.local_settings and db.fragments, against the real database."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from db.fragments import sql_list, ticket_events_cte
from db.session import local_settings


def setting(session, name: str) -> str:
    return session.execute(text("SELECT current_setting(:n)"), {"n": name}).scalar_one()


def test_local_settings_apply_inside_the_block_and_are_put_back(session):
    before = setting(session, "work_mem")
    with local_settings(session, work_mem="77MB", enable_nestloop="off"):
        assert setting(session, "work_mem") == "77MB"
        assert setting(session, "enable_nestloop") == "off"
    assert setting(session, "work_mem") == before
    assert setting(session, "enable_nestloop") == "on"


def test_an_error_inside_local_settings_comes_out_as_itself(session):
    """Not replaced by the failed transaction's refusal of the statement putting them back."""
    with pytest.raises(sqlalchemy.exc.DataError, match="division by zero"):
        with local_settings(session, work_mem="77MB"):
            session.execute(text("SELECT 1 / 0"))
    session.rollback()


def test_a_ticket_events_cte_writes_one_event_per_ticket(session):
    session.execute(
        text(
            f"""
            WITH new_tickets AS (
                INSERT INTO service.tickets (ticket_type, title, status, priority, source)
                SELECT 'PC', 'fragment ' || g, 'open', 'normal', 'system'
                FROM generate_series(1, 3) g
                RETURNING id
            ),
            {ticket_events_cte("new_events", "new_tickets", "jsonb_build_object('why', 'test')")}
            SELECT count(*) FROM new_events
            """
        ),
        {"as_of": "2026-06-30T12:00:00+00:00"},
    )
    rows = session.execute(
        text("SELECT event_type, actor, data, occurred_at FROM service.ticket_events")
    ).all()
    assert len(rows) == 3
    assert {(r.event_type, r.actor, r.data["why"]) for r in rows} == {("created", "system", "test")}


def test_sql_list_refuses_anything_but_plain_constants():
    assert sql_list(("guest", "owner_stay")) == "('guest', 'owner_stay')"
    with pytest.raises(ValueError):
        sql_list(("x' OR 1=1 --",))
