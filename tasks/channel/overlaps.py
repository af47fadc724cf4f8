"""Double bookings found by channel sync (SPEC 6.4, 7.1).

A stay of this mapping that overlaps another live stay of the same property (guest and owner
stays; blocks overlap stays by design: a channel re-exporting our calendar shows our stays as
its blocks) raises one urgent RSV ticket per pair, never a rejected row, and never again for
the same pair, resolved or not: every pair is recorded in `channel.overlap_pairs` when first
found. One import raises at most MAX_TICKETS_PER_IMPORT pair tickets for its property; past
that it raises one ticket for the property naming how many pairs it found. While that summary
is open, the pairs later imports find are recorded and noted on it as events, not raised one
by one. Every pair is still recorded, so none is raised later either: a hostile feed of 200
events on the same dates is 19,900 pairs, 10 tickets and one summary, not 19,900 tickets and
19,900 `sla.apply` jobs. One import records at most MAX_PAIRS_PER_IMPORT new pairs (the scan
stops there), so even the largest feed allowed, 5,000 events on the same dates (12.5 million
pairs), costs one import a bounded amount of work; later imports record the rest.

Runs under the property's advisory lock (tasks.channel.sync), so two feeds of one property
never check overlaps without seeing each other's stays.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from tasks.channel import queries as q

MAX_TICKETS_PER_IMPORT = 10
# New pairs one import records at most (see the module docstring).
MAX_PAIRS_PER_IMPORT = 100_000


def raise_overlap_tickets(
    session: Session,
    *,
    mapping_id: uuid.UUID,
    property_id: uuid.UUID,
    as_of: dt.datetime,
    today: dt.date,
) -> tuple[int, list[uuid.UUID]]:
    """(this mapping's stays that overlap another live stay, the tickets created)."""
    row = session.execute(
        q.OVERLAP_TICKETS,
        {
            "mapping_id": mapping_id,
            "property_id": property_id,
            "as_of": as_of,
            "today": today,
            "cap": MAX_TICKETS_PER_IMPORT,
            "pair_limit": MAX_PAIRS_PER_IMPORT,
        },
    ).one()
    return row.conflicts, list(row.tickets)
