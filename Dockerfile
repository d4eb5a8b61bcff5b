# The container the platform deploys for a step: the runtime, the component, the worker.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from the pins, so code changes do not reinstall them.
COPY pyproject.toml constraints.txt README.md ./
COPY runtime/__init__.py runtime/__init__.py
RUN pip install -c constraints.txt pika requests pydantic structlog cryptography redis

COPY runtime ./runtime
COPY lib ./lib
COPY component.json verifyCredentials.py ./
COPY demo ./demo
RUN pip install --no-deps -c constraints.txt . \
    && python -m runtime validate \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin worker \
    && mkdir -p /data && chown worker /data

USER worker

# Healthy while the worker consumes: it touches its health file every second.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "runtime", "health"]

CMD ["python", "-m", "runtime", "run"]
