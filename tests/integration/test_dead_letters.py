"""Working the dead letters from the command line (SPEC 7.3): `cmw dead-letters list | show |
replay | discard` as subprocesses against the suite's PostgreSQL and Redis. Every action is
recorded on the row; a letter that is not open is never replayed, also when replays race; the
message a replay sends is read back from the broker. (A replayed task running through a real
worker is in tests/e2e/test_dead_letters_e2e.py.)"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import uuid

import kombu.exceptions
import pytest
from sqlalchemy import text

from tests.support.cli import cmw, cmw_in_terminal, json_lines, tsv
from tests.support.services import ROOT

QUEUE = "default"  # where ops.purge is routed


@pytest.fixture
def broker(redis_client):
    """The suite's Redis broker with an empty `default` queue; what was sent to it is read back
    with `sent()`."""
    redis_client.delete(QUEUE)
    yield redis_client
    redis_client.delete(QUEUE)


def sent(redis_client) -> list[tuple[str, str, dict]]:
    """(task name, task id, kwargs) of every message waiting in the `default` queue."""
    messages = []
    for raw in redis_client.lrange(QUEUE, 0, -1):
        message = json.loads(raw)
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages.append((message["headers"]["task"], message["headers"]["id"], kwargs))
    return messages


def add_letter(session, *, task: str = "ops.purge", payload=None, status: str = "open", **extra):
    row = session.execute(
        text(
            "INSERT INTO ops.dead_letters (task_name, task_id, payload, error, error_kind,"
            " status, resolved_at, resolution, replay_task_id)"
            " VALUES (:task, :task_id, CAST(:payload AS jsonb), :error, 'validation', :status,"
            " :resolved_at, :resolution, :replay_task_id) RETURNING id"
        ),
        {
            "task": task,
            "task_id": str(uuid.uuid4()),
            "payload": json.dumps(payload if payload is not None else {"keep_days": "abc"}),
            "error": extra.get(
                "error", "invalid payload for ops.purge: keep_days: Input should be"
            ),
            "status": status,
            "resolved_at": extra.get("resolved_at"),
            "resolution": extra.get("resolution"),
            "replay_task_id": extra.get("replay_task_id"),
        },
    ).scalar_one()
    session.commit()
    return str(row)


def letter(session, letter_id: str):
    session.expire_all()
    return session.execute(
        text(
            "SELECT status, resolved_at, resolution, replay_task_id FROM ops.dead_letters"
            " WHERE id = :id"
        ),
        {"id": letter_id},
    ).one()


# -- list and show -------------------------------------------------------------------------


def test_list_shows_the_open_letters_unless_asked_otherwise(session):
    open_one = add_letter(session)
    other_task = add_letter(session, task="sla.apply", payload={"ticket_id": "x"})
    add_letter(
        session,
        status="discarded",
        resolved_at="2026-12-01T00:00:00Z",
        resolution="sent twice by the portal",
    )
    rows = tsv(cmw("dead-letters", "list").stdout)
    assert {r["id"] for r in rows} == {open_one, other_task}
    assert all(r["status"] == "open" for r in rows)
    only_purge = json_lines(cmw("dead-letters", "list", "--task", "ops.purge", "--json").stdout)
    assert [r["id"] for r in only_purge] == [open_one]
    assert only_purge[0]["error"].startswith("invalid payload for ops.purge")
    everything = json_lines(cmw("dead-letters", "list", "--status", "all", "--json").stdout)
    assert sorted(r["status"] for r in everything) == ["discarded", "open", "open"]
    discarded = json_lines(cmw("dead-letters", "list", "--status", "discarded", "--json").stdout)
    assert [r["resolution"] for r in discarded] == ["sent twice by the portal"]
    assert cmw("dead-letters", "list", "--status", "closed").returncode == 2


@pytest.mark.parametrize("columns", [40, 120])
def test_list_on_a_terminal_never_cuts_an_id(session, columns):
    ids = [add_letter(session) for _ in range(2)]
    code, shown = cmw_in_terminal("dead-letters", "list", columns=columns)
    assert code == 0
    assert all(letter_id in shown for letter_id in ids) and "ops.purge" in shown


def test_show_prints_one_letter_whole(session):
    letter_id = add_letter(session, payload={"keep_days": "abc", "note": "ünïcode"})
    shown = cmw("dead-letters", "show", letter_id)
    assert shown.returncode == 0, shown.stderr
    assert letter_id in shown.stdout and '"note": "ünïcode"' in shown.stdout
    [as_json] = json_lines(cmw("dead-letters", "show", letter_id, "--json").stdout)
    assert as_json["payload"] == {"keep_days": "abc", "note": "ünïcode"}
    assert as_json["status"] == "open" and as_json["replay_task_id"] is None
    missing = cmw("dead-letters", "show", str(uuid.uuid4()))
    assert missing.returncode == 1 and "no dead letter" in missing.stderr
    malformed = cmw("dead-letters", "show", "not-an-id")
    assert malformed.returncode == 1 and "is not a dead letter id" in malformed.stderr


# -- replay ---------------------------------------------------------------------------------


def test_replay_sends_the_stored_payload_and_records_the_new_task_id(session, broker):
    letter_id = add_letter(session, payload={"keep_days": 12})
    done = cmw("dead-letters", "replay", letter_id)
    assert done.returncode == 0, done.stderr
    row = letter(session, letter_id)
    assert row.status == "replayed" and row.resolved_at is not None
    assert row.resolution == "replayed with the stored payload"
    assert sent(broker) == [("ops.purge", row.replay_task_id, {"keep_days": 12})]
    assert row.replay_task_id in done.stdout
    again = cmw("dead-letters", "replay", letter_id)
    assert again.returncode == 1
    assert f"is replayed (replayed as {row.replay_task_id}" in again.stderr
    assert len(sent(broker)) == 1


def test_replay_with_a_corrected_payload(session, broker):
    letter_id = add_letter(session, payload={"keep_days": "abc"})
    done = cmw("dead-letters", "replay", letter_id, "--payload", '{"keep_days": 7}')
    assert done.returncode == 0, done.stderr
    row = letter(session, letter_id)
    assert sent(broker) == [("ops.purge", row.replay_task_id, {"keep_days": 7})]
    assert row.resolution == 'replayed with a corrected payload: {"keep_days": 7}'
    assert cmw("dead-letters", "replay", letter_id, "--payload", "[1]").returncode == 2


def test_concurrent_replays_of_one_letter_send_it_exactly_once(session, broker):
    letter_id = add_letter(session, payload={"keep_days": 9})
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "dead-letters", "replay", letter_id],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=90), p.stdout.read(), p.stderr.read()) for p in procs]
    winners = [out for code, out, _ in outcomes if code == 0]
    losers = [err for code, _, err in outcomes if code == 1]
    assert len(winners) == 1 and len(losers) == 3, outcomes
    assert all("is replayed" in err for err in losers)
    row = letter(session, letter_id)
    assert row.replay_task_id in winners[0]
    assert sent(broker) == [("ops.purge", row.replay_task_id, {"keep_days": 9})]


def test_replaying_several_letters_reports_each_and_fails_if_any_was_refused(session, broker):
    open_id = add_letter(session, payload={"keep_days": 3})
    closed_id = add_letter(
        session, status="discarded", resolved_at="2026-12-01T00:00:00Z", resolution="duplicate"
    )
    done = cmw("dead-letters", "replay", open_id, closed_id)
    assert done.returncode == 1
    assert f"replayed {open_id}" in done.stdout
    assert f"dead letter {closed_id} is discarded" in done.stderr
    assert [kwargs for _, _, kwargs in sent(broker)] == [{"keep_days": 3}]


def test_a_failed_send_gives_the_claim_back(session, broker):
    from db.session import session_scope
    from workers.dead_letters import replay

    letter_id = add_letter(session, payload={"keep_days": 4})

    def broker_down(task_name: str, kwargs: dict, task_id: str) -> None:
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:1")

    with pytest.raises(kombu.exceptions.OperationalError):
        replay(session_scope, uuid.UUID(letter_id), send=broker_down)
    row = letter(session, letter_id)
    assert (row.status, row.resolved_at, row.replay_task_id, row.resolution) == (
        "open",
        None,
        None,
        None,
    )
    assert cmw("dead-letters", "replay", letter_id).returncode == 0  # and it can be replayed


def test_a_letter_of_a_task_this_app_does_not_know_stays_open(session, broker):
    letter_id = add_letter(session, task="old.renamed_task", payload={})
    done = cmw("dead-letters", "replay", letter_id)
    assert (
        done.returncode == 1 and "'old.renamed_task', which this app does not know" in done.stderr
    )
    assert letter(session, letter_id).status == "open" and sent(broker) == []


def test_replay_with_the_broker_down_is_one_line_and_leaves_the_letter_open(session):
    letter_id = add_letter(session)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{closed.getsockname()[1]}/0"}
        done = cmw("dead-letters", "replay", letter_id, env=env)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("cannot connect to the broker")
    assert letter(session, letter_id).status == "open"


# -- discard --------------------------------------------------------------------------------


def test_discard_records_the_reason_and_closes_the_letter(session, broker):
    letter_id = add_letter(session)
    done = cmw("dead-letters", "discard", letter_id, "--reason", "the portal sent it twice")
    assert done.returncode == 0, done.stderr
    row = letter(session, letter_id)
    assert (row.status, row.resolution) == ("discarded", "the portal sent it twice")
    assert row.resolved_at is not None and row.replay_task_id is None
    again = cmw("dead-letters", "discard", letter_id, "--reason", "again")
    assert again.returncode == 1 and "is discarded" in again.stderr
    replayed = cmw("dead-letters", "replay", letter_id)
    assert replayed.returncode == 1 and sent(broker) == []
    assert letter(session, letter_id).resolution == "the portal sent it twice"


def test_discard_needs_a_reason(session):
    letter_id = add_letter(session)
    assert cmw("dead-letters", "discard", letter_id).returncode == 2
    blank = cmw("dead-letters", "discard", letter_id, "--reason", "  ")
    assert blank.returncode == 1 and "a reason is required" in blank.stderr
    assert letter(session, letter_id).status == "open"
