"""SQL written once for every job that needs it (a job's own statements live in its package's
`queries.py`): pieces that several jobs splice into their statements.

- `ticket_events_cte`: the activity-log rows (`service.ticket_events`) of tickets a statement
  has just created or changed, as one CTE: every ticket a job creates gets its `created` event
  in the same statement (SPEC 6.1);
- `sql_list`: a tuple of constants as an SQL list, for `IN (...)` of fixed values.

Per-transaction planner settings are `db.session.local_settings`.
"""

from __future__ import annotations


def ticket_events_cte(
    name: str,
    source: str,
    data: str,
    *,
    ticket_id: str = "id",
    event_type: str = "'created'",
    occurred_at: str | None = "CAST(:as_of AS timestamptz)",
    where: str | None = None,
) -> str:
    """`name AS (INSERT INTO service.ticket_events ... SELECT ... FROM source ...)`.

    `source` is the FROM clause (a CTE of the tickets just written, joined as needed), `data`
    the jsonb expression, `ticket_id` / `event_type` expressions over it. Without
    `occurred_at` the column's default (the statement's time) applies. RETURNING ticket_id.
    """
    columns = "ticket_id, event_type, occurred_at, actor, data"
    values = f"{ticket_id}, {event_type}, {occurred_at}, 'system', {data}"
    if occurred_at is None:
        columns = "ticket_id, event_type, actor, data"
        values = f"{ticket_id}, {event_type}, 'system', {data}"
    return (
        f"{name} AS (\n"
        f"    INSERT INTO service.ticket_events ({columns})\n"
        f"    SELECT {values}\n"
        f"    FROM {source}\n"
        + (f"    WHERE {where}\n" if where else "")
        + "    RETURNING ticket_id\n)"
    )


def sql_list(values: tuple[str, ...]) -> str:
    """('a', 'b') as the SQL text `('a', 'b')`: for fixed values only (never input)."""
    for value in values:
        if "'" in value:
            raise ValueError(f"not a plain constant: {value!r}")
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"
