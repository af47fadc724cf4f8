"""Recurrence in a property's own time zone: the pure part of the recurring rules (SPEC 6.1).

Everything here is plain Python over naive local wall-clock times and IANA zones, no database,
so the property-based tests can hold it against python-dateutil directly.

How a local wall-clock time becomes an instant (`local_to_utc`): zoneinfo with `fold=0`.
PEP 495 defines fold=0 as "the offset in force before the transition", which gives exactly
the rule SPEC 6.1 asks for:

- a time in a spring-forward gap (02:30 on the night New York skips 02:00-03:00) is read with
  the winter offset, i.e. it lands at 03:30 summer time: moved forward by the gap;
- a time that happens twice in the autumn (01:30 on the night New York repeats 01:00-02:00)
  is read with the summer offset: the first of the two.

PostgreSQL's `AT TIME ZONE` would take the *second* of an ambiguous pair, which is why the
conversion happens here and the database only receives instants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

UTC = dt.UTC

# SPEC 6.1: an occurrence first seen more than this long after it was due is "missed".
MISSED_AFTER = dt.timedelta(minutes=60)
# How far back `missed_policy='catch_up'` reaches: occurrences due longer ago than this are
# neither created nor recorded. A week covers any realistic outage (and a rule created with a
# dtstart in the recent past) without flooding a team with months of back-dated tickets when a
# rule is created with an old dtstart or a historical stay is imported.
CATCH_UP_LOOKBACK = dt.timedelta(days=7)
# Local window bounds are widened by this much before asking dateutil, then the instants are
# filtered exactly in UTC: no zone shifts its clock by a whole day, so nothing is lost.
_LOCAL_MARGIN = dt.timedelta(days=1)


class InvalidRule(ValueError):
    """A rule that cannot be expanded (bad RRULE text, or an unknown time zone)."""


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence in one zone: the rule's wall-clock time, the instant, the local date."""

    local: dt.datetime  # naive, as the RRULE produced it (may not exist on the wall clock)
    at: dt.datetime  # aware UTC: the ticket's due_at
    local_date: dt.date  # the date on the property's wall clock at `at`


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; InvalidRule when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRule(f"unknown time zone {name!r}") from exc


def local_to_utc(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The instant of naive wall-clock time `local` in `tz` (gap: forward; ambiguous: first)."""
    if local.tzinfo is not None:
        raise ValueError("local_to_utc takes a naive wall-clock time")
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def local_date_of(at: dt.datetime, tz: ZoneInfo) -> dt.date:
    return at.astimezone(tz).date()


def parse_rrule(text: str, dtstart: dt.datetime) -> rrule:
    """The RRULE `text` ("FREQ=WEEKLY;BYDAY=MO", with or without "RRULE:") from naive dtstart.

    Both bounds are floating wall-clock times (RFC 5545 "local time"), so an UNTIL in UTC
    ("...Z") is refused, as RFC 5545 requires for a floating DTSTART.
    """
    if dtstart.tzinfo is not None:
        raise InvalidRule("dtstart must be a wall-clock time without a zone")
    body = (text or "").strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    # One rule line only: DTSTART comes from its own column, and a set (RDATE, EXDATE, several
    # RRULEs) is not part of the contract.
    if not body or any(c in body for c in "\r\n") or ":" in body:
        raise InvalidRule(f"not a single RRULE: {text!r}")
    try:
        parsed = rrulestr(body, dtstart=dtstart)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRule(f"invalid RRULE {text!r}: {exc}") from exc
    if not isinstance(parsed, rrule):  # pragma: no cover - rrulestr gives a set only if asked
        raise InvalidRule(f"not a single RRULE: {text!r}")
    return parsed


def expand(
    rule: rrule,
    tz: ZoneInfo,
    start: dt.datetime,
    end: dt.datetime,
    *,
    until: dt.datetime | None = None,
) -> Iterator[Occurrence]:
    """The occurrences of `rule` in zone `tz` whose instant lies in [start, end] (aware).

    The RRULE is expanded on the naive wall clock, as python-dateutil does from the naive
    dtstart, so a 09:00 rule is 09:00 local on both sides of a daylight-saving change; each
    wall-clock time then becomes an instant with `local_to_utc`. `until` (naive, inclusive) is
    the rule's own column, applied on top of any UNTIL or COUNT inside the RRULE.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("expand takes an aware window")
    lo = start.astimezone(tz).replace(tzinfo=None) - _LOCAL_MARGIN
    hi = end.astimezone(tz).replace(tzinfo=None) + _LOCAL_MARGIN
    if until is not None:
        hi = min(hi, until)
    if hi < lo:
        return
    for local in rule.between(lo, hi, inc=True):
        at = local_to_utc(local, tz)
        if start <= at <= end:
            yield Occurrence(local, at, local_date_of(at, tz))


def reservation_due(
    anchor_date: dt.date,
    local_time: dt.time | None,
    offset_minutes: int,
    tz: ZoneInfo,
) -> Occurrence:
    """When a reservation rule's ticket is due (SPEC 6.1).

    The anchor's local date at `local_time` (midnight when None), plus `offset_minutes` of
    wall-clock time (so "1 day before check-in at 15:00" is 15:00 local the day before, even
    across a daylight-saving change), then made an instant like any occurrence.
    """
    local = dt.datetime.combine(anchor_date, local_time or dt.time(0)) + dt.timedelta(
        minutes=offset_minutes
    )
    at = local_to_utc(local.replace(tzinfo=None), tz)
    return Occurrence(local, at, local_date_of(at, tz))
