"""Alembic migrations: env.py and versions/. A package so an installed wheel carries them."""
