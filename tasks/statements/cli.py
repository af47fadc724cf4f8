"""`cmw statements`: the owner statement commands (registered by workers/cli.py).

    cmw statements render ID --format html|csv|pdf [--output PATH]

ID is the statement's id or its number (OS-010001). HTML and CSV go to standard output unless
--output is given; a PDF is written to --output, or to ./<number>.pdf.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

statements_cli = typer.Typer(help="Owner statements.", no_args_is_help=True)


def _say(line: str) -> None:
    """One line on standard error, as is (no markup, no wrapping)."""
    sys.stderr.write(line + "\n")


class Format(StrEnum):
    html = "html"
    csv = "csv"
    pdf = "pdf"


@statements_cli.callback()
def _group() -> None:
    """Owner statements: render one as its owner reads it."""


@statements_cli.command()
def render(
    statement: Annotated[str, typer.Argument(help="Statement id or number (OS-010001).")],
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.html,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Render a statement: property, period, stays, costs, totals, balance and payout."""
    from db.session import session_scope
    from tasks.statements.render import StatementNotFound, load_statement
    from tasks.statements.render import render as render_view

    try:
        with session_scope() as session:
            view = load_statement(session, statement)
    except StatementNotFound as exc:
        _say(str(exc))
        raise typer.Exit(1) from exc
    content = render_view(view, format.value)
    if format is Format.pdf and output is None:
        output = Path(f"{view.number}.pdf")
    if output is None:
        assert isinstance(content, str)
        sys.stdout.write(content)
        return
    if isinstance(content, str):
        output.write_text(content, encoding="utf-8", newline="")
    else:
        output.write_bytes(content)
    _say(f"{view.number} ({format.value}) written to {output}")
