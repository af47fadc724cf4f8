"""Every SQL statement of the finance jobs, one named constant each (docs/MONEY.md has the
ledger design they follow). Bind parameters only; account codes come in as parameters from
tasks.statements.money, the one list of them in Python."""

from __future__ import annotations

from sqlalchemy import text

# -- finance.post_payments ---------------------------------------------------------------------

# One batch of guest payments, in one statement: the oldest unposted ones received by as_of
# are claimed (rows another run holds are skipped); those naming no known reservation get
# their error; each of the others becomes one journal entry (reference 'guest_payment' + its
# id, posted once by uq_transactions_posted_once), dated the day it was received in the
# property's zone: Dr 1010 Trust cash / Cr 2100 Guest rent clearing for a payment, the other
# way round for a refund (a negative amount), the clearing line naming the stay and property;
# the payment is marked with its transaction. Counts come back as one row.
POST_PAYMENTS = text(
    """
WITH claimed AS (
    SELECT g.id, g.reservation_id, g.amount, g.received_at, g.external_ref
    FROM finance.guest_payments g
    WHERE g.transaction_id IS NULL AND g.error IS NULL AND g.received_at <= :as_of
    ORDER BY g.received_at, g.id
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
),
known AS (
    SELECT c.*, r.property_id, coalesce(r.confirmation_code, 'no code') AS code,
           (c.received_at AT TIME ZONE p.timezone)::date AS txn_date
    FROM claimed c
    JOIN reservations.reservations r ON r.id = c.reservation_id
    JOIN property.properties p ON p.id = r.property_id
),
errors AS (
    UPDATE finance.guest_payments g
    SET error = 'unknown reservation ' || CAST(g.reservation_id AS text)
    FROM claimed c
    WHERE g.id = c.id AND NOT EXISTS (SELECT 1 FROM known k WHERE k.id = c.id)
    RETURNING g.id
),
txns AS (
    INSERT INTO finance.transactions (txn_date, description, reference_type, reference_id)
    SELECT k.txn_date,
           format('Guest %s %s, stay %s', CASE WHEN k.amount > 0 THEN 'payment' ELSE 'refund' END,
                  k.external_ref, k.code),
           'guest_payment', k.id
    FROM known k
    ORDER BY k.received_at, k.id
    ON CONFLICT (reference_type, reference_id)
        WHERE reference_type IN ('guest_payment', 'owner_payout') DO NOTHING
    RETURNING id, reference_id
),
lines AS (
    INSERT INTO finance.transaction_lines
        (transaction_id, account_id, property_id, reservation_id, debit, credit, memo)
    SELECT t.id, a.id, side.property_id, side.reservation_id, greatest(side.amount, 0),
           greatest(-side.amount, 0), side.memo
    FROM txns t
    JOIN known k ON k.id = t.reference_id
    CROSS JOIN LATERAL (VALUES
        (CAST(:trust_cash AS text), NULL::uuid, NULL::uuid, k.amount, k.external_ref),
        (CAST(:clearing AS text), k.property_id, k.reservation_id, -k.amount, k.code)
    ) AS side (code, property_id, reservation_id, amount, memo)
    JOIN finance.accounts a ON a.code = side.code
    RETURNING 1
),
marked AS (
    UPDATE finance.guest_payments g SET transaction_id = t.id
    FROM txns t WHERE g.id = t.reference_id
    RETURNING g.amount
)
SELECT (SELECT count(*) FROM claimed) AS claimed,
       (SELECT count(*) FROM marked) AS posted,
       (SELECT count(*) FROM marked WHERE amount < 0) AS refunds,
       (SELECT coalesce(sum(amount), 0) FROM marked) AS net_amount,
       (SELECT count(*) FROM errors) AS errors,
       (SELECT count(*) FROM lines) AS ledger_lines
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
