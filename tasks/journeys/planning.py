"""Planning: the scheduled messages and the door code of a set of stays (SPEC 7.6).

`plan_stays` is the one planner. `journeys.plan_stay` calls it with one stay, the bulk path
(`plan_arrivals`, the `journeys.plan_stays` task and the benchmark) with tens of thousands:
each step is one set-based statement over the whole array (tasks/journeys/queries.py), so a
month of new stays costs a handful of statements, not a plan per stay.

What a plan does, whatever the stay went through since the last one:

- messages: each live stay that meets a rule's conditions (channels, reservation types,
  minimum and maximum nights) has one message per rule, keyed `journey:<rule>:<stay>` so it is
  never sent twice, `scheduled` for the rule's instant moved out of its quiet hours. A stay
  booked after that instant, or planned more than LATE_AFTER after it, is late: the message
  goes at once (`send_now`, out of quiet hours) or never (`skip`). A moved stay moves its
  scheduled messages; a cancelled one (or one that no longer meets a rule) cancels them;
  queued, sent and failed messages are never touched;
- door codes: each live guest stay at an active property whose window has not ended has one
  code, valid from its check-in time less CMW_DOOR_CODE_BEFORE_MINUTES to its check-out time
  plus CMW_DOOR_CODE_AFTER_MINUTES, unique among the property's codes valid at the same time
  (the exclusion constraint of migration 0012); a moved or shortened stay moves its code's
  window, a cancelled one revokes it; every change queues one command for the lock service.

Idempotent by construction: the message keys and the one-live-code-per-stay index make a
second plan, or two at once, leave the same rows; moves and cancellations only write rows
still in the state they were read in.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from db.session import local_settings
from db.settings import Settings, get_settings
from tasks.journeys import queries as q
from tasks.recurring.rrules import MISSED_AFTER, InvalidRule, zone
from workers.base import NotFound

log = logging.getLogger("cmw.jobs.journeys")

# A message planned within this long after its instant is on time (a plan runs seconds to
# minutes after the change that triggered it); later than that it is late, as an occurrence
# seen more than an hour after it was due is missed in SPEC 6.1.
LATE_AFTER = MISSED_AFTER
# Rounds of drawing codes for stays whose draw collided: with six digits a collision is about
# one in a million per stay, so a second round is rare and a third practically never happens.
CODE_ROUNDS = 8
# A move whose fresh code collided is retried this many times (savepoint, new draw).
MOVE_ATTEMPTS = 5
# From this many stays on, a plan runs with queries.BULK_SETTINGS (hash joins).
BULK_FROM = 100
# Stays per statement in a bulk plan: enough to amortise each statement, few enough that one
# statement's working set stays in memory.
CHUNK = 50_000

SUMMARY_KEYS = (
    "stays",
    "created",
    "created_late",
    "skipped_late",
    "moved",
    "revived",
    "cancelled",
    "codes_created",
    "codes_moved",
    "codes_recoded",
    "codes_revoked",
    "codes_unassigned",
    "lock_commands",
    "invalid_zone_stays",
)


def plan_stay(session: Session, *, reservation_id: uuid.UUID, as_of: dt.datetime) -> dict:
    """Plan one stay's messages and door code (the work of `journeys.plan_stay`)."""
    if not session.execute(q.STAY_EXISTS, {"id": reservation_id}).scalar_one():
        raise NotFound(f"unknown reservation_id {reservation_id}")
    # Two plans of one stay at once (a redelivery racing its first run) would only repeat
    # each other's work; the keys already keep the rows right.
    session.execute(q.LOCK_STAY, {"key": f"cmw.journeys.stay:{reservation_id}"})
    return {"reservation_id": str(reservation_id), **plan_stays(session, [reservation_id], as_of)}


def plan_arrivals(
    session: Session,
    *,
    check_in_from: dt.date,
    check_in_to: dt.date,
    as_of: dt.datetime,
    property_id: uuid.UUID | None = None,
) -> dict:
    """Plan every stay arriving in [check_in_from, check_in_to): the bulk path (a new rule
    applied to the stays already booked, a backfill, the benchmark)."""
    ids = list(
        session.execute(
            q.ARRIVALS,
            {
                "check_in_from": check_in_from,
                "check_in_to": check_in_to,
                "property_id": property_id,
            },
        ).scalars()
    )
    totals = dict.fromkeys(SUMMARY_KEYS, 0)
    for start in range(0, len(ids), CHUNK):
        for key, value in plan_stays(session, ids[start : start + CHUNK], as_of).items():
            totals[key] += value
    return totals


def plan_stays(
    session: Session,
    reservation_ids: Sequence[uuid.UUID],
    as_of: dt.datetime,
    *,
    settings: Settings | None = None,
    code_digits: int | None = None,
    code_rounds: int = CODE_ROUNDS,
) -> dict[str, int]:
    """Bring the messages and door codes of these stays to where the rules want them."""
    settings = settings or get_settings()
    ids = list(reservation_ids)
    summary = dict.fromkeys(SUMMARY_KEYS, 0)
    summary["stays"] = len(ids)
    if not ids:
        return summary
    params, invalid = plan_params(session, ids, as_of, settings, code_digits)
    if invalid:
        # Planned as soon as the property's zone is fixed; the stays' rows are left as they are.
        summary["invalid_zone_stays"] = invalid
    bulk = len(ids) >= BULK_FROM
    with local_settings(session, **q.BULK_SETTINGS) if bulk else nullcontext():
        _plan(session, params, summary, code_rounds)
    return summary


def plan_params(
    session: Session,
    ids: list[uuid.UUID],
    as_of: dt.datetime,
    settings: Settings,
    code_digits: int | None = None,
) -> tuple[dict[str, Any], int]:
    """The bound parameters of the planner's statements for these stays, and how many of the
    stays sit at a property whose zone is not valid."""
    zones, invalid = _zones(session, ids)
    params = {
        "ids": ids,
        "zones": zones,
        "as_of": as_of,
        "grace": LATE_AFTER,
        "check_in_time": settings.cmw_check_in_time,
        "check_out_time": settings.cmw_check_out_time,
        "code_before": dt.timedelta(minutes=settings.cmw_door_code_before_minutes),
        "code_after": dt.timedelta(minutes=settings.cmw_door_code_after_minutes),
        "digits": code_digits or settings.cmw_door_code_digits,
        "lock_url": settings.cmw_lock_webhook_url,
    }
    return params, invalid


def _plan(
    session: Session, params: dict[str, Any], summary: dict[str, int], code_rounds: int
) -> None:
    row = session.execute(q.PLAN_MESSAGES, params).one()
    for key in ("created", "created_late", "skipped_late", "moved", "revived", "cancelled"):
        summary[key] = getattr(row, key)

    revoked = session.execute(q.REVOKE_CODES, params).one()
    summary["codes_revoked"] = revoked.revoked
    summary["lock_commands"] += revoked.commands
    moved = _move_codes(session, params)
    summary["codes_moved"], summary["codes_recoded"] = moved.moved, moved.recoded
    summary["lock_commands"] += moved.commands
    drawn = _first_draw(session, params)
    if drawn is not None:
        _count_draw(summary, drawn)
        return
    for _ in range(code_rounds):
        drawn = session.execute(q.INSERT_CODES, params).one()
        _count_draw(summary, drawn)
        if drawn.inserted == drawn.missing:
            return
    summary["codes_unassigned"] = drawn.missing - drawn.inserted
    log.warning(
        "%d stay(s) got no door code after %d draws: the property has too few free codes",
        summary["codes_unassigned"],
        code_rounds,
    )


def _count_draw(summary: dict[str, int], drawn: Any) -> None:
    summary["codes_created"] += drawn.inserted
    summary["lock_commands"] += drawn.commands


def _zones(session: Session, ids: list[uuid.UUID]) -> tuple[list[str], int]:
    """The valid zones of the properties, and how many of the stays sit in an invalid one."""
    valid: list[str] = []
    bad: list[str] = []
    for name in session.execute(q.PROPERTY_ZONES).scalars():
        try:
            zone(name)
            valid.append(name)
        except InvalidRule:
            bad.append(name)
    if not bad:
        return valid, 0
    stranded = session.execute(q.STAYS_IN_ZONES, {"ids": ids, "zones": bad}).scalar_one()
    if stranded:
        log.warning("%d stay(s) at properties with an unknown time zone %s were not planned",
                    stranded, bad)  # fmt: skip
    return valid, stranded


def _first_draw(session: Session, params: dict[str, Any]) -> Any:
    """DRAW_CODES in a savepoint: every stay's code in one statement with one exclusion check
    per row; None when a draw collided (or a concurrent plan gave a stay its code), and the
    caller's rounds of INSERT_CODES take over."""
    try:
        with session.begin_nested():
            return session.execute(q.DRAW_CODES, params).one()
    except sa_exc.IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) not in ("23P01", "23505"):
            raise
        return None


def _move_codes(session: Session, params: dict[str, Any]) -> Any:
    """MOVE_CODES in a savepoint, drawn again when a fresh code collided (or a concurrent
    plan took the same code meanwhile): the exclusion constraint refuses the statement."""
    for attempt in range(1, MOVE_ATTEMPTS + 1):
        try:
            with session.begin_nested():
                return session.execute(q.MOVE_CODES, params).one()
        except sa_exc.IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) != "23P01" or attempt == MOVE_ATTEMPTS:
                raise
            log.info("a moved door code collided; drawing again (attempt %d)", attempt)
    raise AssertionError("unreachable")
