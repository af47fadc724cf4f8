"""Database lifecycle for tests: create, migrate with the real Alembic history, clean, drop."""

from __future__ import annotations

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine

import db.models  # noqa: F401
from db.base import Base

# Rows the migrations seed, which every test (and other services) rely on being there.
SEEDED_TABLES = {
    "ref.ticket_type_key",
    "ref.ticket_priority_key",
    "ref.inventory_item_types",
    "finance.accounts",
}


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_statement() -> str:
    tables = sorted(
        t.fullname for t in Base.metadata.tables.values() if t.fullname not in SEEDED_TABLES
    )
    return "TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"


def clean(engine: Engine) -> None:
    """Empty every table but the seeded reference ones, and restart the business-ID sequences."""
    from db.base import BUSINESS_IDS

    with engine.begin() as conn:
        # The books refuse TRUNCATE (migration 0010); a test database is not books. The replica
        # role (superuser, this transaction only) skips that trigger as it skips all others.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(truncate_statement()))
        for bid in BUSINESS_IDS:
            conn.execute(text(f"ALTER SEQUENCE {bid.sequence} RESTART WITH {bid.start}"))
