"""Benchmark guest journeys on the benchmark data set (SPEC 7.6, issue 18).

    python -m bench.bench_journeys --scale 1 [--scale 10] [--no-write-doc] [--keep]

For each scale: create a database on the local PostgreSQL (`CMW_BENCH_ADMIN_URL`, default
postgresql://postgres@127.0.0.1:5432/postgres), migrate it, load `seed_bench`, add the demo's
journey (workers/dev/seeds/demo_journeys.py: eight templates and rules, with conditions and quiet
hours), then time, through the tasks (`Task.apply`, the path `cmw run` takes: validation, the
job_runs record, the singleton lock, commit):

- planning a month of new stays: `journeys.plan_stays` over every stay arriving next calendar
  month (never planned before), i.e. the set-based planner (tasks/journeys/planning.py) that
  `journeys.plan_stay` runs for one stay: messages, door codes and lock commands;
- planning the same month again (nothing to change);
- one release sweep with a full backlog: the month's first MAX_PER_SWEEP (20,000) scheduled
  messages made due at the same minute (quiet hours off for the measure), so the sweep claims,
  renders and queues as many as one sweep ever does;
- the release sweep with nothing due (as of now: the month lies ahead), median of 20 runs,
  the job alone and through the task;

with the EXPLAIN (ANALYZE, BUFFERS) of the planner's message statement, of the door-code
insert and of the empty sweep's claim, and write the "journeys" section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from typing import Any

import typer
from sqlalchemy import text

from bench import harness
from bench.harness import ADMIN_URL, AdminUrl, Keep, Scales, WriteDoc, console, err

# The targets at scale 10: planning a month and one sweep each under 10 s; the sweep
# with nothing due under 20 ms.
TARGETS = {"plan": 10.0, "sweep": 10.0, "idle": 0.020}
IDLE_REPEATS = 20


def add_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def add_journey(url: str) -> None:
    """The demo's templates and message rules (not its properties or ticket rules)."""
    from sqlalchemy import create_engine

    from workers.dev.seeds.demo_journeys import add_message_journey

    engine = create_engine(url)
    with engine.begin() as conn:
        add_message_journey(conn)
    engine.dispose()


def planner_params(ids: list, as_of: dt.datetime) -> dict[str, Any]:
    from db.session import session_scope
    from db.settings import get_settings
    from tasks.journeys.planning import plan_params

    with session_scope() as session:
        return plan_params(session, ids, as_of, get_settings())[0]


def idle_sweeps(as_of: dt.datetime) -> tuple[float, float]:
    """Median seconds of the sweep with nothing due: the job's function alone, and the task."""
    from db.session import session_scope
    from tasks.journeys.release import release_due

    alone = []
    for _ in range(IDLE_REPEATS):
        with session_scope() as session:
            started = time.perf_counter()
            result = release_due(session, as_of=as_of)
            alone.append(time.perf_counter() - started)
        assert result["released"] == 0, result
    through_task = [
        harness.timed_task("journeys.release_due", as_of=as_of.isoformat())[0]
        for _ in range(IDLE_REPEATS)
    ]
    return statistics.median(alone), statistics.median(through_task)


def run_scale(scale: int, admin_url: str, keep: bool) -> dict[str, Any]:
    with harness.bench_database(admin_url, f"cmw_bench_journeys_{scale}", keep=keep) as url:
        return measure(scale, url)


def measure(scale: int, url: str) -> dict[str, Any]:
    from db.session import get_engine
    from tasks.journeys import queries as q
    from tasks.journeys.release import MAX_PER_SWEEP

    engine = get_engine()
    counts = harness.seed(url, scale)
    add_journey(url)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    month = add_month(now.date())
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                text(
                    "SELECT id FROM reservations.reservations"
                    " WHERE check_in >= :a AND check_in < :b ORDER BY property_id, check_in"
                ),
                {"a": month, "b": add_month(month)},
            ).scalars()
        )
        conn.execute(text("ANALYZE"))
    params = planner_params(ids, now)
    err.print(f"EXPLAIN of the planner over {len(ids):,} stays (rolled back) ...")
    plan_messages = harness.explain(engine, q.PLAN_MESSAGES, params, settings=q.BULK_SETTINGS)
    plan_codes = harness.explain(engine, q.INSERT_CODES, params, settings=q.BULK_SETTINGS)

    payload = {
        "check_in_from": month.isoformat(),
        "check_in_to": add_month(month).isoformat(),
        "as_of": now.isoformat(),
    }
    err.print("Planning the month ...")
    plan_s, plan_result = harness.timed_task("journeys.plan_stays", **payload)
    err.print("Planning it again ...")
    replan_s, replan_result = harness.timed_task("journeys.plan_stays", **payload)
    with engine.connect() as conn:
        scheduled = conn.execute(
            text("SELECT count(*) FROM comms.messages WHERE status = 'scheduled'")
        ).scalar_one()
        conn.execute(text("ANALYZE comms.messages"))
        conn.execute(text("ANALYZE property.access_codes"))
        conn.commit()

    err.print("Sweeps with nothing due ...")
    idle_alone, idle_task = idle_sweeps(now)
    idle_plan = harness.explain(
        engine,
        q.CLAIM_DUE,
        {"as_of": now, "batch": 1000, "check_in_time": dt.time(16), "check_out_time": dt.time(11)},
    )
    # The backlog: the month's first MAX_PER_SWEEP messages due at the same minute (quiet
    # hours off for the measure, so the figure does not depend on the hour the bench runs).
    with engine.begin() as conn:
        conn.execute(text("UPDATE comms.message_rules SET quiet_start = NULL, quiet_end = NULL"))
        backlog = conn.execute(
            text(
                "UPDATE comms.messages SET scheduled_for = :t WHERE id IN ("
                " SELECT id FROM comms.messages WHERE status = 'scheduled'"
                " ORDER BY scheduled_for LIMIT :n)"
            ),
            {"t": now - dt.timedelta(minutes=1), "n": MAX_PER_SWEEP},
        ).rowcount
    backlog_at = now
    err.print(f"One sweep with a backlog of {backlog:,} ...")
    sweep_s, sweep_result = harness.timed_task("journeys.release_due", as_of=backlog_at.isoformat())

    figures = {
        "scale": scale,
        "properties": counts["property.properties"],
        "reservations": counts["reservations.reservations"],
        "month": month.strftime("%B %Y"),
        "stays": len(ids),
        "plan_s": plan_s,
        "plan": plan_result,
        "replan_s": replan_s,
        "replan": replan_result,
        "scheduled": scheduled,
        "backlog": backlog,
        "max_per_sweep": MAX_PER_SWEEP,
        "sweep_s": sweep_s,
        "sweep": sweep_result,
        "idle_alone": idle_alone,
        "idle_task": idle_task,
        "plan_messages": plan_messages,
        "plan_codes": plan_codes,
        "idle_plan": idle_plan,
        "machine": harness.machine(url),
        "date": dt.date.today().isoformat(),
    }
    console.print(
        f"scale {scale}: planned {len(ids):,} stays in {plan_s:.2f} s"
        f" ({plan_result['created']:,} messages, {plan_result['codes_created']:,} codes);"
        f" again {replan_s:.2f} s; sweep of {sweep_result['released']:,} in {sweep_s:.2f} s;"
        f" idle sweep {idle_alone * 1000:.1f} ms ({idle_task * 1000:.1f} ms through the task)"
    )
    return figures


def verdict(value: float, target: float) -> str:
    return "met" if value < target else "MISSED"


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = [
        "## Guest journeys and door codes",
        "",
        "`python -m bench.bench_journeys --scale 10` (`make bench-journeys SCALE=10`) on a freshly",
        "seeded database plus the demo's journey (eight message rules: confirmation, pre-arrival",
        "with the door code, door code by SMS, welcome, mid-stay (5+ nights), checkout reminder,",
        "review request (not Airbnb), owner note; quiet hours on most). Everything through the",
        "tasks (`Task.apply`: validation, job_runs, lock, commit included).",
        "",
        "- *plan a month*: `journeys.plan_stays` over every stay arriving next calendar month,",
        "  none planned before: one set-based statement for the messages, three for the codes",
        "  (revoke, move, draw) with their lock commands, whatever the number of stays; *again*:",
        "  the same month planned a second time (nothing changes);",
        "- *one sweep*: `journeys.release_due` with the month's first 20,000 scheduled messages",
        "  due at the same minute (the most one sweep takes; quiet hours off for the measure):",
        "  each claimed with its stay, guest, property and code, rendered in the Jinja2 sandbox",
        "  and queued;",
        "- *idle sweep*: nothing due (the month lies ahead), median of 20: the job's function",
        "  alone (one statement for the door codes and one claim, three empty partial-index",
        "  probes) and through the task (plus the job_runs record, the lock and the commit).",
        "",
        "Targets at scale 10 (about a million stays): plan a month under 10 s, one sweep under",
        "10 s, the idle sweep under 20 ms.",
        "",
        "| scale | stays planned | messages | codes (+ lock commands) | late skipped | plan a month"
        " | again | backlog | released | one sweep | idle sweep (job / task) | verdict | date"
        " | machine |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---"
        " | --- |",
    ]
    for r in runs:
        p, s = r["plan"], r["sweep"]
        if r["scale"] == 10:
            v = (
                f"plan {verdict(r['plan_s'], TARGETS['plan'])},"
                f" sweep {verdict(r['sweep_s'], TARGETS['sweep'])},"
                f" idle {verdict(r['idle_task'], TARGETS['idle'])}"
            )
        else:
            v = "-"
        lines.append(
            f"| {r['scale']} | {r['stays']:,} | {p['created'] + p['created_late']:,}"
            f" | {p['codes_created']:,} (+{p['lock_commands']:,}) | {p['skipped_late']:,}"
            f" | {r['plan_s']:.2f} s | {r['replan_s']:.2f} s | {r['backlog']:,}"
            f" | {s['released']:,} | {r['sweep_s']:.2f} s"
            f" | {r['idle_alone'] * 1000:.1f} / {r['idle_task'] * 1000:.1f} ms | {v}"
            f" | {r['date']} | {r['machine']} |"
        )
    largest = runs[-1]
    for title, key in (
        ("the planner's message statement (PLAN_MESSAGES), the month's stays", "plan_messages"),
        ("the door-code draw (INSERT_CODES), the month's stays", "plan_codes"),
        ("the sweep's claim with nothing due (CLAIM_DUE)", "idle_plan"),
    ):
        lines += [
            "",
            *harness.plans(
                f"Plan of {title}, scale {largest['scale']}", {f"EXPLAIN, {key}": largest[key]}
            ),
        ]
    return "\n".join(lines)


def main(
    scale: Scales = [1],  # noqa: B006
    write_doc: WriteDoc = True,
    keep: Keep = False,
    admin_url: AdminUrl = ADMIN_URL,
) -> None:
    runs = [run_scale(n, admin_url, keep) for n in scale]
    if write_doc:
        from bench.report import record_summary, write_section

        write_section("journeys", markdown(runs))
        for r in runs:
            at_target = r["scale"] == 10
            p = r["plan"]
            record_summary("journeys.plan_stays, a month of new stays", r["scale"],
                           rows=p["created"] + p["created_late"] + p["codes_created"]
                           + p["lock_commands"],
                           wall_s=r["plan_s"], floor_s=None,
                           target="< 10 s" if at_target else "")  # fmt: skip
            record_summary("journeys.release_due, one sweep", r["scale"],
                           rows=r["sweep"]["released"], wall_s=r["sweep_s"], floor_s=None,
                           target="< 10 s" if at_target else "")  # fmt: skip
            record_summary("journeys.release_due, nothing due", r["scale"], rows=0,
                           wall_s=r["idle_task"], floor_s=r["idle_alone"],
                           target="< 20 ms" if at_target else "")  # fmt: skip
        console.print("Recorded in docs/PERFORMANCE.md")


if __name__ == "__main__":
    typer.run(main)
