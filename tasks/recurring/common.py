"""What the calendar and reservation halves of the recurring rules share: the statuses and stay
types they go by, and the marks they leave (SPEC 6.1). Their SQL is in queries.py."""

from __future__ import annotations

from db.models.service import CLOSED_TICKET_STATUSES

# A stay that is happening (or happened): it occupies its nights and keeps its tickets.
# SPEC 6.1 says "confirmed"; checked_in and checked_out are the same stay later in its life
# (an occurrence caught up after downtime may look at a stay that has since checked in).
LIVE_STAY_STATUSES = ("confirmed", "checked_in", "checked_out")
# Stays that occupy a property for skip_if_occupied / skip_if_vacant, and arrivals that make
# a departure a back-to-back turnover: guests and owners sleep there, a block does not.
OCCUPYING_STAY_TYPES = ("guest", "owner_stay")
# A ticket nobody has started: cancelled with its stay. Anything further along
# (in_progress, pending_*, on_hold) has had work done on it and is left to its team.
NOT_STARTED_TICKET_STATUSES = ("open", "acknowledged")
STARTED_TICKET_STATUSES = ("in_progress", "pending_guest", "pending_vendor", "on_hold")
FINISHED_TICKET_STATUSES = CLOSED_TICKET_STATUSES

TURNOVER_PREFIX = "[Turnover] "
TURNOVER_PRIORITY = "high"

# Written into the data of the events recurring.sync_reservation writes, so a later sync can
# tell its own cancellations (which a re-confirmed stay undoes) from a person's.
ACTOR_TAG = "recurring.sync_reservation"
