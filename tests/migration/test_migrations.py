"""The Alembic history builds exactly the models, honours the contract, and removes cleanly."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import db.models  # noqa: F401
from db.base import SCHEMAS, Base, include_name
from workers.dev import databases
from workers.migrate import downgrade_base, upgrade_head

HERE = Path(__file__).resolve().parent
CONTRACT = json.loads((HERE / "contract.json").read_text())
SHARED_CONTRACT = HERE.parents[2] / "shared" / "contract.json"


def test_models_and_migrations_do_not_drift(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={"include_schemas": True, "include_name": include_name, "compare_type": True},
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_every_contract_column_exists(engine):
    insp = inspect(engine)
    missing = []
    for fullname, columns in CONTRACT["tables"].items():
        schema, table = fullname.split(".")
        present = {c["name"] for c in insp.get_columns(table, schema=schema)}
        missing += [f"{fullname}.{c}" for c in columns if c not in present]
    assert missing == []


def test_vendored_contract_matches_shared_copy():
    # tests/migration/contract.json is a copy of ../shared/contract.json, which CI puts beside
    # the clone; when the shared one is there the two must agree.
    if SHARED_CONTRACT.exists():
        assert json.loads(SHARED_CONTRACT.read_text()) == CONTRACT
    else:
        assert CONTRACT["tables"], "the vendored contract is empty"


def test_reference_rows_are_seeded(session):
    priorities = session.execute(
        text(
            "SELECT code, response_minutes, resolution_minutes FROM ref.ticket_priority_key"
            " ORDER BY sort_order"
        )
    ).all()
    assert [tuple(r) for r in priorities] == [
        ("urgent", 15, 240),
        ("high", 60, 1440),
        ("normal", 240, 4320),
        ("low", 1440, 10080),
    ]
    types = session.execute(text("SELECT code FROM ref.ticket_type_key ORDER BY code")).scalars()
    assert list(types) == ["ACCT", "ADM", "PC", "RSV"]
    assert session.execute(text("SELECT count(*) FROM ref.inventory_item_types")).scalar() == 16
    accounts = dict(
        session.execute(text("SELECT code, normal_balance FROM finance.accounts")).all()
    )
    assert accounts["2000"] == "credit" and accounts["1010"] == "debit"


def test_keys_are_uuid_v7_and_business_ids_come_from_sequences(session):
    pid = session.execute(
        text(
            "INSERT INTO property.properties (property_code, name, timezone)"
            " VALUES ('P-1', 'One', 'America/New_York') RETURNING id"
        )
    ).scalar_one()
    assert pid.version == 7
    numbers = session.execute(
        text(
            "INSERT INTO service.tickets (ticket_type, title, property_id)"
            " VALUES ('PC', 'a', :p), ('PC', 'b', :p) RETURNING ticket_number"
        ),
        {"p": pid},
    ).scalars()
    assert list(numbers) == ["TKT-010001", "TKT-010002"]
    item_id = session.execute(
        text(
            "INSERT INTO inventory.inventory_items (type_code, item_name)"
            " VALUES ('TWLB', 'Bath towel') RETURNING item_id"
        )
    ).scalar_one()
    assert item_id == "INV-TWLB-010001"


def test_a_service_inserting_only_contract_columns_succeeds(session):
    """Columns the project adds are nullable or defaulted (SPEC 3)."""
    pid = session.execute(
        text(
            "INSERT INTO property.properties (property_code, name, timezone)"
            " VALUES ('P-2', 'Two', 'Pacific/Honolulu') RETURNING id"
        )
    ).scalar_one()
    session.execute(
        text(
            "INSERT INTO reservations.reservations (property_id, check_in, check_out, gross_rent)"
            " VALUES (:p, DATE '2026-01-01', DATE '2026-01-04', 300)"
        ),
        {"p": pid},
    )
    nights = session.execute(text("SELECT nights FROM reservations.reservations")).scalar_one()
    assert nights == 3


def test_updated_at_follows_updates(session):
    session.execute(
        text(
            "INSERT INTO property.resorts (name, timezone, created_at, updated_at)"
            " VALUES ('R', 'UTC', now() - interval '1 day', now() - interval '1 day')"
        )
    )
    session.execute(text("UPDATE property.resorts SET name = 'R2'"))
    stale = session.execute(
        text("SELECT updated_at < now() - interval '1 hour' FROM property.resorts")
    ).scalar_one()
    assert stale is False


@pytest.fixture
def scratch_database(services):
    name = f"cmw_mig_{uuid.uuid4().hex[:8]}"
    databases.create_database(services.admin_url, name)
    yield services.url_for(name)
    databases.drop_database(services.admin_url, name)


def test_downgrade_base_leaves_an_empty_database_and_upgrade_rebuilds(scratch_database):
    upgrade_head(scratch_database)
    downgrade_base(scratch_database)
    eng = create_engine(scratch_database)
    with eng.connect() as conn:
        left = (
            conn.execute(
                text(
                    "SELECT n.nspname || '.' || c.relname FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
                    " AND c.relname NOT LIKE 'alembic_version%'"
                )
            )
            .scalars()
            .all()
        )
        schemas = (
            conn.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname = ANY(:s)"),
                {"s": list(SCHEMAS)},
            )
            .scalars()
            .all()
        )
        functions = conn.execute(
            text(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
            )
        ).scalar()
    assert left == [] and schemas == [] and functions == 0
    upgrade_head(scratch_database)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ref.ticket_priority_key")).scalar() == 4
    eng.dispose()


def test_schema_is_built_on_psycopg_url_without_driver_prefix_too(services):
    # The admin URL the suite uses is plain libpq; a sanity check that the server is reachable.
    with psycopg.connect(services.admin_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
