"""Journey templates render in Jinja2's sandbox, strictly: what a template may not do fails
that message with a RenderError (tasks/journeys/render.py)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from tasks.journeys.render import MAX_OUTPUT_CHARS, RenderError, context_of, render


def row(**overrides):
    values = {
        "first_name": "Ada",
        "last_name": None,
        "property_name": "Cedar Cabin",
        "property_code": "BRL-1",
        "timezone": "America/New_York",
        "check_in": dt.date(2026, 3, 9),
        "check_out": dt.date(2026, 3, 12),
        "nights": 3,
        "confirmation_code": "HM42",
        "check_in_time": dt.time(16, 0),
        "check_out_time": dt.time(11, 0),
        "door_code": "482913",
        "door_code_valid_from": dt.datetime(2026, 3, 9, 19, 0, tzinfo=dt.UTC),
        "door_code_valid_until": dt.datetime(2026, 3, 12, 16, 0, tzinfo=dt.UTC),
    }
    return SimpleNamespace(**{**values, **overrides})


def test_the_context_has_the_variables_spec_names():
    out = render(
        "{{ guest.first_name }} at {{ property.name }}: {{ stay.check_in }} to"
        " {{ stay.check_out }} ({{ stay.nights }} nights, {{ stay.confirmation_code }}),"
        " code {{ door_code }} from {{ door_code_valid_from.strftime('%H:%M') }}",
        context_of(row()),
    )
    # The code's window is on the property's wall clock (15:00 EDT), not UTC.
    assert out == (
        "Ada at Cedar Cabin: 2026-03-09 to 2026-03-12 (3 nights, HM42), code 482913 from 15:00"
    )


def test_a_missing_value_fails_unless_the_template_says_what_to_do_instead():
    with pytest.raises(RenderError, match="last_name"):
        render("Dear {{ guest.last_name }}", context_of(row()))
    assert render("Dear {{ guest.last_name | default('guest') }}", context_of(row())) == (
        "Dear guest"
    )
    no_code = context_of(row(door_code=None, door_code_valid_from=None))
    with pytest.raises(RenderError, match="door_code"):
        render("Code {{ door_code }}", no_code)
    assert render("{% if door_code is defined %}x{% else %}none{% endif %}", no_code) == "none"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{{ guest.__class__.__mro__ }}", "SecurityError"),
        ("{{ ''.__class__.__subclasses__() }}", "SecurityError"),
        ("{{ 'x' * 100000000 }}", "repetition too large"),
        ("{{ 9 ** 99999999 }}", "exponent too large"),
        ("{% for i in range(10000000) %}{% endfor %}", "OverflowError"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ nope(", "TemplateSyntaxError"),
        ("{% for i in range(5000) %}0123456789{% endfor %}", "longer than"),
    ],
)
def test_what_a_template_may_not_do_fails_the_message(source, words):
    with pytest.raises(RenderError, match=words):
        render(source, context_of(row()))


def test_a_template_without_a_subject_renders_none():
    assert render(None, context_of(row())) is None
    assert len(render("{{ 'ab' * 10 }}", {})) == 20 <= MAX_OUTPUT_CHARS
