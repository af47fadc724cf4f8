"""Statement delivery (SPEC 7.5): the PDF stored, one email queued to the owner.

Runs inside statements.finalize's transaction, after the statement became final, so the PDF
shows it as the owner will keep it (final, with its payout) and the statement, its ledger entry
and its email commit together or not at all. The PDF goes to finance.owner_statement_documents
(one per statement); the email to comms.messages (channel 'email', related_type
'owner_statement', related_id the statement, dedupe_key 'owner_statement:<id>', so never
twice). The delivery service sends it with the document whose statement_id is the message's
related_id attached. The recipient is the owner's statement_email, else their contact email; an
owner with neither gets the PDF stored and no email (`email_queued` 0 in the result, so ops see
it in the job run).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy.orm import Session

from tasks.statements import queries as q
from tasks.statements.render import StatementView, load_statement, money, render_pdf


def deliver_statement(session: Session, statement_id: uuid.UUID) -> dict[str, Any]:
    """Store the statement's PDF and queue its email; returns what was done (0 when it was
    done before)."""
    view = load_statement(session, statement_id)
    pdf = render_pdf(view)
    stored = session.execute(
        q.STORE_DOCUMENT,
        {
            "id": statement_id,
            "filename": f"{view.number}.pdf",
            "content": pdf,
            "sha256": hashlib.sha256(pdf).hexdigest(),
        },
    ).rowcount
    recipient = session.execute(q.STATEMENT_RECIPIENT, {"id": statement_id}).scalar_one_or_none()
    queued = 0
    if recipient:
        queued = session.execute(
            q.QUEUE_STATEMENT_EMAIL,
            {
                "id": statement_id,
                "recipient": recipient,
                "subject": subject(view),
                "body": body(view),
            },
        ).rowcount
    return {"document_stored": stored, "email_queued": queued}


def subject(view: StatementView) -> str:
    return f"Owner statement {view.number}: {view.property_name}, {view.period_label}"


def body(view: StatementView) -> str:
    t = view.totals
    lines = [
        f"Dear {view.owner_name},",
        "",
        f"your owner statement {view.number} for {view.property_name} ({view.property_code}),"
        f" {view.period_label}, is attached ({view.number}.pdf).",
        "",
        f"Opening balance: {view.currency} {money(t['opening_balance'])}",
        f"Net income: {view.currency} {money(t['net_income'])}",
        f"Payout: {view.currency} {money(t['payout_amount'])}",
        f"Closing balance: {view.currency} {money(t['closing_balance'])}",
    ]
    notes = view.notes()
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"
