"""Cleaning the test database between tests (it is created and dropped with
workers.dev.databases, migrated with the real Alembic history)."""

from __future__ import annotations

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


def cleaned_tables() -> list[str]:
    return sorted(
        t.fullname for t in Base.metadata.tables.values() if t.fullname not in SEEDED_TABLES
    )


def _non_empty_statement() -> str:
    return " UNION ALL ".join(
        f"SELECT '{t}' WHERE EXISTS (SELECT FROM {t})" for t in cleaned_tables()
    )


# Every sequence a cleaned table's columns own (serial and identity), back to its start.
RESET_OWNED_SEQUENCES = """
SELECT setval(s.seqrelid, s.seqstart, false)
FROM pg_sequence s
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                AND d.deptype IN ('a', 'i')
WHERE d.refobjid = ANY(CAST(:tables AS regclass[]))
"""


def clean(engine: Engine) -> None:
    """Empty every table but the seeded reference ones, and restart their sequences and the
    business-ID sequences.

    Deletes from the tables that hold rows instead of one TRUNCATE of all 60-odd (with the same
    locks): a TRUNCATE makes new files for every table and index (half a second a test, about
    a third of the suite), while a test leaves rows in a handful of tables.
    """
    from db.base import BUSINESS_IDS

    with engine.begin() as conn:
        # The books refuse DELETE and TRUNCATE (migration 0010), and foreign keys would order
        # the deletes; a test database is not books. The replica role (superuser, this
        # transaction only) skips those triggers as it skips all others.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        # The locks TRUNCATE took: wait for a transaction a worker still has open on any of
        # these tables (a previous test's follow-up), so its rows go too instead of landing
        # on a half-deleted database.
        conn.execute(text(f"LOCK TABLE {', '.join(cleaned_tables())} IN ACCESS EXCLUSIVE MODE"))
        for table in conn.execute(text(_non_empty_statement())).scalars():
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text(RESET_OWNED_SEQUENCES), {"tables": cleaned_tables()})
        for bid in BUSINESS_IDS:
            conn.execute(text(f"ALTER SEQUENCE {bid.sequence} RESTART WITH {bid.start}"))
