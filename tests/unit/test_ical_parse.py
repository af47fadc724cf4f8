"""Parsing channel feeds: each channel's format, dates, past events, our own echo, and the fast
path agreeing with icalendar's full parser on every feed."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.channel.ical import (
    EXPORT_UID_SUFFIX,
    FeedParseError,
    FeedSettings,
    _read_icalendar,
    detect_flavor,
    parse_feed,
    read_calendar,
)
from tests.support import feeds

TODAY = dt.date(2026, 7, 1)
NY = ZoneInfo("America/New_York")
D = dt.date


def parse(body: bytes, channel: str = "ical", settings: FeedSettings | None = None, **kw):
    return parse_feed(
        body, channel=channel, today=kw.get("today", TODAY), tz=kw.get("tz", NY), settings=settings
    )


def by_uid(feed):
    return {e.uid: e for e in feed.events}


def test_airbnb_stays_blocks_confirmation_code_and_phone():
    body = feeds.airbnb_feed(
        [
            feeds.airbnb_stay("a1", D(2026, 7, 10), D(2026, 7, 14), "HMABCDEF12", phone="9876"),
            feeds.airbnb_block("a2", D(2026, 8, 1), D(2026, 8, 3)),
        ]
    )
    feed = parse(body, channel="ical")  # PRODID says Airbnb whatever the connection says
    assert feed.flavor == "airbnb" and feed.parser == "fast"
    stay, block = by_uid(feed)["a1@airbnb.com"], by_uid(feed)["a2@airbnb.com"]
    assert (stay.kind, stay.start, stay.end) == ("reservation", D(2026, 7, 10), D(2026, 7, 14))
    assert stay.confirmation_code == "HMABCDEF12" and stay.phone_last4 == "9876"
    assert stay.summary == "Reserved"
    assert "Phone Number (Last 4 Digits): 9876" in stay.description
    assert (block.kind, block.start, block.end) == ("block", D(2026, 8, 1), D(2026, 8, 3))
    assert block.confirmation_code is None


def test_vrbo_reserved_with_name_vs_blocked():
    body = feeds.vrbo_feed(
        [
            feeds.vrbo_stay("v1", D(2026, 7, 2), D(2026, 7, 9), name="Maria"),
            feeds.vrbo_block("v2", D(2026, 9, 1), D(2026, 9, 5)),
            feeds.Event("v3", D(2026, 9, 10), D(2026, 9, 12), "Reserved"),
        ]
    )
    feed = parse(body, channel="airbnb")  # a mis-set connection: PRODID wins
    assert feed.flavor == "vrbo"
    events = by_uid(feed)
    assert events["v1"].kind == "reservation" and events["v1"].guest_name == "Maria"
    assert events["v2"].kind == "block"
    assert events["v3"].kind == "reservation" and events["v3"].guest_name is None


def test_booking_com_closed_is_a_block_unless_the_connection_says_otherwise():
    body = feeds.booking_feed([feeds.booking_closed("b1", D(2026, 7, 5), D(2026, 7, 8))])
    assert parse(body, channel="booking_com").events[0].kind == "block"
    as_stays = FeedSettings.from_settings({"booking_closed_as": "reservation"})
    feed = parse(body, channel="booking_com", settings=as_stays)
    assert feed.flavor == "booking_com" and feed.events[0].kind == "reservation"
    # Unknown values fall back to the safe default.
    assert FeedSettings.from_settings({"booking_closed_as": "maybe"}).booking_closed_as == "block"


def test_generic_feed_by_summary_and_flavor_from_the_connection():
    body = feeds.generic_feed(
        [
            feeds.Event("g1", D(2026, 7, 3), D(2026, 7, 6), "Smith family"),
            feeds.Event("g2", D(2026, 7, 7), D(2026, 7, 9), "Owner block"),
            feeds.Event("g3", D(2026, 7, 10), D(2026, 7, 11), "Not available"),
        ]
    )
    feed = parse(body, channel="ical")
    assert feed.flavor == "generic"
    assert [e.kind for e in feed.events] == ["reservation", "block", "block"]
    # A feed without a telling PRODID takes the connection's channel.
    assert detect_flavor("-//Acme PMS//EN", "vrbo") == "vrbo"
    assert detect_flavor(None, "custom_api") == "generic"


def test_date_only_values_are_check_in_and_check_out_and_dtend_inclusive_is_a_setting():
    body = feeds.airbnb_feed([feeds.airbnb_stay("d1", D(2026, 7, 10), D(2026, 7, 14), "HMX1")])
    assert (parse(body).events[0].start, parse(body).events[0].end) == (
        D(2026, 7, 10),
        D(2026, 7, 14),
    )
    inclusive = FeedSettings.from_settings({"dtend_inclusive": True})
    assert parse(body, settings=inclusive).events[0].end == D(2026, 7, 15)


def _raw(*event_lines: str, header: str = "PRODID:-//x//y//EN") -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", header]
    for block in event_lines:
        lines += ["BEGIN:VEVENT", *block.split("|"), "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def test_missing_dtend_duration_and_zero_length_events():
    body = _raw(
        "UID:n1|DTSTART;VALUE=DATE:20260710|SUMMARY:a",
        "UID:n2|DTSTART;VALUE=DATE:20260720|DURATION:P3D|SUMMARY:b",
        "UID:n3|DTSTART;VALUE=DATE:20260801|DTEND;VALUE=DATE:20260801|SUMMARY:c",
        "UID:n4|SUMMARY:no start",
    )
    events = by_uid(parse(body))
    assert (events["n1"].start, events["n1"].end) == (D(2026, 7, 10), D(2026, 7, 11))
    assert events["n2"].end == D(2026, 7, 23)
    assert events["n3"].end == D(2026, 8, 2)
    assert "n4" not in events and parse(body).ignored_invalid == 1


def test_date_times_are_read_in_the_property_zone():
    body = _raw(
        # 03:00 UTC on the 11th is the evening of the 10th in New York.
        "UID:t1|DTSTART:20260711T030000Z|DTEND:20260714T150000Z|SUMMARY:x",
        "UID:t2|DTSTART;TZID=Europe/Paris:20260720T010000|"
        "DTEND;TZID=Europe/Paris:20260722T100000|SUMMARY:y",
    )
    feed = parse(body)
    assert feed.parser == "icalendar"  # a TZID sends the feed to the full parser
    events = by_uid(feed)
    assert (events["t1"].start, events["t1"].end) == (D(2026, 7, 10), D(2026, 7, 14))
    assert (events["t2"].start, events["t2"].end) == (D(2026, 7, 19), D(2026, 7, 22))


def test_past_events_are_ignored_but_still_present_and_today_is_the_property_s():
    body = feeds.airbnb_feed(
        [
            feeds.airbnb_stay("p1", D(2026, 6, 20), D(2026, 6, 30), "HMPAST"),  # ended
            feeds.airbnb_stay("p2", D(2026, 6, 28), D(2026, 7, 1), "HMTODAY"),  # leaves today
            feeds.airbnb_stay("p3", D(2026, 7, 5), D(2026, 7, 9), "HMNEXT"),
        ]
    )
    feed = parse(body)
    assert sorted(by_uid(feed)) == ["p2@airbnb.com", "p3@airbnb.com"]
    assert feed.ignored_past == 1
    assert "p1@airbnb.com" in feed.present_uids  # not mistaken for a cancellation
    # 02:00 UTC on July 1st is still June 30th in New York: p1 (out June 30) is not past there.
    late = dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC).astimezone(NY).date()
    assert "p1@airbnb.com" in by_uid(parse(body, today=late))


def test_our_own_export_and_cancelled_events_are_not_in_the_feed():
    body = feeds.generic_feed(
        [
            feeds.Event(
                f"0190abcd-0000-7000-8000-000000000001{EXPORT_UID_SUFFIX}",
                D(2026, 7, 3),
                D(2026, 7, 6),
                "Reserved",
            ),
            feeds.Event("UPPER@CMW.EXPORT", D(2026, 7, 8), D(2026, 7, 9), "Reserved"),
            feeds.Event("c1", D(2026, 7, 10), D(2026, 7, 12), "Guest", status="CANCELLED"),
            feeds.Event("k1", D(2026, 7, 14), D(2026, 7, 16), "Guest"),
        ]
    )
    feed = parse(body)
    assert list(by_uid(feed)) == ["k1"]
    assert feed.ignored_own_export == 2 and feed.ignored_cancelled == 1
    assert feed.present_uids == {"k1"}
    assert feed.events_seen == 4


def test_duplicate_uids_keep_the_first_event():
    body = _raw(
        "UID:dup|DTSTART;VALUE=DATE:20260710|DTEND;VALUE=DATE:20260712|SUMMARY:first",
        "UID:dup|DTSTART;VALUE=DATE:20260720|DTEND;VALUE=DATE:20260722|SUMMARY:second",
    )
    feed = parse(body)
    assert [(e.summary, e.start) for e in feed.events] == [("first", D(2026, 7, 10))]
    assert feed.duplicates == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Service temporarily unavailable</body></html>",
        b"",
        b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n",
        b"\x00\xff\xfe garbage",
    ],
)
def test_a_body_that_is_not_a_calendar_is_a_parse_error(body):
    with pytest.raises(FeedParseError):
        parse(body)


def test_an_empty_calendar_is_valid_and_has_no_events():
    feed = parse(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nEND:VCALENDAR\r\n")
    assert feed.events == [] and feed.present_uids == set()


def test_folded_lines_escapes_and_non_ascii_text():
    description = (
        "Reservation URL: https://www.airbnb.com/hosting/reservations/details/HMZZ99YY88\n"
        "Guest: Zoë Ångström, party of 4; arrives late — 日本語 ok"
    )
    event = feeds.Event("f1@airbnb.com", D(2026, 7, 10), D(2026, 7, 12), "Reserved", description)
    body = feeds.airbnb_feed([event])
    assert max(len(line) for line in body.split(b"\r\n")) <= 75
    parsed = parse(body).events[0]
    assert parsed.description == description
    assert parsed.confirmation_code == "HMZZ99YY88"


def test_payload_hash_changes_with_what_matters_only():
    body = feeds.airbnb_feed([feeds.airbnb_stay("h1", D(2026, 7, 10), D(2026, 7, 14), "HMA")])
    first = parse(body).events[0].payload_hash
    assert parse(body).events[0].payload_hash == first
    moved = feeds.airbnb_feed([feeds.airbnb_stay("h1", D(2026, 7, 11), D(2026, 7, 14), "HMA")])
    assert parse(moved).events[0].payload_hash != first


# -- the fast path agrees with icalendar -------------------------------------------------------

CHANNEL_BODIES = [
    feeds.airbnb_feed(
        [
            feeds.airbnb_stay("s1", D(2026, 7, 10), D(2026, 7, 14), "HMABCDEF12"),
            feeds.airbnb_block("s2", D(2026, 8, 1), D(2026, 8, 3)),
        ]
    ),
    feeds.vrbo_feed([feeds.vrbo_stay("v1", D(2026, 7, 2), D(2026, 7, 9), "Ana, Bo; C\\D")]),
    feeds.booking_feed([feeds.booking_closed("b1", D(2026, 7, 5), D(2026, 7, 8))]),
    _raw(
        "UID:x1|DTSTART:20260711T030000Z|DTEND:20260714T150000Z|SUMMARY:utc",
        "UID:x2|DTSTART:20260711T030000|DURATION:PT36H|SUMMARY:floating",
        "UID:x3|DTSTART;VALUE=DATE:20260711|SUMMARY:one day|STATUS:CANCELLED",
        "UID:x4|DTSTART;VALUE=DATE:20260711|DTEND;VALUE=DATE:20260712|SUMMARY:a|"
        "BEGIN:VALARM|ACTION:DISPLAY|TRIGGER:-PT15M|DESCRIPTION:alarm text|END:VALARM",
    ),
]


@pytest.mark.parametrize("body", CHANNEL_BODIES)
def test_fast_path_equals_icalendar_on_channel_feeds(body):
    fast = read_calendar(body)
    assert fast.parser == "fast"
    full = _read_icalendar(body)
    assert fast.prodid == full.prodid
    assert fast.events == full.events


TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"),
        blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
    ),
    max_size=120,
) | st.sampled_from(["Reserved", "Airbnb (Not available)", "a,b;c\\d", "line\nbreak", ""])
DATES = st.dates(min_value=D(2020, 1, 1), max_value=D(2030, 12, 31))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(TEXT, DATES, st.integers(min_value=0, max_value=30), TEXT, TEXT),
        max_size=6,
    )
)
def test_fast_path_equals_icalendar_on_generated_feeds(events):
    body = feeds.generic_feed(
        feeds.Event(
            uid=f"{n}-{uid}",
            start=start,
            end=start + dt.timedelta(days=nights),
            summary=summary,
            description=description,
        )
        for n, (uid, start, nights, summary, description) in enumerate(events)
    )
    fast = read_calendar(body)
    full = _read_icalendar(body)
    assert fast.parser == "fast"
    assert fast.events == full.events and fast.prodid == full.prodid


def test_untrusted_text_is_made_storable():
    long_uid = "u" * 5000
    body = _raw(
        f"UID:{long_uid}|DTSTART;VALUE=DATE:20260710|DTEND;VALUE=DATE:20260712|SUMMARY:a\x00b",
        "UID:edge|DTSTART;VALUE=DATE:99991231|SUMMARY:end of time",
    )
    feed = parse(body)
    [event] = feed.events
    assert event.uid.startswith("sha256-") and len(event.uid) < 80
    assert event.summary == "ab"
    assert feed.ignored_invalid == 1  # its check-out would be past the last date there is
    assert parse(body).events[0].uid == event.uid  # stable


GOOD = feeds.airbnb_feed(
    [
        feeds.airbnb_stay("z1", D(2026, 7, 10), D(2026, 7, 14), "HMZ1"),
        feeds.airbnb_block("z2", D(2026, 8, 1), D(2026, 8, 3)),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_mangled_feed_parses_or_is_a_parse_error(data):
    body = bytearray(GOOD)
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        at = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            body[at] = data.draw(st.integers(min_value=0, max_value=255))
        elif action == "cut":
            del body[at : at + data.draw(st.integers(min_value=1, max_value=40))]
        else:
            body[at:at] = data.draw(
                st.sampled_from(
                    [
                        b":",
                        b";",
                        b"\r\n",
                        b"\r\n ",
                        b'"',
                        b"BEGIN:VEVENT\r\n",
                        b"END:VCALENDAR\r\n",
                        b"TZID=Mars/Olympus",
                        b"\x00",
                        b"\xff",
                    ]
                )
            )
        if not body:
            body = bytearray(b"x")
    try:
        feed = parse(bytes(body))
    except FeedParseError:
        return
    for event in feed.events:
        assert event.end > event.start and "\x00" not in (event.summary or "")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_parser(body):
    try:
        parse(b"BEGIN:VCALENDAR\r\n" + body + b"\r\nEND:VCALENDAR\r\n")
    except FeedParseError:
        pass
