"""Revision 0013 (SPEC 7.5) goes down and up again without losing a row of the tables it found,
and refuses to go down while statements carry lines the old schema could not hold."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from workers.dev import databases
from workers.migrate import alembic_config, upgrade_head

REVISION = "0013"
BEFORE = "0012"


@pytest.fixture
def scratch(services):
    name = f"cmw_mig_{uuid.uuid4().hex[:8]}"
    databases.create_database(services.admin_url, name)
    url = services.url_for(name)
    upgrade_head(url)
    engine = create_engine(url)
    yield url, engine
    engine.dispose()
    databases.drop_database(services.admin_url, name)


def seed_old_rows(conn) -> dict:
    """A posted statement and a guest payment, through the tables 0009 already had and the
    new ones."""
    pid = conn.execute(
        text(
            "INSERT INTO property.properties (property_code, name, timezone)"
            " VALUES ('M-1', 'Mig', 'UTC') RETURNING id"
        )
    ).scalar_one()
    contact = conn.execute(
        text("INSERT INTO directory.contacts (first_name) VALUES ('O') RETURNING id")
    ).scalar_one()
    hid = conn.execute(
        text("INSERT INTO directory.homeowners (contact_id) VALUES (:c) RETURNING id"),
        {"c": contact},
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO directory.homeowner_property_relationship"
            " (homeowner_id, property_id, cleaning_fee_to_owner, commission_flat_per_stay)"
            " VALUES (:h, :p, true, 25)"
        ),
        {"h": hid, "p": pid},
    )
    sid = conn.execute(
        text(
            "INSERT INTO finance.owner_statements"
            " (homeowner_id, property_id, period_start, period_end)"
            " VALUES (:h, :p, '2026-03-01', '2026-04-01') RETURNING id"
        ),
        {"h": hid, "p": pid},
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO finance.owner_statement_lines (statement_id, line_type, description,"
            " amount, stay_taxes) VALUES (:s, 'rent', 'A stay', 100, 12)"
        ),
        {"s": sid},
    )
    txn = conn.execute(
        text(
            "INSERT INTO finance.transactions (txn_date, description, reference_type,"
            " reference_id) VALUES ('2026-03-31', 'taxes', 'test', :s) RETURNING id"
        ),
        {"s": sid},
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO finance.transaction_lines (transaction_id, account_id, debit, credit)"
            " SELECT :t, id, CASE code WHEN '2100' THEN 12 ELSE 0 END,"
            " CASE code WHEN '2200' THEN 12 ELSE 0 END"
            " FROM finance.accounts WHERE code IN ('2100', '2200')"
        ),
        {"t": txn},
    )
    return {"statement": sid}


def counts(conn) -> dict:
    return {
        table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        for table in (
            "directory.homeowner_property_relationship",
            "finance.owner_statements",
            "finance.owner_statement_lines",
            "finance.transactions",
            "finance.transaction_lines",
        )
    }


def test_downgrade_refuses_to_lose_lines_then_keeps_every_row_and_upgrade_comes_back(scratch):
    url, engine = scratch
    with engine.begin() as conn:
        seeded = seed_old_rows(conn)
        before = counts(conn)
        fee_line = conn.execute(
            text(
                "INSERT INTO finance.owner_statement_lines (statement_id, line_type, description,"
                " amount) VALUES (:s, 'cleaning_fee', 'A cleaning fee', 95) RETURNING id"
            ),
            {"s": seeded["statement"]},
        ).scalar_one()

    # A statement carries a line type revision 0009 cannot hold: refused, nothing lost.
    with pytest.raises(RuntimeError, match="downgrading would lose them"):
        command.downgrade(alembic_config(url), BEFORE)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        lines = conn.execute(text("SELECT count(*) FROM finance.owner_statement_lines")).scalar()
    assert version == REVISION and lines == before["finance.owner_statement_lines"] + 1

    with engine.begin() as conn:  # the statement is a draft: its lines may go
        conn.execute(text("DELETE FROM finance.owner_statement_lines WHERE id = :id"),
                     {"id": fee_line})  # fmt: skip
    command.downgrade(alembic_config(url), BEFORE)

    with engine.connect() as conn:
        assert counts(conn) == before
        # 2200 stays: a posted line uses it; the unused new accounts are gone.
        codes = set(conn.execute(text("SELECT code FROM finance.accounts")).scalars())
        assert "2200" in codes and not codes & {"1300", "2300", "4020", "4030"}
        amount = conn.execute(
            text("SELECT amount FROM finance.owner_statement_lines WHERE statement_id = :s"),
            {"s": seeded["statement"]},
        ).scalar_one()
        assert amount == 100
        assert conn.execute(text("SELECT to_regclass('finance.guest_payments')")).scalar() is None

    upgrade_head(url)

    with engine.connect() as conn:
        assert counts(conn) == before
        assert set(conn.execute(text("SELECT code FROM finance.accounts")).scalars()) >= {
            "1300", "2200", "2300", "4020", "4030",
        }  # fmt: skip
