"""Every SQL statement of the finance jobs, one named constant each (docs/MONEY.md has the
ledger design they follow). Bind parameters only; account codes come in as parameters from
tasks.statements.money, the one list of them in Python."""

from __future__ import annotations

from sqlalchemy import text

from db.models.finance import POSTED_ONCE_REFERENCES

# -- finance.post_payments ---------------------------------------------------------------------

# A batch of guest payments is posted by the three statements below, in one transaction, over
# a small temporary table. (One statement with data-modifying CTEs joined to each other was
# planned with one row per CTE and nested loops over them: 135 s for 4,368 payments.)

# Keys, not scans: each statement reaches the batch's rows of big tables (guest_payments,
# reservations) by primary key, pages that are cached. With the default random_page_cost of 4
# the planner preferred to read all of guest_payments (a million rows at scale 10) to update
# the 10,000 of a batch.
PLANNER_SETTINGS = {"random_page_cost": "1.1"}

# A second batch in the same transaction starts afresh.
DROP_BATCH_TABLE = text("DROP TABLE IF EXISTS pg_temp.fin_batch")

# Temporary tables have no statistics until analysed; the joins after them need them.
ANALYZE_BATCH = text("ANALYZE fin_batch")

# The batch, claimed and marked in one UPDATE: the oldest payments received by as_of and
# neither posted nor in error get the id of the journal entry the next statements write
# (fk_guest_payments_transaction_id_transactions is deferred to the commit for this), or, when
# they name no known reservation, their error. The row locks are the claim: a concurrent run
# waits, then finds them posted (the WHERE is checked again) and leaves them. The batch keeps
# what the entries need: the stay's property and the day received in its zone.
CLAIM_PAYMENTS = text(
    """
CREATE TEMP TABLE fin_batch ON COMMIT DROP AS
WITH picked AS (
    SELECT g.id, g.reservation_id, g.received_at
    FROM finance.guest_payments g
    WHERE g.transaction_id IS NULL AND g.error IS NULL AND g.received_at <= :as_of
    ORDER BY g.received_at, g.id
    LIMIT :batch
),
claimed AS (
    -- the batch first, then its stays: never a join over every unposted payment
    SELECT k.id, r.id IS NOT NULL AS known, r.property_id,
           coalesce(r.confirmation_code, 'no code') AS code,
           (k.received_at AT TIME ZONE p.timezone)::date AS txn_date
    FROM picked k
    LEFT JOIN reservations.reservations r ON r.id = k.reservation_id
    LEFT JOIN property.properties p ON p.id = r.property_id
),
marked AS (
    UPDATE finance.guest_payments g
    SET transaction_id = CASE WHEN c.known THEN ops.uuid_generate_v7() END,
        error = CASE WHEN NOT c.known
                     THEN 'unknown reservation ' || CAST(g.reservation_id AS text) END
    FROM claimed c
    WHERE g.id = c.id AND g.transaction_id IS NULL AND g.error IS NULL
    RETURNING g.id, g.reservation_id, g.amount, g.received_at, g.external_ref,
              g.transaction_id AS txn_id, c.known, c.property_id, c.code, c.txn_date
)
SELECT * FROM marked
"""
)

# One journal entry per payment posted, with the id its payment already points at, dated the
# day it was received; reference 'guest_payment' + the payment's id, which
# uq_transactions_posted_once allows once (a second would be an error, never a double entry).
INSERT_PAYMENT_TRANSACTIONS = text(
    """
INSERT INTO finance.transactions (id, txn_date, description, reference_type, reference_id)
SELECT b.txn_id, b.txn_date,
       format('Guest %s %s, stay %s', CASE WHEN b.amount > 0 THEN 'payment' ELSE 'refund' END,
              b.external_ref, b.code),
       'guest_payment', b.id
FROM fin_batch b
WHERE b.known
ORDER BY b.received_at, b.id
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
CROSS JOIN LATERAL (VALUES
    (CAST(:trust_cash AS text), NULL::uuid, NULL::uuid, b.amount, b.external_ref),
    (CAST(:clearing AS text), b.property_id, b.reservation_id, -b.amount, b.code)
) AS side (code, property_id, reservation_id, amount, memo)
JOIN finance.accounts a ON a.code = side.code
WHERE b.known
"""
)

# The batch's counts, as one row.
BATCH_COUNTS = text(
    """
SELECT count(*) AS claimed,
       count(*) FILTER (WHERE NOT known) AS errors,
       count(*) FILTER (WHERE known) AS posted,
       count(*) FILTER (WHERE known AND amount < 0) AS refunds,
       coalesce(sum(amount) FILTER (WHERE known), 0) AS net_amount
FROM fin_batch
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
    f"""
WITH txn AS (
    INSERT INTO finance.transactions (txn_date, description, reference_type, reference_id)
    VALUES ((CAST(:sent_at AS timestamptz) AT TIME ZONE :timezone)::date, :description,
            'owner_payout', :id)
    ON CONFLICT (reference_type, reference_id) WHERE {POSTED_ONCE_REFERENCES} DO NOTHING
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
