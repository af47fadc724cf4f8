"""Every named SQL statement of the jobs still parses and plans against the migrated schema.

A statement is checked today only by the test that happens to run it; a renamed column would
otherwise break a rarely run branch in production first. Each module-level `text()` constant
under tasks/ (the jobs' queries.py modules, and the task base's) is planned with EXPLAIN, every
parameter bound to NULL, in a transaction that is rolled back: the parser, the catalog lookups
and the planner all run, nothing executes. Utility statements (SET, REFRESH, ANALYZE, DROP)
cannot be EXPLAINed; they are run, and rolled back. The temp tables a job builds in the same
transaction (its module's `CREATE TEMP TABLE` constants) are built first, empty.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from sqlalchemy import text
from sqlalchemy.sql.elements import TextClause

import tasks
import workers.base

UTILITY = ("SET ", "REFRESH ", "ANALYZE ", "DROP ", "SELECT set_config")
CREATES_TEMP = "CREATE TEMP TABLE"


def job_modules() -> list:
    modules = [workers.base] + [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(tasks.__path__, prefix="tasks.")
    ]
    # A statement is named after the module that defines it: queries modules first, so one
    # imported elsewhere keeps its home (and its place among its module's temp tables).
    return sorted(modules, key=lambda m: not m.__name__.endswith(".queries"))


def named_statements() -> list[tuple[str, TextClause, list[TextClause]]]:
    """(name, statement, the temp tables of its module it needs built first).

    A temp table's own statement needs those defined above it; any other statement, all."""
    found: dict[int, tuple[str, TextClause, list[TextClause]]] = {}
    for module in job_modules():
        named = [
            (name, value)
            for name, value in vars(module).items()
            if isinstance(value, TextClause) and name.isupper() and id(value) not in found
        ]
        creates = [value for _, value in named if value.text.strip().startswith(CREATES_TEMP)]
        for name, value in named:
            above = [c for c in creates if c is not value]
            if len(above) < len(creates):  # itself a temp table: only those defined above it
                above = creates[: [id(c) for c in creates].index(id(value))]
            found[id(value)] = (f"{module.__name__}.{name}", value, above)
    return sorted(found.values(), key=lambda found: found[0])


STATEMENTS = named_statements()


def test_the_jobs_statements_were_found():
    modules = {name.rsplit(".", 1)[0] for name, _, _ in STATEMENTS}
    assert len(STATEMENTS) > 100
    assert {"tasks.channel.queries", "tasks.ops.queries", "tasks.journeys.queries"} <= modules


@pytest.mark.parametrize(
    ("name", "statement", "temp_tables"), STATEMENTS, ids=[n for n, _, _ in STATEMENTS]
)
def test_a_named_statement_plans_against_the_schema(engine, name, statement, temp_tables):
    def null_params(clause: TextClause) -> dict[str, None]:
        return {key: None for key in clause._bindparams}

    sql = statement.text.strip()
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            # The temp tables a batch builds before this statement, built empty.
            for create in temp_tables:
                conn.execute(create, null_params(create))
            if sql.startswith(UTILITY):
                conn.execute(statement, null_params(statement))
            else:
                conn.execute(text("EXPLAIN " + sql), null_params(statement))
        finally:
            trans.rollback()
