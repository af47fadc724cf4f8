"""Database URLs as the drivers want them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url


def libpq_kwargs(database_url: str, dbname: str | None = None) -> dict[str, Any]:
    """psycopg.connect() arguments for a SQLAlchemy URL (`postgresql+psycopg://...`), keeping
    query options such as `host=/socket/dir` (how the embedded server is reached); `dbname`
    names another database on the same server."""
    url = make_url(database_url)
    kwargs: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    kwargs.update(url.query)
    if dbname is not None:
        kwargs["dbname"] = dbname
    kwargs.setdefault("connect_timeout", 5)
    return kwargs
