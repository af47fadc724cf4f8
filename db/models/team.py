"""Schema team: teams and the staff directory (who works on which team, under whom)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, check_in, created_at, updated_at, uuid_pk


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = {"schema": "team"}

    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    # Where the team's notifications go (an address or channel); null: the ops default.
    notify_email: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class TeamDirectory(Base):
    __tablename__ = "team_directory"
    __table_args__ = (
        check_in("status", ("active", "inactive", "on_leave", "terminated")),
        Index("ix_team_directory_team_id", "team_id"),
        Index("ix_team_directory_contact_id", "contact_id"),
        {"schema": "team"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("directory.contacts.id", ondelete="RESTRICT")
    )
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("team.teams.id", ondelete="SET NULL")
    )
    manager_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("team.team_directory.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(server_default="active")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
