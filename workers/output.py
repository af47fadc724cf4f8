"""How every listing command prints its rows: `emit(rows, columns, as_json=...)`.

Used by `cmw schedule`, `cmw runs`, `cmw channels` and `cmw dead-letters list` (and meant for
`cmw health`), so they all behave the same (SPEC 7.3):

- `--json` (`as_json=True`): one JSON object per line, every value whole: each row mapping as
  given (it may hold more keys than the table shows), datetimes and dates in ISO-8601, UUIDs and
  Decimals as strings.
- standard output not a terminal (a pipe, a file): a header line of the column keys, then one
  line per row, tab-separated, every value whole. Tabs, newlines, carriage returns and
  backslashes inside a value are escaped as in PostgreSQL's COPY text format (`\\t`, `\\n`,
  `\\r`, `\\\\`), so a row is always one line; None is an empty field; datetimes are ISO-8601.
- a terminal: a table. Columns marked `whole` (ids, task names, statuses, times) are never
  wrapped nor cut, whatever the width; the others (free text) take the width left, folded, and
  show at most `max_chars` characters of their first line. When the table does not fit, the
  columns marked `optional` are left out of it, last first; when it still does not fit, each
  row is printed as a block of `header  value` lines with every column, like psql's expanded
  display, values still whole (a long one runs past the edge and the terminal wraps it).

A rich style per value (`Column.styles`, e.g. status colours) applies in the table only. Values
are shown as text, never read as rich markup (an error may well contain `[Errno 111]`).

    emit(
        [{"id": run_id, "task": "ops.purge", "status": "failed", "error": "..."}],
        [Column("id", "task id"), Column("task", "task"), Column("status", "status",
         styles={"failed": "red"}), Column("error", "error", whole=False)],
        as_json=json_flag,
    )
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

# A free-text column keeps at least this many cells of a terminal's width.
FREE_MIN_WIDTH = 12


@dataclass(frozen=True)
class Column:
    """One column: `key` in the row mapping, `header` in the table."""

    key: str
    header: str
    # Never wrapped nor cut in the table (ids, names, statuses, times).
    whole: bool = True
    # Table text of a value (default: see `display`); TSV and JSON always show the value whole.
    text: Callable[[Any], str] | None = None
    # Rich style by displayed value, e.g. {"failed": "red"} (table only).
    styles: Mapping[str, str] = field(default_factory=dict)
    # Free text only: at most this many characters of the first line in the table.
    max_chars: int | None = None
    # Left out of a terminal table that would not fit otherwise (JSON and TSV keep it).
    optional: bool = False


def display(value: Any) -> str:
    """A value as a table shows it: UTC times to the second, None as `-`."""
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict | list):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return str(value)


def json_line(row: Mapping[str, Any]) -> str:
    """One row as one line of JSON, every value whole."""
    return json.dumps(dict(row), default=_json_default, ensure_ascii=False)


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def tsv_field(value: Any) -> str:
    """A value as one tab-separated field (COPY text escapes; None is empty)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        text = value.isoformat()
    elif isinstance(value, dict | list):
        text = json.dumps(value, default=_json_default, ensure_ascii=False)
    else:
        text = str(value)
    return text.translate(_TSV_ESCAPES)


def is_terminal(file: TextIO | None = None) -> bool:
    stream = file or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def emit(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    as_json: bool = False,
    file: TextIO | None = None,
    note: str | None = None,
) -> None:
    """Print `rows` as JSON lines, tab-separated lines or a table (see the module docstring).

    `note` (e.g. "12 mappings, 2 unhealthy") is printed under a table only: JSON and
    tab-separated output stay pure data.
    """
    out = file or sys.stdout
    rows = list(rows)
    if as_json:
        for row in rows:
            out.write(json_line(row) + "\n")
        out.flush()
        return
    if not is_terminal(out):
        out.write("\t".join(c.key for c in columns) + "\n")
        for row in rows:
            out.write("\t".join(tsv_field(row.get(c.key)) for c in columns) + "\n")
        out.flush()
        return
    console = Console(file=out, highlight=False)
    cells = [[_cell(row, c) for c in columns] for row in rows]
    shown = list(range(len(columns)))
    while _table_width(cells, columns, shown) > console.width:
        optional = [i for i in shown if columns[i].optional]
        if not optional:
            _print_expanded(console, cells, columns)
            break
        shown.remove(optional[-1])
    else:
        console.print(_table(cells, columns, shown))
    if note:
        console.print(Text(note), soft_wrap=True)


def _cell(row: Mapping[str, Any], column: Column) -> Text:
    value = row.get(column.key)
    text = column.text(value) if column.text else display(value)
    if not column.whole:
        lines = text.splitlines() or [""]
        text = lines[0] + (" ..." if len(lines) > 1 else "")
        if column.max_chars is not None and len(text) > column.max_chars:
            text = text[: column.max_chars - 3] + "..."
    return Text(text, style=column.styles.get(text, ""))


def _whole_width(cells: list[list[Text]], index: int, column: Column) -> int:
    return max([cell_len(column.header), *(row[index].cell_len for row in cells)])


def _table_width(cells: list[list[Text]], columns: Sequence[Column], shown: list[int]) -> int:
    """The narrowest table of the `shown` columns with every whole one at its widest value:
    the cells, and two spaces between columns."""
    total = 2 * (len(shown) - 1)
    for i in shown:
        width = _whole_width(cells, i, columns[i])
        total += width if columns[i].whole else min(width, FREE_MIN_WIDTH)
    return total


def _table(cells: list[list[Text]], columns: Sequence[Column], shown: list[int]) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold underline")
    for i in shown:
        column = columns[i]
        if column.whole:
            width = _whole_width(cells, i, column)
            table.add_column(column.header, no_wrap=True, min_width=width, overflow="fold")
        else:
            table.add_column(column.header, overflow="fold", min_width=FREE_MIN_WIDTH)
    for row in cells:
        table.add_row(*(row[i] for i in shown))
    return table


def _print_expanded(console: Console, cells: list[list[Text]], columns: Sequence[Column]) -> None:
    label_width = max(cell_len(c.header) for c in columns)
    for number, row in enumerate(cells, start=1):
        console.print(Text(f"-[ {number} ]-", style="bold"), soft_wrap=True)
        for column, cell in zip(columns, row, strict=True):
            line = Text()
            line.append(f"{column.header:<{label_width}}  ", style="dim")
            line.append_text(cell)
            console.print(line, soft_wrap=True)
