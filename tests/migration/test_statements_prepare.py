"""Every named SQL statement of the jobs still parses and plans against the migrated schema.

A statement is checked today only by the test that happens to run it; a renamed column would
otherwise break a rarely run branch in production first. Each module-level `text()` constant
under tasks/ (the jobs' queries.py modules, and the task base's) is planned with EXPLAIN, every
parameter bound to NULL, in a transaction that is rolled back: the parser, the catalog lookups
and the planner all run, nothing executes. Utility statements (SET, REFRESH) cannot be
EXPLAINed; they are run, and rolled back.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from sqlalchemy import text
from sqlalchemy.sql.elements import TextClause

import tasks
import workers.base

UTILITY = ("SET ", "REFRESH ", "SELECT set_config")


def named_statements() -> list[tuple[str, TextClause]]:
    found: dict[str, TextClause] = {}
    modules = [workers.base] + [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(tasks.__path__, prefix="tasks.")
    ]
    for module in modules:
        for name, value in vars(module).items():
            if isinstance(value, TextClause) and name.isupper():
                found.setdefault(f"{value.__module__ if False else module.__name__}.{name}", value)
    return sorted(found.items())


STATEMENTS = named_statements()


def test_the_jobs_statements_were_found():
    modules = {name.rsplit(".", 1)[0] for name, _ in STATEMENTS}
    assert len(STATEMENTS) > 100
    assert {"tasks.channel.queries", "tasks.ops.queries", "tasks.journeys.queries"} <= modules


@pytest.mark.parametrize(("name", "statement"), STATEMENTS, ids=[n for n, _ in STATEMENTS])
def test_a_named_statement_plans_against_the_schema(engine, name, statement):
    params = {key: None for key in statement._bindparams}
    sql = statement.text.strip()
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            if sql.upper().startswith(UTILITY) or sql.startswith(UTILITY):
                conn.execute(statement, params)
            else:
                conn.execute(text("EXPLAIN " + sql), params)
        finally:
            trans.rollback()
