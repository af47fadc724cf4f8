"""Benchmark of the SLA sweep (`sla.check_breaches`) and `sla.apply` at volume.

    python -m bench.bench_sla --scale 1 [--scale 10] [--keep] [--no-write-doc]

For each scale: a fresh database on the local PostgreSQL (`CMW_BENCH_ADMIN_URL`, default
postgresql://postgres@127.0.0.1:5432/postgres), migrated, loaded by
`workers.dev.seeds.bench.seed_bench`
(scale 10: about 1.5M tickets, 50k of them open, none with SLA deadlines), plus SLA policies:
one 24x7 policy per priority that escalates to another team and to `urgent`, and a
business-hours policy (New York office hours, with holidays) for accounting tickets, so the
Python side of the deadline fill runs too. Then:

1. the backlog: sweeps until every open ticket has deadlines and every past breach is
   recorded (a freshly loaded data set is years of history; timed, for information);
2. a sweep with nothing due (the steady state of every minute);
3. a sweep that finds 1,000 new breaches (1,000 open tickets given a resolution deadline just
   before `as_of`), with all their escalations, misses, events and messages;
4. the floor of 2 and 3: the bare conditional `UPDATE ... RETURNING` over the partial index;
5. `sla.apply` on single tickets (24x7 and business hours);
6. `EXPLAIN (ANALYZE, BUFFERS)` of every statement the sweep issues.

Every measured run is in a transaction that is rolled back, so each repetition sees the same
data. The figures and plans go to the "sla" section of docs/PERFORMANCE.md (one block per
scale, the other scales' blocks kept).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
import typer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bench import harness
from bench.harness import ADMIN_URL, ROOT, AdminUrl, Keep, Scales, WriteDoc, console, err
from bench.report import DOC, record_summary, write_section
from db.models.service import RESOLUTION_PENDING_SQL
from db.settings import get_settings
from db.urls import libpq_kwargs
from tasks.sla import queries, sweep
from tasks.sla.apply import apply_sla
from tasks.sla.sweep import check_breaches

DUE = 1000
REPEAT_EMPTY = 30
REPEAT_DUE = 10
REPEAT_APPLY = 200
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
HOLIDAYS = ("01-01", "05-25", "07-04", "09-07", "11-26", "12-25")

# The floor: the bare statement, without escalation, misses, events or messages.
FLOOR_MARK = text(
    f"UPDATE service.tickets SET resolution_breached_at = resolution_due_at"
    f" WHERE {RESOLUTION_PENDING_SQL} AND resolution_due_at < :as_of RETURNING id"
)
SLA_COLUMNS = ("sla_policy_id", "response_due_at", "resolution_due_at", "resolution_warn_due_at",
               "sla_paused_since")  # fmt: skip
# Open, unpaused tickets waiting for their resolution with a deadline still ahead.
PENDING_IDS = text(
    f"SELECT id FROM service.tickets WHERE {RESOLUTION_PENDING_SQL}"
    " AND resolution_due_at > :as_of ORDER BY id LIMIT :n"
)
OPEN_IDS = text(
    "SELECT id FROM service.tickets WHERE status NOT IN ('resolved', 'closed', 'cancelled')"
    " AND sla_paused_since IS NULL AND (ticket_type = 'ACCT') = :business ORDER BY id LIMIT :n"
)


def main(
    scale: Scales = [1],  # noqa: B006
    keep: Keep = False,
    write_doc: WriteDoc = True,
    admin_url: AdminUrl = ADMIN_URL,
    reuse: Annotated[
        bool, typer.Option(help="Reuse a database kept by --keep instead of loading again.")
    ] = False,
    load: Annotated[str, typer.Option(help="What else ran on the machine (for the doc).")] = "",
) -> None:
    for n in scale:
        block = run_scale(n, admin_url, keep=keep, reuse=reuse, load=load)
        print(block)
        if write_doc:
            write_scale_block(n, block)
            for job, kwargs in SUMMARY.pop(n, []):
                record_summary(job, n, **kwargs)
            console.print(f"Recorded scale {n} in {DOC.relative_to(ROOT)}")


# Each measured scale's rows for the summary table (bench.report.record_summary).
SUMMARY: dict[int, list[tuple[str, dict[str, Any]]]] = {}


# --------------------------------------------------------------------------------------------


def run_scale(scale: int, admin_url: str, *, keep: bool, reuse: bool, load: str) -> str:
    name = f"cmw_bench_sla_{scale}"
    with harness.bench_database(admin_url, name, keep=keep, create=not reuse) as url:
        if not reuse:
            started = time.perf_counter()
            counts = harness.seed(url, scale)
            err.print(
                f"seeded {sum(counts.values()):,} rows in {time.perf_counter() - started:.0f} s"
            )
            add_policies(url)
        engine = create_engine(url, connect_args={"application_name": "cmw-bench-sla"})
        try:
            return measure(engine, scale, load, fresh=not reuse)
        finally:
            engine.dispose()


def add_policies(url: str) -> None:
    """One escalating 24x7 policy per priority, and office hours for accounting tickets."""
    with psycopg.connect(**libpq_kwargs(url)) as conn:
        conn.execute(
            "INSERT INTO service.business_calendars (name, timezone, weekly_hours)"
            " VALUES ('New York office', 'America/New_York', %s)",
            (psycopg.types.json.Jsonb(OFFICE),),
        )
        year = dt.date.today().year
        for y in (year - 2, year - 1, year, year + 1):
            for md in HOLIDAYS:
                conn.execute(
                    "INSERT INTO service.business_calendar_holidays (calendar_id, holiday_date)"
                    " SELECT id, %s FROM service.business_calendars",
                    (dt.date.fromisoformat(f"{y}-{md}"),),
                )
        conn.execute(
            """
            INSERT INTO service.sla_policies (name, priority, response_minutes,
                resolution_minutes, escalate_to_team_id, escalate_priority)
            SELECT 'Escalating ' || k.code, k.code, k.response_minutes, k.resolution_minutes,
                   (SELECT id FROM team.teams WHERE code = 'ADM'), 'urgent'
            FROM ref.ticket_priority_key k
            """
        )
        conn.execute(
            """
            INSERT INTO service.sla_policies (name, ticket_type, priority, response_minutes,
                resolution_minutes, calendar_id, escalate_to_team_id, escalate_priority)
            SELECT 'Accounting office hours ' || k.code, 'ACCT', k.code, k.response_minutes,
                   k.resolution_minutes * 2, c.id, (SELECT id FROM team.teams WHERE code = 'FIN'),
                   'high'
            FROM ref.ticket_priority_key k, service.business_calendars c
            """
        )
        conn.execute("ANALYZE service.sla_policies")


# --------------------------------------------------------------------------------------------


def timed(engine: Engine, fn: Callable[[Session], Any], repeat: int) -> tuple:
    """Run fn(session) `repeat` times, each in a transaction rolled back afterwards; returns
    (milliseconds per run, the last result)."""
    times, result = [], None
    for _ in range(repeat):
        with Session(engine) as session:
            started = time.perf_counter()
            result = fn(session)
            times.append((time.perf_counter() - started) * 1000)
            session.rollback()
    return times, result


@contextmanager
def committed(engine: Engine, ids: list, change: str, params: dict) -> Iterator[None]:
    """Apply `change` to the tickets `ids` and commit it, then put their SLA columns back.

    Committed, not in the measured transaction: PostgreSQL re-checks every foreign key of a
    row updated twice in one transaction (RI_FKey_fk_upd_check_required), which would charge
    the sweep for eight checks per ticket that production never pays."""
    cols = ", ".join(SLA_COLUMNS)
    with engine.begin() as conn:
        saved = conn.execute(
            text(f"SELECT id, {cols} FROM service.tickets WHERE id = ANY(:ids)"), {"ids": ids}
        ).all()
        conn.execute(text(change), {"ids": ids, **params})
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                text(
                    f"UPDATE service.tickets SET {', '.join(f'{c} = :{c}' for c in SLA_COLUMNS)}"
                    " WHERE id = :id"
                ),
                [row._asdict() for row in saved],
            )


def summary(times: list[float]) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return f"{statistics.median(times):.1f} | {times[0]:.1f} | {p95:.1f}"


def ids_of(engine: Engine, query, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(query, params).scalars().all()


def measure(engine: Engine, scale: int, load: str, *, fresh: bool) -> str:
    with engine.connect() as conn:
        tickets, open_ = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE status NOT IN"
                " ('resolved', 'closed', 'cancelled')) FROM service.tickets"
            )
        ).one()
        version = conn.execute(text("SHOW server_version")).scalar_one().split()[0]
    as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
    load_before = os.getloadavg()[0]

    # 1. The backlog of a freshly loaded data set.
    backlog_sweeps, backlog_ms, backlog = 0, 0.0, dict.fromkeys(
        ("deadlines_set", "deadlines_set_business_hours", "response_breaches",
         "resolution_breaches", "warnings"), 0)  # fmt: skip
    while True:
        with Session(engine) as session:
            started = time.perf_counter()
            result = check_breaches(session, as_of=as_of)
            session.commit()
            backlog_ms += (time.perf_counter() - started) * 1000
        backlog_sweeps += 1
        for key in backlog:
            backlog[key] += result[key]
        if not (result["deadlines_set"] or result["response_breaches"] >= sweep.BREACH_BATCH
                or result["resolution_breaches"] >= sweep.BREACH_BATCH
                or result["warnings"] >= sweep.BREACH_BATCH):  # fmt: skip
            break
    # As autovacuum would after the backlog's mass update; figures then reflect steady state.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE service.tickets"))
    err.print(f"backlog: {backlog_sweeps} sweeps, {backlog_ms:.0f} ms, {backlog}")

    def run_sweep(session: Session) -> dict:
        return check_breaches(session, as_of=as_of)

    def floor(session: Session) -> int:
        return len(session.execute(FLOOR_MARK, {"as_of": as_of}).all())

    # 2. Nothing due, and its floor.
    empty_times, empty = timed(engine, run_sweep, REPEAT_EMPTY)
    assert not any(empty.values()), empty
    floor_empty_times, marked = timed(engine, floor, REPEAT_EMPTY)
    assert marked == 0

    # 3. 1,000 new breaches, and the floor: 1,000 open tickets whose resolution deadline was
    # a few seconds to a quarter of an hour before as_of.
    due_ids = ids_of(engine, PENDING_IDS, as_of=as_of, n=DUE)
    make_due = (
        "UPDATE service.tickets SET resolution_due_at = :as_of"
        " - (1 + (abs(hashtext(id::text)) % 900)) * interval '1 second' WHERE id = ANY(:ids)"
    )
    with committed(engine, due_ids, make_due, {"as_of": as_of}):
        due_times, due = timed(engine, run_sweep, REPEAT_DUE)
        floor_due_times, marked = timed(engine, floor, REPEAT_DUE)
        plans = explain_all(engine, as_of)
    assert due["resolution_breaches"] == DUE and due["messages"] == DUE, due
    assert marked == DUE, marked

    # 4. Tickets inserted without deadlines: 1,000 on 24x7 terms, 500 on business hours.
    forget = "UPDATE service.tickets SET response_due_at = NULL WHERE id = ANY(:ids)"
    fill_times = {}
    for label, business, n in (("24x7", False, sweep.FILL_BATCH // 5),
                               ("business hours", True, sweep.CALENDAR_BATCH)):  # fmt: skip
        ids = ids_of(engine, OPEN_IDS, business=business, n=n)
        with committed(engine, ids, forget, {}):
            fill_times[label], filled = timed(engine, run_sweep, REPEAT_DUE)
            if business:
                plans["fill: business-hours candidates (500 to fill)"] = explain(
                    engine, queries.CALENDAR_CANDIDATES, {"limit": sweep.CALENDAR_BATCH}
                )
            else:
                plans["fill: 24x7, set-based (1,000 to fill)"] = explain(
                    engine, queries.FILL_24X7, {"limit": sweep.FILL_BATCH, "as_of": as_of}
                )
        assert filled["deadlines_set"] == len(ids), filled
        fill_times[label] = (fill_times[label], len(ids))

    # 5. sla.apply on single open tickets (each rolled back).
    apply_times = {}
    for label, business in (("24x7", False), ("business hours", True)):
        ids = ids_of(engine, OPEN_IDS, business=business, n=REPEAT_APPLY)
        pick = iter(random.Random(1).sample(ids, len(ids)))
        apply_times[label] = timed(
            engine, lambda s, pick=pick: apply_sla(s, next(pick), as_of=as_of), len(ids)
        )[0]

    ten = scale == 10
    SUMMARY[scale] = [
        (f"sla.check_breaches, {DUE:,} breaches", {
            "rows": DUE, "wall_s": statistics.median(due_times) / 1000,
            "floor_s": statistics.median(floor_due_times) / 1000,
            "target": "< 250 ms" if ten else ""}),
        ("sla.check_breaches, nothing due", {
            "rows": 0, "wall_s": statistics.median(empty_times) / 1000,
            "floor_s": statistics.median(floor_empty_times) / 1000,
            "target": "< 20 ms" if ten else ""}),
    ]  # fmt: skip
    for name, plan in plans.items():
        if re.search(r"Seq Scan on tickets", plan):
            err.print(f"[red]sequential scan of service.tickets in {name}[/]")

    load_note = (
        f"; 1-minute load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at"
        f" the end ({os.cpu_count()} cores)" + (f"; {load}" if load else "")
    )
    rows = [
        ("sweep, nothing due", summary(empty_times), "20", REPEAT_EMPTY),
        ("floor: bare `UPDATE ... RETURNING`, nothing due", summary(floor_empty_times), "",
         REPEAT_EMPTY),
        (f"sweep, {DUE:,} new breaches (+ escalations, misses, events, messages)",
         summary(due_times), "250", REPEAT_DUE),
        (f"floor: bare `UPDATE ... RETURNING`, marks {DUE:,}", summary(floor_due_times), "",
         REPEAT_DUE),
        *((f"sweep, {n:,} tickets without deadlines ({label})", summary(times), "", REPEAT_DUE)
          for label, (times, n) in fill_times.items()),
        *((f"`sla.apply`, one ticket ({label})", summary(times), "", len(times))
          for label, times in apply_times.items()),
    ]  # fmt: skip
    table = "\n".join(
        ["| measured | median ms | min ms | p95 ms | target ms | runs |",
         "| --- | ---: | ---: | ---: | ---: | ---: |"]
        + [f"| {what} | {figures} | {target or '-'} | {runs} |"
           for what, figures, target, runs in rows]
    )  # fmt: skip
    plan_text = "\n\n".join(
        f"<details><summary>{name}</summary>\n\n```\n{plan}\n```\n</details>"
        for name, plan in plans.items()
    )
    if fresh:
        backlog_text = (
            f"{backlog_sweeps} sweep(s), {backlog_ms / 1000:.1f} s in all:"
            f" {backlog['deadlines_set']:,} open tickets given deadlines"
            f" ({backlog['deadlines_set_business_hours']:,} on business hours, at most"
            f" {sweep.CALENDAR_BATCH} of those a sweep), {backlog['response_breaches']:,}"
            f" response and {backlog['resolution_breaches']:,} resolution breaches,"
            f" {backlog['warnings']:,} warnings"
        )
    else:
        backlog_text = "not measured (database reused from an earlier run)"
    return f"""### Scale {scale}

- data: {tickets:,} tickets, {open_:,} open; {os.cpu_count()} cores, PostgreSQL {version}
- measured: {dt.date.today().isoformat()}{load_note}
- backlog of the freshly loaded data set (open tickets without deadlines, past breaches):
  {backlog_text}

{table}

{plan_text}
"""


# With per-node times, unlike the other benchmarks' plans: the sla section has always shown
# them, and its plans stay comparable from run to run.
PLAN_OPTIONS = "ANALYZE, BUFFERS, COSTS OFF"


def explain(engine: Engine, statement, params: dict) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement, in a transaction rolled back after."""
    return harness.explain(engine, statement, params, options=PLAN_OPTIONS)


def explain_all(engine: Engine, as_of: dt.datetime) -> dict[str, str]:
    """The statements of a sweep with nothing to fill and 1,000 resolution breaches due."""
    recipient = get_settings().cmw_ops_email
    params = {"as_of": as_of, "limit": sweep.BREACH_BATCH, "ops_recipient": recipient}
    return {
        "fill: business-hours candidates (nothing to fill)": explain(
            engine, queries.CALENDAR_CANDIDATES, {"limit": sweep.CALENDAR_BATCH}
        ),
        "fill: 24x7, set-based (nothing to fill)": explain(
            engine, queries.FILL_24X7, {"limit": sweep.FILL_BATCH, "as_of": as_of}
        ),
        "response breaches (none due)": explain(engine, queries.SWEEP_BREACH["response"], params),
        f"resolution breaches ({DUE:,} due)": explain(
            engine, queries.SWEEP_BREACH["resolution"], params
        ),
        "warnings (none due)": explain(engine, queries.SWEEP_WARNING, params),
        f"floor: bare UPDATE ... RETURNING ({DUE:,} due)": explain(
            engine, FLOOR_MARK, {"as_of": as_of}
        ),
    }


def write_scale_block(scale: int, block: str) -> None:
    """Replace this scale's block in the sla section, keep the others'."""
    start, end = "<!-- bench:sla:start -->", "<!-- bench:sla:end -->"
    current = DOC.read_text() if DOC.exists() else ""
    blocks: dict[int, str] = {}
    if start in current and end in current:
        body = current.split(start, 1)[1].split(end, 1)[0]
        for match in re.finditer(r"<!-- sla-scale:(\d+) -->\n(.*?)<!-- /sla-scale -->", body,
                                 re.S):  # fmt: skip
            blocks[int(match.group(1))] = match.group(2)
    blocks[scale] = block.strip() + "\n"
    body = "\n".join(
        f"<!-- sla-scale:{n} -->\n{blocks[n]}<!-- /sla-scale -->" for n in sorted(blocks)
    )
    write_section("sla", INTRO + "\n" + body)


INTRO = """## SLA sweep (`sla.check_breaches`)

`python -m bench.bench_sla --scale N` (issue 4). On a fresh `seed_bench` data set plus SLA
policies (an escalating 24x7 policy per priority; office hours in New York with holidays for
accounting tickets), after a first pass that works off the backlog of the fresh data set, a
sweep is timed as of one instant with nothing due, and with 1,000 open tickets given a
resolution deadline just before that instant (each breach: the ticket marked at its deadline
and escalated, a miss, an event, a message). Each run is its own transaction, rolled back, so
every repetition sees the same data. The floor is the bare conditional `UPDATE ... RETURNING`
over the partial index, without escalation, misses, events or messages. Targets (issue 4, at
scale 10): nothing due under 20 ms, 1,000 breaches under 250 ms; the plans must show index
scans of the partial indexes and no sequential scan of `service.tickets`.

Every statement starts from a partial index (`ix_tickets_no_deadlines`,
`ix_tickets_response_due_pending`, `ix_tickets_resolution_due_pending`,
`ix_tickets_resolution_warn_due_pending`) whose WHERE clause the query repeats word for word
(`db.models.service`'s `*_SQL` constants), walked in deadline order up to `as_of`: a sweep
reads only the tickets that are due.
"""


if __name__ == "__main__":
    typer.run(main)
