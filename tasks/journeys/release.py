"""The release sweep: due scheduled messages become `queued`, door codes open and expire
(SPEC 7.6; `journeys.release_due`, beat, every minute).

One sweep:

1. door codes whose window has ended become `expired`, those whose window has opened
   `active` (one statement, two UPDATEs through partial indexes: nothing to do costs two
   index probes);
2. the scheduled messages due by `as_of` are claimed in batches (FOR UPDATE SKIP LOCKED,
   through the partial index on scheduled_for), each with its rule, template, stay, guest,
   property and live door code, and for each the sweep decides:
   - its stay is cancelled (or gone), its rule inactive or deleted: `cancelled`, with the
     reason, never sent (a stay cancelled by a service that did not enqueue a plan is caught
     here, at the latest);
   - the sweep comes more than LATE_AFTER after the message's time (an outage) and the rule's
     late_policy is `skip`: `cancelled` (`late_skipped`), as for a stay booked too late;
   - the rule's quiet hours cover `as_of` in the property's zone (the rule changed since the
     plan, which already moved it out of them): still `scheduled`, for when they end;
   - the guest has no address for the template's channel: `failed` (error, `no_recipient`);
   - the template fails to render: `failed`, with the template error in `error` and
     `render_failed` in status_reason: that one message, visibly, never the sweep;
   - otherwise `queued`, with subject, body and recipient rendered now (so a guest's new
     address or a corrected template counts until the last moment).
   A scheduled message that is not a journey's (no rule, not keyed `journey:`) is a plain
   delayed message another service wrote ready to go: it is queued as it is.
3. the decisions are written in one UPDATE that only touches rows still `scheduled`.

A singleton (the task base's lock); two sweeps at once would still release each message once,
since each claims with SKIP LOCKED and writes only what is still scheduled.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.orm import Session

from tasks.journeys import queries as q
from tasks.journeys.planning import LATE_AFTER
from tasks.journeys.render import RenderError, context_of, render
from workers.settings import Settings, get_settings

log = logging.getLogger("cmw.jobs.journeys")

# Messages claimed per round: one round renders them in well under a second.
BATCH = 1_000
# At most this many per sweep (about 20 s of rendering at the slowest measured rate); the
# rest wait for the next minute's sweep, so one sweep never nears the task time limit.
MAX_PER_SWEEP = 20_000
ERROR_CHARS = 1_000


def release_due(
    session: Session,
    *,
    as_of: dt.datetime,
    settings: Settings | None = None,
    batch: int = BATCH,
    max_per_sweep: int = MAX_PER_SWEEP,
) -> dict[str, int]:
    """Open and expire door codes, then release the messages due by `as_of`."""
    settings = settings or get_settings()
    codes = session.execute(q.SWEEP_CODES, {"as_of": as_of}).one()
    summary = {
        "codes_expired": codes.expired,
        "codes_activated": codes.activated,
        "released": 0,
        "failed": 0,
        "cancelled": 0,
        "deferred": 0,
    }
    params = {
        "as_of": as_of,
        "check_in_time": settings.cmw_check_in_time,
        "check_out_time": settings.cmw_check_out_time,
    }
    seen = 0
    while seen < max_per_sweep:
        rows = session.execute(
            q.CLAIM_DUE, {**params, "batch": min(batch, max_per_sweep - seen)}
        ).all()
        if not rows:
            break
        seen += len(rows)
        decisions = [decide(row, as_of) for row in rows]
        written = session.execute(q.APPLY_RELEASE, _columns(decisions)).scalars().all()
        for status in written:
            key = {"queued": "released", "scheduled": "deferred"}.get(status, status)
            summary[key] += 1
        if len(rows) < batch:
            break
    return summary


def decide(row: Any, as_of: dt.datetime) -> dict[str, Any]:
    """What becomes of one claimed message (see the module docstring)."""
    decision: dict[str, Any] = {"id": row.id, "status": "queued"}
    if not row.is_journey and row.rule_id is None:
        return decision  # a plain delayed message, ready as written
    if row.stay_id is None or not row.stay_live:
        return {**decision, "status": "cancelled", "reason": "stay_cancelled"}
    if row.rule_id is None:
        return {**decision, "status": "cancelled", "reason": "rule_deleted"}
    if not (row.rule_active and row.template_active):
        return {**decision, "status": "cancelled", "reason": "rule_inactive"}
    if row.late_policy == "skip" and row.scheduled_for < as_of - LATE_AFTER:
        # The sweep itself is late (an outage): a `skip` message past its time never goes,
        # as it would not have for a stay booked after it.
        return {**decision, "status": "cancelled", "reason": "late_skipped"}
    if row.release_at > as_of:
        return {**decision, "status": "scheduled", "scheduled_for": row.release_at}
    channel = row.channel
    recipient = {"email": row.email, "sms": row.phone}.get(channel, row.recipient)
    if not recipient:
        return {
            **decision,
            "status": "failed",
            "reason": "no_recipient",
            "error": f"the guest has no address for channel {channel}",
        }
    try:
        context = context_of(row)
        subject = render(row.subject_template, context)
        body = render(row.body_template, context) or ""
    except RenderError as exc:
        log.warning("journey message %s: template %s failed: %s", row.id, row.template_code, exc)
        return {
            **decision,
            "status": "failed",
            "reason": "render_failed",
            "error": f"template {row.template_code}: {exc}"[:ERROR_CHARS],
        }
    return {
        **decision,
        "channel": channel,
        "recipient": recipient,
        "subject": subject,
        "body": body,
    }


def _columns(decisions: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """APPLY_RELEASE's arrays, one per column, in the decisions' order."""
    keys = {
        "ids": "id",
        "statuses": "status",
        "channels": "channel",
        "recipients": "recipient",
        "subjects": "subject",
        "bodies": "body",
        "errors": "error",
        "reasons": "reason",
        "scheduled_for": "scheduled_for",
    }
    return {param: [d.get(key) for d in decisions] for param, key in keys.items()}
