"""`cmw channels`: the health of every channel feed, for ops.

One line per mapping: its connection and property, the last successful sync, the last sync
that changed something, failures (in a row, and in the last 24 hours), the last error and when
it is synced next; the unhealthy ones first. Registered by workers/cli.py as `cmw channels`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.orm import Session

from tasks.channel.bookkeeping import HEALTH_AFTER

channels_cli = typer.Typer(
    help="Channel feeds: last success, last change and failures of every mapping.",
    invoke_without_command=True,
    no_args_is_help=False,
)

HEALTH_ROWS = text(
    """
    SELECT m.id, c.channel, c.name AS connection, c.status AS connection_status,
           p.property_code, m.is_active, m.import_url IS NOT NULL AS imports,
           m.last_synced_at, m.last_changed_at, m.consecutive_failures, m.failing_since,
           m.last_error, m.created_at,
           greatest(m.next_sync_at, c.next_sync_at) AS next_sync_at,
           coalesce(f.failures, 0) AS failures_24h
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    JOIN property.properties p ON p.id = m.property_id
    LEFT JOIN LATERAL (
        SELECT count(*) AS failures FROM channel.sync_log s
        WHERE s.mapping_id = m.id AND s.started_at >= :since AND s.status = 'error'
    ) f ON true
    ORDER BY c.name, p.property_code, m.id
    """
)
UNHEALTHY = ("failing", "stale")
ORDER = {"failing": 0, "stale": 1, "never synced": 2, "ok": 3}


@dataclass(frozen=True)
class MappingHealth:
    mapping_id: str
    channel: str
    connection: str
    property_code: str
    health: str
    last_success: dt.datetime | None
    last_change: dt.datetime | None
    consecutive_failures: int
    failures_24h: int
    failing_since: dt.datetime | None
    next_sync_at: dt.datetime | None
    last_error: str | None


def mapping_health(
    session: Session, *, as_of: dt.datetime, only_unhealthy: bool = False
) -> list[MappingHealth]:
    """Every mapping's health, the unhealthy first."""
    rows = []
    for r in session.execute(HEALTH_ROWS, {"since": as_of - HEALTH_AFTER}):
        if not r.is_active:
            health = "inactive"
        elif r.connection_status != "active":
            health = r.connection_status  # paused by hand, or error until fixed
        elif not r.imports:
            health = "export only"
        elif r.consecutive_failures > 0:
            health = "failing"
        elif (r.last_synced_at or r.created_at) < as_of - HEALTH_AFTER:
            health = "stale"
        elif r.last_synced_at is None:
            health = "never synced"
        else:
            health = "ok"
        if only_unhealthy and health not in UNHEALTHY:
            continue
        rows.append(
            MappingHealth(
                mapping_id=str(r.id),
                channel=r.channel,
                connection=r.connection,
                property_code=r.property_code,
                health=health,
                last_success=r.last_synced_at,
                last_change=r.last_changed_at,
                consecutive_failures=r.consecutive_failures,
                failures_24h=r.failures_24h,
                failing_since=r.failing_since,
                next_sync_at=r.next_sync_at,
                last_error=r.last_error,
            )
        )
    rows.sort(key=lambda h: ORDER.get(h.health, 4))
    return rows


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


@channels_cli.callback()
def channels(
    unhealthy: Annotated[
        bool, typer.Option("--unhealthy", help="Only failing or stale mappings.")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many lines.")] = 200,
) -> None:
    """Every mapping's last success, last change and failures (times in UTC)."""
    from db.session import session_scope

    with session_scope() as session:
        rows = mapping_health(session, as_of=dt.datetime.now(dt.UTC), only_unhealthy=unhealthy)
    table = Table(
        "health",
        "connection",
        "property",
        "last success",
        "last change",
        "failures (in a row / 24 h)",
        "failing since",
        "next sync",
        "last error",
        "mapping",
    )
    colours = {"failing": "red", "stale": "red", "never synced": "yellow", "ok": "green"}
    for h in rows[:limit]:
        table.add_row(
            f"[{colours.get(h.health, 'white')}]{h.health}[/]",
            f"{h.connection} ({h.channel})",
            h.property_code,
            _when(h.last_success),
            _when(h.last_change),
            f"{h.consecutive_failures} / {h.failures_24h}",
            _when(h.failing_since),
            _when(h.next_sync_at),
            (h.last_error or "")[:60],
            h.mapping_id,
        )
    console = Console()  # the terminal's width (COLUMNS when not a terminal)
    console.print(table)
    bad = sum(1 for h in rows if h.health in UNHEALTHY)
    console.print(f"{len(rows)} mappings, {bad} unhealthy" + (" (shown first)" if bad else ""))
