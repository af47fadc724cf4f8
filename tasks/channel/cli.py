"""`cmw channels`: the health of every channel feed, for ops.

One line per mapping: its connection and property, the last successful sync, the last sync
that changed something, failures (in a row, and in the last 24 hours), the last error and when
it is synced next; the unhealthy ones first. Registered by workers/cli.py as `cmw channels`.

`cmw channels` with no subcommand lists (the same as `cmw channels list`); actions on one
mapping are subcommands of the same group: `cmw channels release MAPPING_ID` applies the
cancellations held for a feed that suddenly emptied (SPEC 7.1), through the task
`channel.release_held` run in this process by the task base, as `cmw run` does. Listings
print through workers.output.emit: `--json` gives one JSON object per line, a pipe gets
tab-separated lines, a terminal a table that never cuts an id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Annotated

import typer
from sqlalchemy import text
from sqlalchemy.orm import Session

from tasks.channel.bookkeeping import HEALTH_AFTER
from workers.output import Column, emit

channels_cli = typer.Typer(
    help="Channel feeds: last success, last change and failures of every mapping.",
    # `cmw channels` alone lists; subcommands act on one mapping.
    invoke_without_command=True,
    no_args_is_help=False,
)

HEALTH_ROWS = text(
    """
    SELECT m.id, c.channel, c.name AS connection, c.status AS connection_status,
           p.property_code, m.is_active, m.import_url IS NOT NULL AS imports,
           m.last_synced_at, m.last_changed_at, m.consecutive_failures, m.failing_since,
           m.last_error, m.created_at, m.hold_started_at,
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
# "held": cancellations held for a feed that suddenly emptied, waiting for the events to come
# back, the hold to run out, or `cmw channels release`.
UNHEALTHY = ("failing", "stale", "held")
ORDER = {"failing": 0, "held": 1, "stale": 2, "never synced": 3, "ok": 4}


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
        elif r.hold_started_at is not None:
            health = "held"
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
    rows.sort(key=lambda h: ORDER.get(h.health, 5))
    return rows


HEALTH_STYLES = {
    "failing": "red",
    "stale": "red",
    "held": "yellow",
    "never synced": "yellow",
    "ok": "green",
}
COLUMNS = [
    Column("health", "health", styles=HEALTH_STYLES),
    Column("connection", "connection", whole=False, max_chars=40),
    Column("channel", "channel", optional=True),
    Column("property_code", "property"),
    Column("last_success", "last success", text=lambda v: _when(v)),
    Column("last_change", "last change", text=lambda v: _when(v), optional=True),
    Column("consecutive_failures", "fails"),
    Column("failures_24h", "fails 24 h", optional=True),
    Column("failing_since", "failing since", text=lambda v: _when(v), optional=True),
    Column("next_sync_at", "next sync", text=lambda v: _when(v), optional=True),
    Column("mapping_id", "mapping"),
    Column("last_error", "last error", whole=False, max_chars=60),
]


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


Unhealthy = Annotated[
    bool, typer.Option("--unhealthy", help="Only failing, stale or held mappings.")
]
Limit = Annotated[int, typer.Option(min=1, help="At most this many lines.")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per line, values whole.")]


def list_mappings(*, unhealthy: bool = False, limit: int = 200, as_json: bool = False) -> None:
    """Every mapping's last success, last change and failures (times in UTC)."""
    from db.session import session_scope

    with session_scope() as session:
        rows = mapping_health(session, as_of=dt.datetime.now(dt.UTC), only_unhealthy=unhealthy)
    bad = sum(1 for h in rows if h.health in UNHEALTHY)
    note = f"{len(rows)} mappings, {bad} unhealthy" + (" (shown first)" if bad else "")
    emit([asdict(h) for h in rows[:limit]], COLUMNS, as_json=as_json, note=note)


@channels_cli.callback()
def channels(
    ctx: typer.Context,
    unhealthy: Unhealthy = False,
    limit: Limit = 200,
    json_: AsJson = False,
) -> None:
    """Every mapping's last success, last change and failures (times in UTC)."""
    if ctx.invoked_subcommand is None:
        list_mappings(unhealthy=unhealthy, limit=limit, as_json=json_)


@channels_cli.command("list")
def list_command(unhealthy: Unhealthy = False, limit: Limit = 200, json_: AsJson = False) -> None:
    """Every mapping's last success, last change and failures (times in UTC)."""
    list_mappings(unhealthy=unhealthy, limit=limit, as_json=json_)


@channels_cli.command("release")
def release_command(
    mapping_id: Annotated[str, typer.Argument(help="The mapping whose cancellations are held.")],
    json_: AsJson = False,
) -> None:
    """Apply the cancellations held for MAPPING_ID now: its bookings really are gone."""
    import json

    from workers.cli import run_task_here

    result = run_task_here("channel.release_held", {"mapping_id": mapping_id})
    if json_:
        print(json.dumps(result, default=str))
        return
    print(
        f"mapping {result['mapping_id']}: {result['cancelled']} held bookings cancelled"
        f" ({result['reservations_cancelled']} reservations"
        + (
            f", {result['kept_checked_in']} already checked in or out: left for a person"
            if result["kept_checked_in"]
            else ""
        )
        + ")"
    )
