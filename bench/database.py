"""Scratch databases for the benchmarks: each run gets a fresh one, created and migrated here.

A benchmark names its database (cmw_bench_<job>_<scale>); a leftover of an earlier `--keep`
under that name is dropped first, since the name belongs to that benchmark.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from rich.console import Console
from sqlalchemy.engine import make_url

err = Console(stderr=True)


def database_url(admin_url: str, name: str) -> str:
    """The SQLAlchemy URL of database `name` on the admin URL's server."""
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def create_database(admin_url: str, name: str) -> str:
    """A fresh database migrated to head; returns its SQLAlchemy URL."""
    from workers.migrate import upgrade_head

    drop_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(admin_url, name)
    err.print(f"Migrating [bold]{name}[/] ...")
    upgrade_head(url)
    return url


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
