"""`cmw statements render`: a demo statement as its owner reads it, in HTML, CSV and PDF.

The demo data set (workers.dev.seeds.demo) is loaded, last month's statements generated and one with
stays, costs and a reserve finalized; the three renderings must show the property, the period,
each stay with its dates and nights, each cost, the totals, the balance and the payout.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import re
import shutil
import subprocess
import zlib
from decimal import Decimal

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tasks.statements.cli import statements_cli
from tasks.statements.render import money
from tests.integration.test_statements_generate import finalize, run_task

runner = CliRunner()


def pdf_text(pdf: bytes) -> str:
    """The text drawn on the pages of a reportlab PDF (ASCII85 + Flate content streams)."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        data = stream.strip()
        if data.endswith(b"~>"):
            data = base64.a85decode(data[:-2])
        try:
            data = zlib.decompress(data)
        except zlib.error:
            continue
        out += [m.decode("latin-1") for m in re.findall(rb"\((.*?)\) Tj", data)]
    return "\n".join(out).replace("\\(", "(").replace("\\)", ")")


@pytest.fixture
def demo_statement(engine, services, celery_app):
    """Demo data, last month generated, and the demo statement with the most to show (stays,
    a cost, a reserve) finalized; returns its row."""
    from workers.dev.seeds.demo import seed_demo

    seed_demo(services.database_url)
    result = run_task(celery_app, "statements.generate")
    assert result["drafts"] > 20
    with engine.connect() as conn:
        sid = conn.execute(
            text(
                """
SELECT s.id FROM finance.owner_statements s
WHERE s.expenses < 0 AND s.payout_amount > 0
ORDER BY (s.reserve_held > 0) DESC,
         (SELECT count(*) FROM finance.owner_statement_lines l
          WHERE l.statement_id = s.id AND l.line_type = 'rent') DESC,
         s.statement_number
LIMIT 1
"""
            )
        ).scalar_one()
    finalize(celery_app, sid)
    with engine.connect() as conn:
        return (
            conn.execute(
                text(
                    "SELECT s.*, p.name AS property_name, p.property_code"
                    " FROM finance.owner_statements s JOIN property.properties p"
                    " ON p.id = s.property_id WHERE s.id = :id"
                ),
                {"id": sid},
            )
            .mappings()
            .one()
        )


def stays_and_costs(engine, statement_id):
    with engine.connect() as conn:
        stays = conn.execute(
            text(
                "SELECT v.confirmation_code, v.check_in, v.check_out, l.nights, l.amount"
                " FROM finance.owner_statement_lines l"
                " JOIN reservations.reservations v ON v.id = l.reservation_id"
                " WHERE l.statement_id = :s AND l.line_type = 'rent' ORDER BY l.sort_order"
            ),
            {"s": statement_id},
        ).all()
        costs = conn.execute(
            text(
                "SELECT c.description, c.cost_date, l.amount FROM finance.owner_statement_lines l"
                " JOIN service.ticket_costs c ON c.id = l.ticket_cost_id"
                " WHERE l.statement_id = :s ORDER BY l.sort_order"
            ),
            {"s": statement_id},
        ).all()
    return stays, costs


def render(tmp_path, ident: str, fmt: str) -> bytes:
    out = tmp_path / f"statement.{fmt}"
    result = runner.invoke(statements_cli, ["render", ident, "--format", fmt, "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_html_shows_what_the_owner_needs(engine, demo_statement, tmp_path):
    s = demo_statement
    page = render(tmp_path, s["statement_number"], "html").decode()
    stays, costs = stays_and_costs(engine, s["id"])

    assert stays and costs
    assert f"Owner statement {s['statement_number']}" in page
    assert s["property_name"] in page and s["property_code"] in page
    assert f"{s['period_start']:%B %Y}" in page
    for code, check_in, check_out, nights, amount in stays:
        row = re.search(rf"<tr><td>{re.escape(code)}</td>.*?</tr>", page)
        assert row, code
        assert str(check_in) in row.group(0) and str(check_out) in row.group(0)
        assert f">{nights}<" in row.group(0) or f">{nights} of " in row.group(0)
        assert money(amount) in row.group(0)
    for description, cost_date, amount in costs:
        assert description in page and str(cost_date) in page and money(amount) in page
    for column in ("gross_revenue", "management_fees", "expenses", "net_income",
                   "payout_amount", "closing_balance", "reserve_held"):  # fmt: skip
        assert money(s[column]) in page
    assert "Final" in page and "scheduled for" in page


def test_csv_rows_add_up_to_the_statement(engine, demo_statement, tmp_path):
    s = demo_statement
    rows = list(csv.DictReader(io.StringIO(render(tmp_path, str(s["id"]), "csv").decode())))

    assert {r["statement"] for r in rows} == {s["statement_number"]}
    assert {r["property"] for r in rows} == {s["property_code"]}
    assert {r["period"] for r in rows} == {f"{s['period_start']:%Y-%m}"}

    def total(section: str) -> Decimal:
        return sum((Decimal(r["amount"]) for r in rows if r["section"] == section), Decimal(0))

    # SPEC 7.5: gross revenue is rent and the owner's fees; expenses include recurring charges.
    assert total("rent") + total("cleaning_fee") + total("other_fee") == s["gross_revenue"]
    assert total("channel_fee") == s["channel_fees"]
    assert total("management_fee") == s["management_fees"]
    assert total("expense") + total("recurring_charge") == s["expenses"]
    summary = {r["reference"]: Decimal(r["amount"]) for r in rows if r["section"] == "summary"}
    assert summary["opening_balance"] == s["opening_balance"]
    assert summary["net_income"] == s["net_income"]
    assert summary["payout"] == s["payout_amount"]
    assert summary["closing_balance"] == s["closing_balance"]
    stays, _ = stays_and_costs(engine, s["id"])
    rent_rows = [r for r in rows if r["section"] == "rent"]
    assert [
        (r["reference"], r["check_in"], r["check_out"], int(r["nights"])) for r in rent_rows
    ] == [(code, str(ci), str(co), nights) for code, ci, co, nights, _ in stays]


def test_pdf_is_a_real_pdf_with_the_statement_on_it(engine, demo_statement, tmp_path):
    s = demo_statement
    pdf = render(tmp_path, s["statement_number"], "pdf")

    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type /Page\b", pdf)) >= 1
    drawn = pdf_text(pdf)
    stays, costs = stays_and_costs(engine, s["id"])
    assert f"Owner statement {s['statement_number']}" in drawn
    assert s["property_code"] in drawn
    for code, check_in, *_ in stays:
        assert code in drawn and str(check_in) in drawn
    for description, cost_date, amount in costs:
        assert description in drawn and str(cost_date) in drawn and money(amount) in drawn
    assert money(s["payout_amount"]) in drawn and money(s["closing_balance"]) in drawn
    if shutil.which("pdftoppm"):  # poppler: the first page as the owner sees it
        (tmp_path / "statement.pdf").write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(tmp_path / "statement.pdf"),
             str(tmp_path / "page")],
            check=True, timeout=60,
        )  # fmt: skip
        assert (tmp_path / "page-1.png").read_bytes().startswith(b"\x89PNG")


def test_a_draft_and_a_revision_say_what_they_are(engine, session, celery_app, tmp_path):
    from tests.integration.test_statements_generate import generate, owned_property, statement
    from tests.support import factories as f

    pid, (hid,) = owned_property(session)
    f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6), gross_rent="400")
    session.commit()
    generate(celery_app, "2026-03")
    draft = statement(engine, hid, pid, dt.date(2026, 3, 1))
    assert "DRAFT" in render(tmp_path, draft["statement_number"], "html").decode()
    finalize(celery_app, draft["id"])
    f.insert(session, "service.ticket_costs", property_id=pid, cost_date=dt.date(2026, 3, 9),
             amount=Decimal("40.00"), billable_to="owner", description="Late plumber")  # fmt: skip
    session.commit()
    generate(celery_app, "2026-03", revise=True)
    revision = statement(engine, hid, pid, dt.date(2026, 3, 1))

    page = render(tmp_path, revision["statement_number"], "html").decode()

    assert f"revision of {draft['statement_number']}" in page
    assert "Revision, added: Late plumber" in page and "-40.00" in page


def test_an_unknown_statement_is_an_error(engine):
    result = runner.invoke(statements_cli, ["render", "OS-999999", "--format", "html"])
    assert result.exit_code == 1
    assert "no owner statement" in result.output


def test_the_demo_statement_with_owner_fees_and_a_recurring_charge(engine, services, celery_app,
                                                                    tmp_path):  # fmt: skip
    """workers/dev/seeds/demo_money.py: Hale Kai (KAI-0) has the owner's cleaning fees, a flat
    fee per stay and a lock subscription; its statement shows each where the owner looks for it."""
    from workers.dev.seeds.demo import seed_demo

    seed_demo(services.database_url)
    run_task(celery_app, "statements.generate")
    with engine.connect() as conn:
        s = (
            conn.execute(
                text(
                    "SELECT s.* FROM finance.owner_statements s"
                    " JOIN property.properties p ON p.id = s.property_id"
                    " WHERE p.name = 'Hale Kai'"
                )
            )
            .mappings()
            .one()
        )
        fees = conn.execute(
            text(
                "SELECT coalesce(sum(amount), 0) FROM finance.owner_statement_lines"
                " WHERE statement_id = :s AND line_type = 'cleaning_fee'"
            ),
            {"s": s["id"]},
        ).scalar_one()
    assert fees > 0
    finalize(celery_app, s["id"])

    page = render(tmp_path, s["statement_number"], "html").decode()
    assert "Owner fees" in page and "Rent and owner fees" in page
    assert "Costs and recurring charges" in page and "Smart lock subscription (monthly)" in page
    assert "Management fee, 25.00 per stay" in page and money(s["gross_revenue"]) in page
    rows = list(csv.DictReader(io.StringIO(render(tmp_path, str(s["id"]), "csv").decode())))
    assert sum(Decimal(r["amount"]) for r in rows if r["section"] == "cleaning_fee") == fees
    assert [r["amount"] for r in rows if r["section"] == "recurring_charge"] == ["-15.00"]
    drawn = pdf_text(render(tmp_path, s["statement_number"], "pdf"))
    for text_on_page in ("Owner fees", "Costs and recurring charges",
                         "Smart lock subscription (monthly)", money(fees)):  # fmt: skip
        assert text_on_page in drawn
