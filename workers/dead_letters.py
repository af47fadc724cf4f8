"""Working the dead letters (SPEC 7.3): list, show, replay, discard; the `cmw dead-letters`
commands are a thin layer over these functions.

A dead letter is a task that failed for good (workers.base). It stays `open` until a person
acts on it, and every action is recorded on the row: `replayed` with the new task's id in
`replay_task_id`, or `discarded` with the reason in `resolution`; `resolved_at` says when.

Replays are race-safe by construction: the letter is *claimed* first, by one conditional
`UPDATE ... WHERE status = 'open' RETURNING`, committed, and only the claimant sends the task
(with a task id chosen before the claim, so the row names it from the start). Of two replays at
once, one claims and sends; the other finds the letter no longer open and is refused. If the
send then fails (broker unreachable), the claim is given back (`status` open again) and the
error is raised: a letter is never marked replayed by a task that was not sent. The one case
left is a send that reached the broker but whose confirmation was lost: the letter is reopened
and a later replay sends the task a second time. Tasks are idempotent (SPEC 5), so a task run
twice is harmless, where a letter marked replayed without its task would be lost work.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.models.ops import DEAD_LETTER_STATUSES

LIST_LETTERS = text(
    """
    SELECT id, failed_at, task_name, task_id, status, error_kind, retries, error,
           resolved_at, resolution, replay_task_id
    FROM ops.dead_letters
    WHERE (CAST(:task AS text) IS NULL OR task_name = :task)
      AND (CAST(:status AS text) IS NULL OR status = :status)
    ORDER BY failed_at DESC, id DESC
    LIMIT :limit
    """
)

GET_LETTER = text(
    "SELECT id, failed_at, task_name, task_id, payload, status, error_kind, retries, error,"
    " resolved_at, resolution, replay_task_id, created_at"
    " FROM ops.dead_letters WHERE id = :id"
)

CLAIM_FOR_REPLAY = text(
    """
    UPDATE ops.dead_letters
    SET status = 'replayed', resolved_at = clock_timestamp(), replay_task_id = :replay_task_id,
        resolution = :resolution
    WHERE id = :id AND status = 'open'
    RETURNING task_name, payload
    """
)

# Only the claim this replay made is given back (a later action on the row is left alone).
RELEASE_CLAIM = text(
    """
    UPDATE ops.dead_letters
    SET status = 'open', resolved_at = NULL, replay_task_id = NULL, resolution = NULL
    WHERE id = :id AND status = 'replayed' AND replay_task_id = :replay_task_id
    """
)

DISCARD = text(
    """
    UPDATE ops.dead_letters
    SET status = 'discarded', resolved_at = clock_timestamp(), resolution = :reason
    WHERE id = :id AND status = 'open'
    RETURNING id
    """
)


class LetterError(Exception):
    """An action refused on a letter (unknown, not open, bad input); the message says why."""


@dataclass(frozen=True)
class Replayed:
    letter_id: uuid.UUID
    task_name: str
    task_id: str
    corrected: bool


def parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise LetterError(f"{raw!r} is not a dead letter id (a UUID)") from None


def list_letters(
    session: Session,
    *,
    task: str | None = None,
    status: str | None = "open",
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest letters first, optionally of one task and one status (None: every status)."""
    if status is not None and status not in DEAD_LETTER_STATUSES:
        raise LetterError(f"status must be one of {', '.join(DEAD_LETTER_STATUSES)}")
    rows = session.execute(LIST_LETTERS, {"task": task, "status": status, "limit": limit})
    return [dict(r._mapping) for r in rows]


def get_letter(session: Session, letter_id: uuid.UUID) -> dict[str, Any]:
    row = session.execute(GET_LETTER, {"id": letter_id}).mappings().one_or_none()
    if row is None:
        raise LetterError(f"no dead letter {letter_id}")
    return dict(row)


def _refusal(session: Session, letter_id: uuid.UUID, action: str) -> LetterError:
    """Why a letter could not be claimed: unknown, or no longer open (and what became of it)."""
    row = session.execute(GET_LETTER, {"id": letter_id}).mappings().one_or_none()
    if row is None:
        return LetterError(f"no dead letter {letter_id}")
    when = row["resolved_at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    done = f"replayed as {row['replay_task_id']}" if row["status"] == "replayed" else "discarded"
    return LetterError(
        f"dead letter {letter_id} is {row['status']} ({done} at {when}): only an open letter"
        f" can be {action}"
    )


def replay(
    session_factory: Callable[[], Any],
    letter_id: uuid.UUID,
    *,
    send: Callable[[str, dict[str, Any], str], None],
    payload: dict[str, Any] | None = None,
    known_task: Callable[[str], bool] = lambda name: True,
) -> Replayed:
    """Claim an open letter, then send its task again with the stored payload or `payload`.

    `session_factory` is a `session_scope`-like context manager: the claim commits before the
    send, and a failed send's release commits on its own. `send(task_name, kwargs, task_id)`
    enqueues the task; an exception from it releases the claim and propagates.
    """
    if payload is not None and not isinstance(payload, dict):
        raise LetterError("a corrected payload must be a JSON object")
    replay_task_id = str(uuid.uuid4())
    resolution = (
        "replayed with a corrected payload: " + json.dumps(payload, sort_keys=True)
        if payload is not None
        else "replayed with the stored payload"
    )
    with session_factory() as session:
        claimed = session.execute(
            CLAIM_FOR_REPLAY,
            {"id": letter_id, "replay_task_id": replay_task_id, "resolution": resolution},
        ).one_or_none()
        if claimed is None:
            raise _refusal(session, letter_id, "replayed")
        task_name = claimed.task_name
        if not known_task(task_name):
            # Given back in the same transaction: nothing was sent.
            session.rollback()
            raise LetterError(
                f"dead letter {letter_id} is of task {task_name!r}, which this app does not know"
            )
        kwargs = payload if payload is not None else (claimed.payload or {})
    try:
        send(task_name, kwargs, replay_task_id)
    except BaseException:
        with session_factory() as session:
            session.execute(RELEASE_CLAIM, {"id": letter_id, "replay_task_id": replay_task_id})
        raise
    return Replayed(letter_id, task_name, replay_task_id, corrected=payload is not None)


def discard(session: Session, letter_id: uuid.UUID, *, reason: str) -> None:
    """Close an open letter without running it again; the reason is recorded."""
    reason = reason.strip()
    if not reason:
        raise LetterError("a reason is required to discard a dead letter")
    if session.execute(DISCARD, {"id": letter_id, "reason": reason}).one_or_none() is None:
        raise _refusal(session, letter_id, "discarded")
