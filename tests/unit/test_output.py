"""The listing printer every `cmw` listing uses (workers.output.emit): JSON lines with every
value whole, tab-separated lines when piped, and on a terminal a table that never cuts a whole
column (ids, task names, statuses) whatever the width."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal

import pytest

from tests.support.cli import ANSI_ESCAPE
from workers.output import Column, emit

RUN_ID = uuid.UUID("01937a4e-8c5f-7d3e-9a1b-2c3d4e5f6a7b")
ROWS = [
    {
        "id": RUN_ID,
        "task": "channel.export_calendars",
        "status": "failed",
        "at": dt.datetime(2026, 12, 6, 20, 59, 22, 123456, tzinfo=dt.UTC),
        "amount": Decimal("12.30"),
        "error": "OperationalError: [Errno 111] refused\n\tand a second line",
        "extra": {"payload": {"keep_days": 5}},
    },
    {
        "id": uuid.UUID("01937a4e-8c5f-7d3e-9a1b-000000000002"),
        "task": "recurring.sync_reservation",
        "status": "succeeded",
        "at": None,
        "amount": None,
        "error": None,
        "extra": None,
    },
]
COLUMNS = [
    Column("at", "at (UTC)"),
    Column("task", "task"),
    Column("status", "status", styles={"failed": "red"}),
    Column("amount", "amount", optional=True),
    Column("id", "task id"),
    Column("error", "error", whole=False, max_chars=40),
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_hold_every_value_whole():
    out = io.StringIO()
    emit(ROWS, COLUMNS, as_json=True, file=out)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {
        "id": str(RUN_ID),
        "task": "channel.export_calendars",
        "status": "failed",
        "at": "2026-12-06T20:59:22.123456+00:00",
        "amount": "12.30",
        "error": "OperationalError: [Errno 111] refused\n\tand a second line",
        "extra": {"payload": {"keep_days": 5}},
    }
    assert second["at"] is None and second["task"] == "recurring.sync_reservation"


def test_piped_output_is_tab_separated_with_a_header_one_line_per_row():
    out = io.StringIO()
    emit(ROWS, COLUMNS, file=out, note="not printed when piped")
    lines = out.getvalue().splitlines()
    assert lines[0] == "at\ttask\tstatus\tamount\tid\terror"
    assert lines[1].split("\t") == [
        "2026-12-06T20:59:22.123456+00:00",
        "channel.export_calendars",
        "failed",
        "12.30",
        str(RUN_ID),
        "OperationalError: [Errno 111] refused\\n\\tand a second line",
    ]
    assert lines[2].split("\t")[3:] == ["", str(ROWS[1]["id"]), ""]
    assert len(lines) == 3


@pytest.mark.parametrize("columns", [40, 80, 120, 200])
def test_a_terminal_table_never_cuts_a_whole_column(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    out = Terminal()
    emit(ROWS, COLUMNS, file=out)
    shown = ANSI_ESCAPE.sub("", out.getvalue())
    for row in ROWS:
        assert str(row["id"]) in shown
        assert row["task"] in shown
        assert row["status"] in shown
    assert "2026-12-06 20:59:22" in shown
    assert "…" not in shown


def test_a_wide_terminal_gets_one_table_line_per_row_and_a_narrow_one_a_block_per_row(
    monkeypatch,
):
    monkeypatch.setenv("COLUMNS", "160")
    wide = Terminal()
    emit(ROWS, COLUMNS, file=wide, note="2 runs")
    lines = ANSI_ESCAPE.sub("", wide.getvalue()).splitlines()
    assert lines[0].split()[:4] == ["at", "(UTC)", "task", "status"]
    assert any(str(RUN_ID) in line and "channel.export_calendars" in line for line in lines)
    assert lines[-1] == "2 runs"

    monkeypatch.setenv("COLUMNS", "40")
    narrow = Terminal()
    emit(ROWS, COLUMNS, file=narrow)
    blocks = ANSI_ESCAPE.sub("", narrow.getvalue()).splitlines()
    assert blocks[0] == "-[ 1 ]-"
    assert f"task id   {RUN_ID}" in blocks
    assert "amount    12.30" in blocks  # every column, the optional ones too


def test_optional_columns_go_first_when_the_table_is_too_wide(monkeypatch):
    # 19 + 26 + 9 + 36 + 12 (error, folded) + 2 * 4 = 110 without the amount column.
    monkeypatch.setenv("COLUMNS", "112")
    out = Terminal()
    emit(ROWS, COLUMNS, file=out)
    header = ANSI_ESCAPE.sub("", out.getvalue()).splitlines()[0]
    assert "task id" in header and "amount" not in header


def test_values_are_text_never_markup(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = Terminal()
    emit(
        [{"task": "[bold]x[/bold]", "status": "ok"}],
        [Column("task", "t"), Column("status", "s")],
        file=out,
    )
    assert "[bold]x[/bold]" in ANSI_ESCAPE.sub("", out.getvalue())
