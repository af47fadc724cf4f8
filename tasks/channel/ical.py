"""Reading channel iCal feeds (RFC 5545) into bookings, channel by channel.

What each channel puts in its feed:

- **Airbnb** (`PRODID:-//Airbnb Inc//Hosting Calendar 0.8.8//EN`): `SUMMARY:Reserved` for a
  stay, `Airbnb (Not available)` for a block; a stay's DESCRIPTION carries the reservation URL,
  whose last path segment is the confirmation code (`.../details/HMABCDEF12`), and the last
  four digits of the guest's phone.
- **Vrbo** (`PRODID:-//HomeAway.com, Inc.//EN`): `Reserved - <guest first name>` for a stay,
  `Blocked` for a block.
- **Booking.com**: every event is `CLOSED - Not available`; a stay cannot be told from a
  block, so it is a block unless the connection's settings say `"booking_closed_as":
  "reservation"`.
- **generic** feeds (other PMSs): a block when the summary says so (`Not available`,
  `Blocked`, `Closed`, `Unavailable`, `Owner`), else a stay.

The channel is told from PRODID, falling back to the connection's channel. Date-only
`DTSTART`/`DTEND` are the check-in and check-out dates (DTEND is exclusive, RFC 5545 3.6.1); a
connection whose channel writes the last night instead says `"dtend_inclusive": true`. A
date-time is read as a date in the property's time zone. Events of our own export coming back
(UIDs ending in EXPORT_UID_SUFFIX) and events with `STATUS:CANCELLED` are not in the feed as
far as the import is concerned; events that ended before the property's today are ignored but
still count as present, so a stay shortened into the past is never taken for a cancellation.

Hostile feeds are bounded (SPEC 7.1): a body with more than MAX_EVENTS VEVENTs is refused
(FeedParseError, a sync error); an event whose stay is longer than MAX_NIGHTS nights, or that
starts more than HORIZON_YEARS after the property's today, is rejected: counted, never written,
and -- like a past event -- still present, so rejecting it cancels nothing.

Parsing is the `icalendar` package's. Because its content-line tokenizer is written
character by character in Python (about 70 ms for a 100-event feed, 70 s of CPU for a first
sync of 1,000 feeds), plain feeds -- what the channels send: date values, unquoted parameters,
no time zones or recurrences -- take a fast path: content lines split by one regular
expression, values decoded by icalendar's own decoders (`vDDDTypes`, `unescape_backslash`).
Anything else (a TZID, a VTIMEZONE, an RRULE, a quoted parameter, a malformed line) goes
through `icalendar.Calendar.from_ical`. The tests check that both paths agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

import icalendar
from icalendar.parser import unescape_backslash

# The UIDs of our own export (tasks.channel.export): `<reservation id>@cmw.export`.
EXPORT_UID_SUFFIX = "@cmw.export"

Flavor = Literal["airbnb", "vrbo", "booking_com", "generic"]
Kind = Literal["reservation", "block"]
# reservations.source of what each feed flavor imports.
SOURCES: dict[str, str] = {
    "airbnb": "airbnb",
    "vrbo": "vrbo",
    "booking_com": "booking_com",
    "generic": "ical",
}
SUMMARY_MAX = 500
UID_MAX = 255
DESCRIPTION_MAX = 4000
GENERIC_BLOCK_WORDS = ("not available", "unavailable", "blocked", "closed", "owner")
# Bounds for hostile feeds (SPEC 7.1).
MAX_EVENTS = 5000
MAX_NIGHTS = 365
HORIZON_YEARS = 3
VEVENT_BEGIN = re.compile(rb"^BEGIN:VEVENT[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
# Lines that change on every request of an unchanged calendar (Airbnb stamps each response).
VOLATILE_LINE = re.compile(rb"^DTSTAMP[;:][^\r\n]*(?:\r?\n)?", re.IGNORECASE | re.MULTILINE)

AIRBNB_URL = re.compile(r"https?://\S+", re.IGNORECASE)
AIRBNB_PHONE = re.compile(r"Last 4 Digits\)?\s*:\s*(\d{4})", re.IGNORECASE)
VRBO_RESERVED = re.compile(r"^\s*reserved\s*(?:-\s*(?P<name>.+?))?\s*$", re.IGNORECASE)

# Content lines: unfolding is RFC 5545 3.1 (CRLF or LF followed by one space or tab).
UNFOLD = re.compile(r"(?:\r\n|\n)[ \t]")
CONTENT_LINE = re.compile(r"^(?P<name>[A-Za-z0-9-]+)(?P<params>(?:;[^:\"]*)?):(?P<value>.*)$")
DATE_VALUE = re.compile(r"^\d{8}$")
DATETIME_VALUE = re.compile(r"^\d{8}T\d{6}Z?$")
# Properties whose presence sends a feed to the full parser: time zones and recurrences.
FULL_PARSER_PROPERTIES = frozenset({"RRULE", "RDATE", "EXDATE", "RECURRENCE-ID", "TZID"})
EVENT_PROPERTIES = ("UID", "DTSTART", "DTEND", "DURATION", "SUMMARY", "DESCRIPTION", "STATUS")


class FeedParseError(ValueError):
    """The body is not an iCalendar calendar we can read."""


@dataclass(frozen=True)
class RawEvent:
    """One VEVENT's properties, decoded (dates as date or datetime), before any channel rule."""

    uid: str | None
    dtstart: dt.date | None
    dtend: dt.date | None
    duration: dt.timedelta | None
    summary: str | None
    description: str | None
    status: str | None


@dataclass(frozen=True)
class RawCalendar:
    prodid: str | None
    events: list[RawEvent]
    parser: Literal["fast", "icalendar"]


@dataclass(frozen=True)
class FeedEvent:
    """One booking of the feed: a stay or a block, with check-in and (exclusive) check-out."""

    uid: str
    kind: Kind
    start: dt.date
    end: dt.date
    summary: str | None
    description: str | None
    confirmation_code: str | None = None
    guest_name: str | None = None
    phone_last4: str | None = None

    @property
    def payload_hash(self) -> str:
        """What, when it changes, makes the booking (and its reservation) be rewritten."""
        parts = (
            self.kind,
            self.start.isoformat(),
            self.end.isoformat(),
            self.summary or "",
            self.description or "",
            self.confirmation_code or "",
        )
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass
class ParsedFeed:
    flavor: Flavor
    parser: str
    # Current and future events, one per UID: what the import writes.
    events: list[FeedEvent] = field(default_factory=list)
    # Every UID the feed still lists (past events included): a booking not among them is gone.
    present_uids: set[str] = field(default_factory=set)
    events_seen: int = 0
    ignored_past: int = 0
    ignored_own_export: int = 0
    ignored_cancelled: int = 0
    ignored_invalid: int = 0
    # Stays too long or too far ahead (MAX_NIGHTS, HORIZON_YEARS): present, never written.
    rejected: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class FeedSettings:
    """The connection's settings that shape parsing (connection.settings jsonb)."""

    booking_closed_as: Kind = "block"
    dtend_inclusive: bool = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> FeedSettings:
        settings = settings or {}
        closed_as = settings.get("booking_closed_as", "block")
        return cls(
            booking_closed_as="reservation" if closed_as == "reservation" else "block",
            dtend_inclusive=settings.get("dtend_inclusive") is True,
        )

    def fingerprint(self) -> str:
        return f"closed_as={self.booking_closed_as};dtend_inclusive={self.dtend_inclusive}"


# -- reading the calendar --------------------------------------------------------------------


def read_calendar(body: bytes) -> RawCalendar:
    """The feed's PRODID and VEVENTs, by the fast path when it applies, else by icalendar."""
    fast = _read_fast(body)
    if fast is not None:
        return fast
    return _read_icalendar(body)


def _read_icalendar(body: bytes) -> RawCalendar:
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except Exception as exc:  # untrusted input: whatever the parser raises
        raise FeedParseError(f"not an iCalendar feed: {_short(exc)}") from exc
    if getattr(calendar, "name", None) != "VCALENDAR":
        raise FeedParseError("not an iCalendar feed: no VCALENDAR")
    events = []
    for component in calendar.walk("VEVENT"):
        events.append(
            RawEvent(
                uid=_text(component.get("UID")),
                dtstart=_decoded(component, "DTSTART"),
                dtend=_decoded(component, "DTEND"),
                duration=_decoded(component, "DURATION"),
                summary=_text(component.get("SUMMARY")),
                description=_text(component.get("DESCRIPTION")),
                status=_text(component.get("STATUS")),
            )
        )
    return RawCalendar(_text(calendar.get("PRODID")), events, "icalendar")


def _decoded(component: icalendar.cal.Component, name: str) -> Any:
    if name not in component:
        return None
    try:
        return component.decoded(name)
    except Exception:  # a malformed value makes the event invalid, not the feed
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # a property given twice: the first one counts
        value = value[0] if value else None
        if value is None:
            return None
    return str(value)


def _short(exc: BaseException) -> str:
    message = str(exc).replace("\n", " ")
    return message[:200]


def _read_fast(body: bytes) -> RawCalendar | None:
    """The fast path for plain feeds; None whenever the feed needs the full parser."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.lstrip("\ufeff")
    lines = UNFOLD.sub("", text).splitlines()
    stack: list[str] = []
    prodid: str | None = None
    events: list[RawEvent] = []
    current: dict[str, tuple[str, str]] | None = None
    saw_calendar = False
    for line in lines:
        if not line.strip():
            continue
        match = CONTENT_LINE.match(line)
        if match is None:
            return None
        name = match["name"].upper()
        params = match["params"]
        value = match["value"]
        if name == "BEGIN":
            component = value.strip().upper()
            if component == "VTIMEZONE":
                return None
            if not stack and component != "VCALENDAR":
                return None
            stack.append(component)
            if component == "VCALENDAR":
                if saw_calendar:
                    return None  # several calendars in one body: icalendar decides
                saw_calendar = True
            if component == "VEVENT":
                if stack[:-1] != ["VCALENDAR"]:
                    return None
                current = {}
            continue
        if name == "END":
            component = value.strip().upper()
            if not stack or stack[-1] != component:
                return None
            stack.pop()
            if component == "VEVENT":
                assert current is not None
                event = _fast_event(current)
                if event is None:
                    return None
                events.append(event)
                current = None
            continue
        if not stack:
            return None
        if name in FULL_PARSER_PROPERTIES:
            return None
        innermost = stack[-1]
        if innermost == "VCALENDAR" and name == "PRODID":
            prodid = unescape_backslash(value)
        elif innermost == "VEVENT" and current is not None and name in EVENT_PROPERTIES:
            if name in current:
                return None  # a property given twice: icalendar decides what that means
            current[name] = (params, value)
    if stack or not saw_calendar:
        return None
    return RawCalendar(prodid, events, "fast")


def _fast_event(props: dict[str, tuple[str, str]]) -> RawEvent | None:
    dates: dict[str, dt.date | None] = {}
    for name in ("DTSTART", "DTEND"):
        if name not in props:
            dates[name] = None
            continue
        params, value = props[name]
        value_type = _value_param(params)
        if value_type is False:
            return None
        if DATE_VALUE.match(value) and value_type in (None, "DATE"):
            pass
        elif DATETIME_VALUE.match(value) and value_type in (None, "DATE-TIME"):
            pass
        else:
            return None
        try:
            dates[name] = icalendar.vDDDTypes.from_ical(value)
        except Exception:  # the full parser decides what a bad value means
            return None
    duration = None
    if "DURATION" in props:
        params, value = props["DURATION"]
        if params:
            return None
        try:
            duration = icalendar.vDuration.from_ical(value)
        except Exception:  # the full parser decides what a bad value means
            return None
    texts: dict[str, str | None] = {}
    for name in ("UID", "SUMMARY", "DESCRIPTION", "STATUS"):
        if name in props:
            params, value = props[name]
            texts[name] = unescape_backslash(value)
        else:
            texts[name] = None
    return RawEvent(
        uid=texts["UID"],
        dtstart=dates["DTSTART"],
        dtend=dates["DTEND"],
        duration=duration,
        summary=texts["SUMMARY"],
        description=texts["DESCRIPTION"],
        status=texts["STATUS"],
    )


def _value_param(params: str) -> str | None | Literal[False]:
    """The VALUE parameter of a DTSTART/DTEND (None if absent); False for any other param."""
    value_type: str | None = None
    for param in filter(None, params.split(";")):
        key, sep, val = param.partition("=")
        if not sep or key.strip().upper() != "VALUE":
            return False
        value_type = val.strip().upper()
    return value_type


# -- channel rules ---------------------------------------------------------------------------


def detect_flavor(prodid: str | None, channel: str) -> Flavor:
    """The feed's channel from its PRODID, else the connection's channel, else generic."""
    p = (prodid or "").lower()
    if "airbnb" in p:
        return "airbnb"
    if "homeaway" in p or "vrbo" in p:
        return "vrbo"
    if "booking.com" in p:
        return "booking_com"
    if channel in ("airbnb", "vrbo", "booking_com"):
        return channel  # type: ignore[return-value]
    return "generic"


def classify(
    flavor: Flavor, summary: str | None, description: str | None, settings: FeedSettings
) -> Kind:
    s = (summary or "").strip().lower()
    if flavor == "airbnb":
        # "Reserved" (and, in older feeds, the guest's name) is a stay.
        return "block" if "not available" in s or s == "blocked" else "reservation"
    if flavor == "vrbo":
        return "block" if s.startswith("blocked") or "not available" in s else "reservation"
    if flavor == "booking_com":
        # Only "CLOSED - Not available": a stay cannot be told from a block.
        return settings.booking_closed_as
    return "block" if any(word in s for word in GENERIC_BLOCK_WORDS) else "reservation"


def airbnb_details(description: str | None) -> tuple[str | None, str | None]:
    """(confirmation code, last four digits of the phone) from an Airbnb DESCRIPTION."""
    if not description:
        return None, None
    code = None
    for match in AIRBNB_URL.finditer(description):
        url = match.group(0).rstrip(".,;)")
        path = urllib.parse.urlsplit(url).path.rstrip("/")
        if "reservation" in url.lower() and path:
            segment = urllib.parse.unquote(path.rsplit("/", 1)[-1]).strip()
            if segment:
                code = segment
                break
    phone = AIRBNB_PHONE.search(description)
    return code, phone.group(1) if phone else None


def _local_date(value: dt.date, tz: ZoneInfo) -> dt.date:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # floating time: the property's wall clock already
            return value.date()
        return value.astimezone(tz).date()
    return value


def parse_feed(
    body: bytes,
    *,
    channel: str,
    today: dt.date,
    tz: ZoneInfo,
    settings: FeedSettings | None = None,
) -> ParsedFeed:
    """The bookings of one feed body, by the channel's rules (see the module docstring)."""
    settings = settings or FeedSettings()
    count = len(VEVENT_BEGIN.findall(body))
    if count > MAX_EVENTS:
        raise FeedParseError(f"the feed has {count} events, more than the {MAX_EVENTS} allowed")
    horizon = _years_after(today, HORIZON_YEARS)
    raw = read_calendar(body)
    if len(raw.events) > MAX_EVENTS:  # lines the count above did not see (folded, odd case)
        raise FeedParseError(
            f"the feed has {len(raw.events)} events, more than the {MAX_EVENTS} allowed"
        )
    flavor = detect_flavor(raw.prodid, channel)
    feed = ParsedFeed(flavor=flavor, parser=raw.parser)
    by_uid: dict[str, FeedEvent] = {}
    for event in raw.events:
        feed.events_seen += 1
        parsed = _feed_event(event, flavor, tz, settings)
        if parsed is None:
            feed.ignored_invalid += 1
            continue
        if parsed.uid.lower().endswith(EXPORT_UID_SUFFIX):
            # Our own export echoed back by a channel: never a booking of its own.
            feed.ignored_own_export += 1
            continue
        if (event.status or "").strip().upper() == "CANCELLED":
            feed.ignored_cancelled += 1
            continue
        if parsed.uid in feed.present_uids:
            feed.duplicates += 1  # the first VEVENT of a UID counts (RFC: one per UID)
            continue
        feed.present_uids.add(parsed.uid)
        if parsed.end < today:
            feed.ignored_past += 1
            continue
        if (parsed.end - parsed.start).days > MAX_NIGHTS or parsed.start > horizon:
            feed.rejected += 1
            continue
        by_uid[parsed.uid] = parsed
    feed.events = sorted(by_uid.values(), key=lambda e: (e.start, e.uid))
    return feed


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def content_hash(body: bytes, settings: FeedSettings) -> str:
    """What identifies a feed's content for the unchanged-body shortcut: the body without its
    DTSTAMP lines (re-stamped on every request by some channels), plus the settings that shape
    its parsing."""
    digest = hashlib.sha256(VOLATILE_LINE.sub(b"", body))
    digest.update(settings.fingerprint().encode())
    return digest.hexdigest()


def _clean(value: str | None, limit: int) -> str | None:
    """Trimmed, without NUL (PostgreSQL text cannot hold it), at most `limit` characters."""
    value = (value or "").replace("\x00", "").strip()[:limit]
    return value or None


def _feed_event(
    event: RawEvent, flavor: Flavor, tz: ZoneInfo, settings: FeedSettings
) -> FeedEvent | None:
    try:
        return _to_feed_event(event, flavor, tz, settings)
    except (OverflowError, ValueError, TypeError):
        return None  # dates at the edge of the calendar, a DURATION of another type, ...


def _to_feed_event(
    event: RawEvent, flavor: Flavor, tz: ZoneInfo, settings: FeedSettings
) -> FeedEvent | None:
    if event.dtstart is None or not isinstance(event.dtstart, dt.date):
        return None
    start = _local_date(event.dtstart, tz)
    date_only = not isinstance(event.dtstart, dt.datetime)
    if event.dtend is not None:
        end = _local_date(event.dtend, tz)
        if settings.dtend_inclusive and date_only:
            end += dt.timedelta(days=1)
    elif event.duration is not None:
        end = _local_date(event.dtstart + event.duration, tz)
    else:
        end = start + dt.timedelta(days=1)  # RFC 5545 3.6.1: a date-only event lasts a day
    if end <= start:
        end = start + dt.timedelta(days=1)
    summary = _clean(event.summary, SUMMARY_MAX)
    description = _clean(event.description, DESCRIPTION_MAX)
    uid = (event.uid or "").replace("\x00", "").strip()
    if not uid:
        # RFC 5545 requires a UID; a feed without one still needs a stable key per event.
        digest = hashlib.sha256(f"{start}|{end}|{summary}".encode()).hexdigest()[:24]
        uid = f"nouid-{digest}"
    elif len(uid) > UID_MAX and not uid.lower().endswith(EXPORT_UID_SUFFIX):
        # An index entry has a size limit; a hash keeps an absurd UID unique and stable.
        uid = "sha256-" + hashlib.sha256(uid.encode()).hexdigest()
    kind = classify(flavor, summary, description, settings)
    code = phone = guest = None
    if kind == "reservation":
        if flavor == "airbnb":
            code, phone = airbnb_details(description)
        elif flavor == "vrbo" and summary:
            match = VRBO_RESERVED.match(summary)
            guest = match.group("name") if match else None
    return FeedEvent(
        uid=uid,
        kind=kind,
        start=start,
        end=end,
        summary=summary,
        description=description,
        confirmation_code=code,
        guest_name=guest,
        phone_last4=phone,
    )
