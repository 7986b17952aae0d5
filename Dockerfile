# Production image: one image, every process (web, worker, beat, flower) by command.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SOMA_DEPLOYMENT_MODE=PROD \
    PROMETHEUS_MULTIPROC_DIR=/tmp/soma-metrics

RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 soma

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=soma:soma . .
# collectstatic needs settings but no services: give it throwaway values.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret-build-only-not-a-secret \
    SOMA_DEPLOYMENT_MODE=DEV REDIS_URL=redis://localhost:6379/0 \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 SOMA_FERNET_KEYS=MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE= \
    python manage.py collectstatic --noinput

USER soma
# The web listens on $PORT (8000 unless `docker run -e PORT=…` says otherwise).
EXPOSE 8000
# Empties the metrics directory, then runs the command (web, worker, beat, flower).
ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
CMD ["sh", "-c", "exec uvicorn somaagent.asgi:application --host 0.0.0.0 --port \"${PORT:-8000}\" --no-access-log"]
