"""One module per job. Each task is a thin adapter over a plain domain function."""
