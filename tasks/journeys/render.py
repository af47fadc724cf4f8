"""Rendering a journey message: Jinja2 in its sandbox, strictly (SPEC 7.6).

Templates are written by operators, so they are untrusted code: they run in Jinja2's
SandboxedEnvironment (no attribute access to Python internals, `range` capped), with
StrictUndefined (a name the context lacks, or a value it does not have, fails the render
instead of printing nothing), with `*` and `**` refused when they would build something huge,
and with the output capped. A template that fails raises RenderError, which fails that one
message, never the sweep.

The context (docs/JOURNEYS.md): guest.first_name, guest.last_name, property.name,
property.code, stay.check_in, stay.check_out (dates), stay.nights, stay.confirmation_code,
stay.check_in_time, stay.check_out_time (the property's local times, "16:00"), door_code,
door_code_valid_from, door_code_valid_until. A value the database does not have (a guest with
no last name, a stay with no door code) is left out, so a template using it fails unless it
says what to do instead (`{{ guest.first_name | default("there") }}`,
`{% if door_code is defined %}`).
"""

from __future__ import annotations

import datetime as dt
import operator
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from tasks.recurring.rrules import InvalidRule, zone

# Long enough for any guest email; a template that renders more is broken or hostile.
MAX_OUTPUT_CHARS = 20_000
# A `**` with a larger exponent, or a `*` building a longer string or list, is refused.
MAX_EXPONENT = 64


class RenderError(Exception):
    """The template could not be rendered for this message (the message fails)."""


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with the two operators that can exhaust memory in one expression
    intercepted ("x" * 10**9, 10**10**10)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                if len(seq) * times > MAX_OUTPUT_CHARS:
                    raise SecurityError("repetition too large")
        return operator.mul(left, right)


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=256)
def _compile(source: str) -> Template:
    # Keyed by the source text: an edited template is compiled afresh, an unchanged one once
    # per worker process however many messages use it.
    return _ENV.from_string(source)


def render(source: str | None, context: dict[str, Any]) -> str | None:
    """`source` rendered with `context`; None stays None (a template without a subject)."""
    if source is None:
        return None
    try:
        out = _compile(source).render(context)
    except TemplateError as exc:  # syntax, undefined names, the sandbox's refusals
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    # The template is operator-written code: whatever else its expressions raise (a
    # division by zero, a bad filter argument) is this message's failure, not the sweep's.
    except Exception as exc:  # noqa: BLE001
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    if len(out) > MAX_OUTPUT_CHARS:
        raise RenderError(f"rendered text longer than {MAX_OUTPUT_CHARS} characters")
    return out


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """The keys with a value: a missing value is undefined, so StrictUndefined catches it."""
    return {k: v for k, v in values.items() if v is not None}


def context_of(row: Any) -> dict[str, Any]:
    """The template context of one claimed message (a CLAIM_DUE row)."""
    context: dict[str, Any] = {
        "guest": _present({"first_name": row.first_name, "last_name": row.last_name}),
        "property": _present({"name": row.property_name, "code": row.property_code}),
        "stay": _present(
            {
                "check_in": row.check_in,
                "check_out": row.check_out,
                "nights": row.nights,
                "confirmation_code": row.confirmation_code,
                "check_in_time": _hhmm(row.check_in_time),
                "check_out_time": _hhmm(row.check_out_time),
            }
        ),
    }
    context.update(
        _present(
            {
                "door_code": row.door_code,
                # On the property's wall clock, as a guest reads them.
                "door_code_valid_from": _local(row.door_code_valid_from, row.timezone),
                "door_code_valid_until": _local(row.door_code_valid_until, row.timezone),
            }
        )
    )
    return context


def _local(at: dt.datetime | None, tz: str | None) -> dt.datetime | None:
    if at is None or tz is None:
        return at
    try:
        return at.astimezone(zone(tz))
    except InvalidRule:
        return at


def _hhmm(value: Any) -> str | None:
    return None if value is None else value.strftime("%H:%M")
