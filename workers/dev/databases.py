"""Creating and dropping databases: for `cmw dev`, the benchmarks and the test suite alike."""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from db.urls import libpq_kwargs


def database_url(admin_url: str, name: str) -> str:
    """The SQLAlchemy URL of database `name` on the server of `admin_url` (a libpq or
    SQLAlchemy URL of any database there)."""
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def _admin(admin_url: str) -> psycopg.Connection:
    return psycopg.connect(**libpq_kwargs(database_url(admin_url, "postgres")), autocommit=True)


def create_database(admin_url: str, name: str, *, migrate: bool = False) -> str:
    """A new database `name` (dropped first if it exists), migrated to head when asked; its
    SQLAlchemy URL."""
    drop_database(admin_url, name)
    with _admin(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(admin_url, name)
    if migrate:
        from workers.migrate import upgrade_head

        upgrade_head(url)
    return url


def drop_database(admin_url: str, name: str) -> None:
    with _admin(admin_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def ensure_database(url: str) -> bool:
    """Create the URL's database when missing (connecting to `postgres` on the same server);
    True when it was created."""
    name = make_url(url).database
    if not name:
        raise ValueError("the database URL names no database")
    with psycopg.connect(**libpq_kwargs(url, dbname="postgres"), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            return True
    return False
