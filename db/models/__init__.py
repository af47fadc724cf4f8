"""All models, one module per Postgres schema. Importing this registers every table."""

from db.models import (  # noqa: F401
    channel,
    comms,
    directory,
    finance,
    inventory,
    ops,
    property,
    ref,
    reservations,
    service,
    team,
)
