"""Shared test helpers: database lifecycle, a real worker subprocess."""
