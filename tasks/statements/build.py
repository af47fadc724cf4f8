"""statements.generate: build or rebuild the draft owner statements of one month, set-based.

One draft per homeowner, property and calendar month, for every owner relationship in force
during the month (or only those of one homeowner / property). Every statement of the month is
computed at once by a handful of SQL statements over temporary tables — never one statement at a
time in Python — and the money math is exactly that of `tasks.statements.money` (the reference
implementation; an integration test holds the two equal on random data):

1. st_drafts: the month's drafts in scope, locked, so a concurrent finalize waits for us (or
   we for it);
2. st_keys: the statements to build (homeowner, property), their opening balance (the closing
   balance of the owner's last finalized statement for the property), whether the month is
   already final (then nothing is built unless `revise`), the version, reserve and minimum fee;
3. st_stays, st_seg: the live guest stays that can earn rent this month, their nights in
   segments (month x owners in force), their gross rent, channel commission, cleaning fee,
   other fees and taxes split across the segments by nights with the largest-remainder method;
4. st_share: each segment split among its owners by ownership_pct (largest remainder again),
   and the flat commission per stay on its first segment;
5. st_exp: the lines each statement should have — rent per stay (recognised by night or at
   check-out, per relationship; carrying the stay's shares of channel commission, fees and
   taxes that finalize draws from the clearing account), the owner's fees per stay, channel
   commission per channel, management commission per commission terms and per flat amount,
   owner-billable costs with markup (split among the owners in force on the cost date), manual
   adjustments, recurring owner charges, and the top-up to the monthly minimum (the SQL of the
   last two is in tasks.statements.queries);
6. st_lines: a draft's lines are st_exp; a revision's are st_exp minus what the final versions
   of the month already carry, only the non-zero differences;
7. st_heads: totals as sums of the lines, balance, reserve and payout (plus their lines);
8. delete the drafts that no longer have a reason to exist, update the others in place (a
   rebuilt draft keeps its id and number), insert the new ones (ON CONFLICT on the
   one-draft-per-month partial index), and bring their lines to what they should be, writing
   only the lines that changed.

What is billed where: a cost (or adjustment) dated in the month lands on that month's statement
unless the owner was already billed for it on another month's final statement; one dated in an
earlier month that is already closed (has a final statement) and was never billed is carried
into the next draft, so a late cost is never lost — or it goes into a revision of its own month
when `revise` is asked. Finalization (tasks.statements.finalize) refuses a draft that a cost
billed elsewhere meanwhile has made stale, so nothing is billed twice.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.session import local_settings
from tasks.statements import queries as q
from tasks.statements.money import add_months
from workers.base import NotFound


def generate_statements(
    session: Session,
    *,
    period_start: dt.date,
    as_of: dt.datetime,
    homeowner_id: uuid.UUID | None = None,
    property_id: uuid.UUID | None = None,
    revise: bool = False,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Build or rebuild the drafts of the month starting `period_start`; returns counts.

    Runs inside the caller's transaction (the task base commits it). `timings`, when given, is
    filled with the seconds each SQL step took (for the benchmark).
    """
    if period_start.day != 1:
        raise ValueError("period_start must be the first day of a month")
    params: dict[str, Any] = {
        "ps": period_start,
        "pe": add_months(period_start, 1),
        "homeowner_id": homeowner_id,
        "property_id": property_id,
        "revise": revise,
        "generated_at": as_of,
    }
    require_scope(session, homeowner_id=homeowner_id, property_id=property_id)
    # jit off: the planner cannot know how many rows generate_series yields per stay and
    # guesses 1000, so its cost estimates cross the JIT thresholds: compiling took ~2 s of a
    # 2.1 s step on the benchmark data while the work itself was milliseconds. work_mem and a
    # small statistics target: one batch job, a few large sorts and hashes, in memory, and
    # small samples when the temporary tables are analysed (their join keys are simple).
    # nestloop off: every step is a set operation over thousands of rows, and a planner misled
    # by statistics a bulk build has just made stale (owner_statements thought empty) once
    # chose a nested loop over 11,000 x 11,000 rows (68 s).
    with local_settings(
        session,
        jit="off",
        work_mem="64MB",
        default_statistics_target="10",
        enable_nestloop="off",
    ):
        return _build(session, params, period_start, timings)


def require_scope(
    session: Session, *, homeowner_id: uuid.UUID | None, property_id: uuid.UUID | None
) -> None:
    """An unknown homeowner or property the run is limited to is the payload's mistake."""
    for what, value, statement in (
        ("homeowner_id", homeowner_id, q.HOMEOWNER_EXISTS),
        ("property_id", property_id, q.PROPERTY_EXISTS),
    ):
        if value is not None and not session.execute(statement, {"id": value}).scalar():
            raise NotFound(f"unknown {what} {value}")


def _build(
    session: Session,
    params: dict[str, Any],
    period_start: dt.date,
    timings: dict[str, float] | None,
) -> dict[str, Any]:
    session.execute(
        text("DROP TABLE IF EXISTS " + ", ".join(f"pg_temp.{t}" for t in q.TEMP_TABLES))
    )

    def run(name: str, sql: str) -> Any:
        started = time.perf_counter()
        result = session.execute(text(sql), params)
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        return result

    rowcounts: dict[str, int] = {}
    for name, sql in q.STEPS:
        rowcounts[name] = run(name, sql).rowcount
        if name in q.ANALYZE_AFTER:
            # Temporary tables have no statistics until analysed; the next joins need them.
            run(f"analyze_{name}", f"ANALYZE {q.ANALYZE_AFTER[name]}")
    mismatches = run("ownership_check", q.OWNERSHIP_MISMATCHES).scalar_one()
    summary = run("summary", q.SUMMARY).mappings().one()
    return {
        "period": f"{period_start.year:04d}-{period_start.month:02d}",
        "drafts": summary["created"] + summary["rebuilt"],
        "created": summary["created"],
        "rebuilt": summary["rebuilt"],
        "revisions": summary["revisions"],
        "deleted": rowcounts["delete_stale"],
        "final_untouched": summary["final_untouched"],
        "lines": summary["lines"],
        "lines_written": rowcounts["insert_lines"],
        "lines_removed": rowcounts["delete_old_lines"],
        "ownership_mismatches": mismatches,
    }
