"""What the database can store (workers.base.storable): every value a broker can hand a task
comes out as JSON PostgreSQL accepts in jsonb and text, and every change is reported."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from workers.base import MAX_DEPTH, REPLACEMENT, storable, storable_text

# Strings with the characters PostgreSQL refuses among ordinary ones.
texts = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff"])),
    max_size=20,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)


def _unstorable_chars(value) -> bool:
    return any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value)


@given(json_values)
def test_the_result_is_json_postgres_stores_and_changes_are_reported(value):
    fixed, problems = storable(value)
    text = json.dumps(fixed, allow_nan=False)  # NaN / Infinity would raise here
    text.encode("utf-8")  # a lone surrogate would raise here
    assert "\\u0000" not in text
    assert (problems == []) == (
        json.dumps(value, sort_keys=True) == json.dumps(fixed, sort_keys=True)
    )


def test_each_problem_names_its_place_and_what_was_wrong():
    fixed, problems = storable(
        {"note": "a\x00b", "items": [1, {"name": "\ud83d"}], "ratio": math.inf, "k\x00": 1}
    )
    assert fixed == {
        "note": f"a{REPLACEMENT}b",
        "items": [1, {"name": REPLACEMENT}],
        "ratio": "inf",
        f"k{REPLACEMENT}": 1,
    }
    assert problems == [
        "note: contains a NUL character (\\u0000), which the database cannot store",
        "items[1].name: contains a lone surrogate (\\ud83d), which the database cannot store",
        "ratio: inf is not a JSON number, which the database cannot store",
        "the payload: a key contains a NUL character (\\u0000), which the database cannot store",
    ]


def test_a_storable_value_comes_back_unchanged():
    value = {"as_of": "2026-01-01T00:00:00+00:00", "ids": ["a", "b"], "n": 3, "x": 1.5, "ok": True}
    assert storable(value) == (value, [])


def test_huge_integers_and_deep_nesting_are_recorded_as_markers():
    deep: list = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    fixed, problems = storable({"n": 10**5000, "deep": deep})
    assert fixed["n"].startswith("<integer of ")
    assert json.dumps(fixed)  # printable, storable
    assert [p.split(":")[0] for p in problems] == ["n", "deep" + "[0]" * (MAX_DEPTH - 1)]


def test_storable_text_replaces_only_what_postgres_refuses():
    assert storable_text("tab\tok\x00\ud800é") == f"tab\tok{REPLACEMENT}{REPLACEMENT}é"
