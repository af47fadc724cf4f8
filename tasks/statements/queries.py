"""The SQL of owner statements written for SPEC 7.5 (fees, recurring charges, the minimum fee,
the trust-side journal entry, delivery), one named constant each.

The older statements SQL still lives beside the code that runs it (tasks.statements.build's
steps, tasks.statements.finalize's locks and marks); these are the statements added to it.
"""

from __future__ import annotations

from sqlalchemy import text

# -- statements.generate: steps added to tasks.statements.build.STEPS --------------------------

# Recurring owner charges: one line (- to the owner) per charge whose months include the
# period, on the statement of its owner and property (statements of a final month only when
# a revision is built). A charge billed on a final version is carried by it; the revision's
# difference step (build.LINES) keeps it from being billed twice.
RECURRING_LINES = """
INSERT INTO st_exp (key_id, line_type, ref_id, recurring_charge_id, description, amount,
                    sort_section, sort_date)
SELECT k.key_id, 'recurring_charge', c.id, c.id, c.description, -c.amount, 4, :ps
FROM finance.owner_recurring_charges c
JOIN st_keys k ON k.homeowner_id = c.homeowner_id AND k.property_id = c.property_id
WHERE NOT k.skip AND c.start_month <= :ps AND (c.end_month IS NULL OR c.end_month >= :ps)
"""

# The monthly minimum: in a month whose revenue lines (rent and owner fees) sum above zero, a
# management fee below the minimum is raised to it by one more line. Computed on what the
# month should carry in full (st_exp), so a revision carries only a change of the top-up.
MINIMUM_FEE_LINES = """
INSERT INTO st_exp (key_id, line_type, description, amount, sort_section)
SELECT k.key_id, 'management_fee',
       format('Minimum monthly management fee (%s)', k.minimum_fee),
       coalesce(e.charged, 0) - k.minimum_fee, 3
FROM st_keys k
LEFT JOIN (
    SELECT key_id,
           sum(amount) FILTER (WHERE line_type IN ('rent', 'cleaning_fee', 'other_fee'))
               AS revenue,
           -sum(amount) FILTER (WHERE line_type = 'management_fee') AS charged
    FROM st_exp GROUP BY key_id
) e USING (key_id)
WHERE NOT k.skip AND k.minimum_fee > 0 AND e.revenue > 0
  AND coalesce(e.charged, 0) < k.minimum_fee
"""

# -- statements.finalize: the journal entry ----------------------------------------------------

# One balanced journal entry for the statement (docs/MONEY.md; tasks.statements.money.
# ledger_postings is the same in Python). Trust side: each stay's guest money leaves the
# clearing account (2100, with the stay), its taxes become taxes payable (2200), the owner's
# net income owner payable (2000), the manager's part (fees kept + what the owner is charged)
# is due to operating (2300). Operating side: due from trust (1300) against revenue: 4020 for
# the fees kept, one line per charging line (4000 / 4010 / 4030). Every line names the owner
# and property; zero amounts post nothing. (A revision of a statement finalized under the
# rules before SPEC 7.5 posts its change of channel commission to 5000, as that one did.)
POST_STATEMENT = text(
    """
WITH l AS (
    SELECT line_type, reservation_id, description, amount,
           coalesce(stay_channel_commission, 0) AS channel, coalesce(stay_cleaning_fee, 0)
               + coalesce(stay_other_fees, 0) AS fees, coalesce(stay_taxes, 0) AS taxes
    FROM finance.owner_statement_lines WHERE statement_id = :id
),
totals AS (
    SELECT coalesce(sum(amount) FILTER (WHERE line_type = ANY (CAST(:income_types AS text[]))),
                    0) AS net,
           -- the channel commission not drawn with its stay: none, but for a revision of a
           -- statement finalized before revision 0013, whose rent lines carry no shares
           coalesce(sum(amount) FILTER (WHERE line_type = 'channel_fee'), 0)
           + coalesce(sum(channel) FILTER (WHERE line_type = 'rent'), 0) AS channel_undrawn,
           coalesce(sum(fees) FILTER (WHERE line_type = 'rent'), 0)
           - coalesce(sum(amount) FILTER (WHERE line_type IN ('cleaning_fee', 'other_fee')), 0)
               AS kept,
           -coalesce(sum(amount) FILTER (WHERE line_type = ANY (CAST(:charge_types AS text[]))),
                     0) AS charged
    FROM l
),
posting (code, reservation_id, amount, memo) AS (
    SELECT :clearing, reservation_id, amount + fees + taxes - channel,
           'Guest money drawn: ' || description
    FROM l WHERE line_type = 'rent'
    UNION ALL
    SELECT :taxes_payable, reservation_id, -taxes, 'Taxes collected: ' || description
    FROM l WHERE line_type = 'rent'
    UNION ALL
    SELECT m.code, NULL, l.amount, l.description
    FROM l JOIN unnest(CAST(:charge_types AS text[]), CAST(:charge_codes AS text[]))
                AS m (line_type, code) USING (line_type)
    UNION ALL
    SELECT :channel_expense, NULL, channel_undrawn, 'Channel commission (before revision 0013)'
    FROM totals
    UNION ALL
    SELECT :fee_revenue, NULL, -kept, 'Guest fees kept by the manager' FROM totals
    UNION ALL
    SELECT :payable, NULL, -net, :payable_memo FROM totals
    UNION ALL
    SELECT :due_to_operating, NULL, -(kept + charged), :manager_memo FROM totals
    UNION ALL
    SELECT :due_from_trust, NULL, kept + charged, :manager_memo FROM totals
)
INSERT INTO finance.transaction_lines
    (transaction_id, account_id, homeowner_id, property_id, reservation_id, debit, credit, memo)
SELECT :txn, a.id, :hid, :pid, p.reservation_id, greatest(p.amount, 0), greatest(-p.amount, 0),
       p.memo
FROM posting p JOIN finance.accounts a ON a.code = p.code
WHERE p.amount <> 0
"""
)

# -- statements.finalize: delivery -------------------------------------------------------------

# Where the statement goes: the owner's statement_email, else their contact's email.
STATEMENT_RECIPIENT = text(
    """
SELECT coalesce(nullif(btrim(h.statement_email), ''), nullif(btrim(c.email), '')) AS email
FROM finance.owner_statements s
JOIN directory.homeowners h ON h.id = s.homeowner_id
JOIN directory.contacts c ON c.id = h.contact_id
WHERE s.id = :id
"""
)

# The PDF the statement is sent with; kept as first stored (a statement is final, so is it).
STORE_DOCUMENT = text(
    """
INSERT INTO finance.owner_statement_documents (statement_id, filename, content, sha256)
VALUES (:id, :filename, :content, :sha256)
ON CONFLICT (statement_id) DO NOTHING
"""
)

# One email per statement, ever (dedupe_key); the delivery service attaches the document of
# related_id from finance.owner_statement_documents.
QUEUE_STATEMENT_EMAIL = text(
    """
INSERT INTO comms.messages
    (channel, recipient, subject, body, related_type, related_id, dedupe_key)
VALUES ('email', :recipient, :subject, :body, 'owner_statement', :id,
        'owner_statement:' || CAST(:id AS text))
ON CONFLICT (dedupe_key) DO NOTHING
"""
)
