"""Run the Alembic migrations from code (cmw migrate, cmw dev, the test fixtures).

`alembic upgrade head` from the repository root does the same through alembic.ini; this path
needs no ini file, so it also works from an installed wheel (the migrations package ships in it).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).resolve().parent))
    # env.py reads this before falling back to Settings, so a caller can point it anywhere.
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def downgrade_base(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "base")
