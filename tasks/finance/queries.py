"""Every SQL statement of the finance jobs, one named constant each (docs/MONEY.md has the
ledger design they follow). Bind parameters only; account codes come in as parameters from
tasks.statements.money, the one list of them in Python."""

from __future__ import annotations

from sqlalchemy import text

# -- finance.post_payments ---------------------------------------------------------------------

# A batch of guest payments is posted by the five statements below, in one transaction, over
# two small temporary tables: one statement with data-modifying CTEs joined to each other made
# the planner expect one row per CTE and nest loops over them (4,368 payments: 135 s).

# A second batch in the same transaction starts afresh.
DROP_BATCH_TABLES = text("DROP TABLE IF EXISTS pg_temp.fin_batch, pg_temp.fin_posted")

# Temporary tables have no statistics until analysed; the joins after them need them.
ANALYZE_BATCH = text("ANALYZE fin_batch")
ANALYZE_POSTED = text("ANALYZE fin_posted")

# The batch: the oldest unposted payments received by as_of, claimed (rows another run holds
# are skipped), each with its stay's property, the day it was received in the property's zone
# and the id its journal entry will have; `known` is false when no such reservation exists.
CLAIM_PAYMENTS = text(
    """
CREATE TEMP TABLE fin_batch ON COMMIT DROP AS
WITH claimed AS (
    SELECT g.id, g.reservation_id, g.amount, g.received_at, g.external_ref
    FROM finance.guest_payments g
    WHERE g.transaction_id IS NULL AND g.error IS NULL AND g.received_at <= :as_of
    ORDER BY g.received_at, g.id
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
)
SELECT c.*, r.id IS NOT NULL AS known, r.property_id,
       coalesce(r.confirmation_code, 'no code') AS code,
       (c.received_at AT TIME ZONE p.timezone)::date AS txn_date,
       ops.uuid_generate_v7() AS txn_id
FROM claimed c
LEFT JOIN reservations.reservations r ON r.id = c.reservation_id
LEFT JOIN property.properties p ON p.id = r.property_id
"""
)

# Payments naming no known reservation: not posted, their error says why.
MARK_UNKNOWN_RESERVATIONS = text(
    """
UPDATE finance.guest_payments g
SET error = 'unknown reservation ' || CAST(g.reservation_id AS text)
FROM fin_batch b
WHERE g.id = b.id AND NOT b.known
"""
)

# One journal entry per payment (reference 'guest_payment' + its id: posted once, by
# uq_transactions_posted_once), dated the day it was received; the entries written are kept
# in fin_posted for the lines and marks.
INSERT_PAYMENT_TRANSACTIONS = text(
    """
CREATE TEMP TABLE fin_posted ON COMMIT DROP AS
WITH ins AS (
    INSERT INTO finance.transactions (id, txn_date, description, reference_type, reference_id)
    SELECT b.txn_id, b.txn_date,
           format('Guest %s %s, stay %s', CASE WHEN b.amount > 0 THEN 'payment' ELSE 'refund' END,
                  b.external_ref, b.code),
           'guest_payment', b.id
    FROM fin_batch b
    WHERE b.known
    ORDER BY b.received_at, b.id
    ON CONFLICT (reference_type, reference_id)
        WHERE reference_type IN ('guest_payment', 'owner_payout') DO NOTHING
    RETURNING id
)
SELECT id FROM ins
"""
)

# Two lines each: Dr 1010 Trust cash / Cr 2100 Guest rent clearing for a payment, the other
# way round for a refund (a negative amount); the clearing line names the stay and property.
INSERT_PAYMENT_LINES = text(
    """
INSERT INTO finance.transaction_lines
    (transaction_id, account_id, property_id, reservation_id, debit, credit, memo)
SELECT b.txn_id, a.id, side.property_id, side.reservation_id, greatest(side.amount, 0),
       greatest(-side.amount, 0), side.memo
FROM fin_batch b
JOIN fin_posted p ON p.id = b.txn_id
CROSS JOIN LATERAL (VALUES
    (CAST(:trust_cash AS text), NULL::uuid, NULL::uuid, b.amount, b.external_ref),
    (CAST(:clearing AS text), b.property_id, b.reservation_id, -b.amount, b.code)
) AS side (code, property_id, reservation_id, amount, memo)
JOIN finance.accounts a ON a.code = side.code
"""
)

# Each payment posted points at its journal entry; the batch's counts come back as one row.
MARK_PAYMENTS_POSTED = text(
    """
WITH marked AS (
    UPDATE finance.guest_payments g SET transaction_id = b.txn_id
    FROM fin_batch b JOIN fin_posted p ON p.id = b.txn_id
    WHERE g.id = b.id
    RETURNING g.amount
)
SELECT (SELECT count(*) FROM fin_batch) AS claimed,
       (SELECT count(*) FROM fin_batch WHERE NOT known) AS errors,
       count(*) AS posted,
       count(*) FILTER (WHERE amount < 0) AS refunds,
       coalesce(sum(amount), 0) AS net_amount
FROM marked
"""
)

# Whether another batch is waiting (received by as_of, neither posted nor in error).
MORE_PAYMENTS = text(
    """
SELECT EXISTS (
    SELECT 1 FROM finance.guest_payments
    WHERE transaction_id IS NULL AND error IS NULL AND received_at <= :as_of
)
"""
)

# -- finance.reconcile_trust -------------------------------------------------------------------

# The trust accounts' balances at a month end (by transaction date), in one pass over the
# ledger: per account, and per owner and property on owner payable and per stay on the guest
# clearing account (the sub-ledgers the totals must agree with). Signed so that each is what
# it is worth: trust cash as an asset (debits - credits), the others as what is owed (credits
# - debits).
TRUST_BALANCES = text(
    """
WITH agg AS (
    SELECT a.code,
           CASE WHEN a.code = :payable THEN l.homeowner_id END AS homeowner_id,
           CASE WHEN a.code = :payable THEN l.property_id END AS property_id,
           CASE WHEN a.code = :clearing THEN l.reservation_id END AS reservation_id,
           sum(l.credit - l.debit) AS owed
    FROM finance.transaction_lines l
    JOIN finance.transactions t ON t.id = l.transaction_id
    JOIN finance.accounts a ON a.id = l.account_id
    WHERE t.txn_date <= :month_end AND a.code = ANY (CAST(:codes AS text[]))
    GROUP BY 1, 2, 3, 4
)
SELECT
    -coalesce(sum(owed) FILTER (WHERE code = :trust_cash), 0) AS ledger_balance,
    coalesce(sum(owed) FILTER (WHERE code = :payable), 0) AS owner_balances,
    count(*) FILTER (WHERE code = :payable AND owed < 0) AS negative_owner_balances,
    coalesce(sum(owed) FILTER (WHERE code = :clearing AND r.check_in > :month_end), 0)
        AS guest_funds_future,
    coalesce(sum(owed) FILTER (WHERE code = :clearing
                               AND (r.check_in IS NULL OR r.check_in <= :month_end)), 0)
        AS guest_funds_current,
    coalesce(sum(owed) FILTER (WHERE code = :taxes_payable), 0) AS taxes_payable,
    coalesce(sum(owed) FILTER (WHERE code = :due_to_operating), 0) AS fees_held
FROM agg
LEFT JOIN reservations.reservations r ON r.id = agg.reservation_id
"""
)

# The bank's balance of the account on the month's last day, as ops entered it.
BANK_BALANCE = text(
    "SELECT balance FROM finance.bank_balances"
    " WHERE account_code = :account_code AND balance_date = :month_end"
)

# The month's result, brought up to date by each run (one row per account and month).
RECORD_RECONCILIATION = text(
    """
INSERT INTO finance.trust_reconciliations
    (account_code, month, month_end, status, ledger_balance, bank_balance, owner_balances,
     guest_funds_future, guest_funds_current, taxes_payable, fees_held, owed_total,
     bank_difference, book_difference, negative_owner_balances, reconciled_at)
VALUES (:account_code, :month, :month_end, :status, :ledger_balance, :bank_balance,
        :owner_balances, :guest_funds_future, :guest_funds_current, :taxes_payable,
        :fees_held, :owed_total, :bank_difference, :book_difference, :negative_owner_balances,
        :reconciled_at)
ON CONFLICT (account_code, month) DO UPDATE SET
    month_end = EXCLUDED.month_end, status = EXCLUDED.status,
    ledger_balance = EXCLUDED.ledger_balance, bank_balance = EXCLUDED.bank_balance,
    owner_balances = EXCLUDED.owner_balances,
    guest_funds_future = EXCLUDED.guest_funds_future,
    guest_funds_current = EXCLUDED.guest_funds_current,
    taxes_payable = EXCLUDED.taxes_payable, fees_held = EXCLUDED.fees_held,
    owed_total = EXCLUDED.owed_total, bank_difference = EXCLUDED.bank_difference,
    book_difference = EXCLUDED.book_difference,
    negative_owner_balances = EXCLUDED.negative_owner_balances,
    reconciled_at = EXCLUDED.reconciled_at,
    runs = finance.trust_reconciliations.runs + 1
RETURNING id, runs
"""
)

# One ops notice per difference found: the key names the month and the differences, so the
# same difference is never notified twice, and a different one (ops fixed half of it) is.
NOTIFY_DIFFERENCE = text(
    """
INSERT INTO comms.messages
    (channel, recipient, subject, body, related_type, related_id, dedupe_key)
VALUES ('email', :recipient, :subject, :body, 'trust_reconciliation', :id, :dedupe_key)
ON CONFLICT (dedupe_key) DO NOTHING
"""
)

# -- finance.record_payout ---------------------------------------------------------------------

# The payout, locked, with what its posting needs (the owner's property and its zone).
LOCK_PAYOUT = text(
    """
SELECT po.id, po.payout_number, po.homeowner_id, po.amount, po.status, po.reference,
       s.property_id, s.statement_number, p.timezone
FROM finance.owner_payouts po
JOIN finance.owner_statements s ON s.id = po.statement_id
JOIN property.properties p ON p.id = s.property_id
WHERE po.id = :id
FOR UPDATE OF po
"""
)

# The cash leaving the trust account for the owner: Dr 2000 Owner payable / Cr 1010 Trust cash,
# dated the day it was sent in the property's zone, posted once per payout.
POST_PAYOUT = text(
    """
WITH txn AS (
    INSERT INTO finance.transactions (txn_date, description, reference_type, reference_id)
    VALUES ((CAST(:sent_at AS timestamptz) AT TIME ZONE :timezone)::date, :description,
            'owner_payout', :id)
    ON CONFLICT (reference_type, reference_id)
        WHERE reference_type IN ('guest_payment', 'owner_payout') DO NOTHING
    RETURNING id
),
lines AS (
    INSERT INTO finance.transaction_lines
        (transaction_id, account_id, homeowner_id, property_id, debit, credit, memo)
    SELECT txn.id, a.id, :hid, :pid,
           CASE WHEN a.code = :payable THEN :amount ELSE 0 END,
           CASE WHEN a.code = :trust_cash THEN :amount ELSE 0 END, :description
    FROM txn CROSS JOIN finance.accounts a
    WHERE a.code IN (:payable, :trust_cash)
)
SELECT id FROM txn
"""
)

MARK_PAYOUT_SENT = text(
    """
UPDATE finance.owner_payouts
SET status = 'sent', sent_at = :sent_at, reference = coalesce(:reference, reference),
    transaction_id = :txn
WHERE id = :id AND status IN ('pending', 'failed')
"""
)

MARK_PAYOUT_FAILED = text(
    """
UPDATE finance.owner_payouts
SET status = 'failed', failed_at = :failed_at, failure_reason = :reason,
    reference = coalesce(:reference, reference)
WHERE id = :id AND status = 'pending'
"""
)
