# The containers of a step. The last stage, `worker`, is what the platform deploys (the
# default target): the runtime, the component, the worker, and none of the local-run tools.
# `local` adds those (the local platform, the demo provider and driver) for docker compose.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from the pins, so code changes do not reinstall them.
COPY pyproject.toml constraints.txt README.md ./
COPY runtime/__init__.py runtime/__init__.py
RUN pip install -c constraints.txt pika requests aiohttp pydantic structlog cryptography redis orjson prometheus-client jsonata-python xmltodict arrow \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin worker \
    && mkdir -p /data && chown worker /data

COPY lib ./lib
COPY component.json verifyCredentials.py ./


FROM base AS local

# The local platform's own: its schedules' cron expressions
RUN pip install -c constraints.txt croniter
COPY runtime ./runtime
COPY demo ./demo
RUN pip install --no-deps -c constraints.txt . && python -m runtime validate

USER worker
CMD ["python", "-m", "runtime", "run"]


# The demo's Node.js step (demo/components/reply-node) on elastic.io's sailor, for docker
# compose: Debian's Node.js on the same base, so it builds wherever the Python image does.
FROM python:3.11-slim AS node-step
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /component --shell /usr/sbin/nologin worker
WORKDIR /component
COPY demo/components/reply-node/package.json demo/components/reply-node/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY demo/components/reply-node/component.json ./
COPY demo/components/reply-node/lib ./lib
USER worker
CMD ["node", "node_modules/elasticio-sailor-nodejs/run.js"]


FROM base AS worker

# Which build this is, for registries and scanners: VERSION follows pyproject.toml (a test
# holds them equal); give the rest when building, e.g.
# --build-arg SOURCE="$(git remote get-url origin)" --build-arg REVISION="$(git rev-parse HEAD)".
ARG VERSION=0.1.0
ARG SOURCE=""
ARG REVISION=""
LABEL org.opencontainers.image.title="eio-python-runtime worker" \
      org.opencontainers.image.description="A step of an integration flow: the Python runtime and its component" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}"

COPY runtime ./runtime
RUN rm -rf runtime/devtools \
    && pip install --no-deps -c constraints.txt . \
    && python -m runtime validate

USER worker

# Writes nothing but its health file and lock files in /tmp: runs with a read-only root
# filesystem and a tmpfs on /tmp (docker run --read-only --tmpfs /tmp).

# Prometheus metrics on :9464/metrics; /livez (the I/O loop turns) and /readyz (consuming,
# both broker connections open) for Kubernetes probes. Unset the variable to close the port.
ENV ELASTICIO_METRICS_PORT=9464
EXPOSE 9464

# Healthy while the worker consumes: asks /readyz on the port above (runtime/health.py
# imports no more than the socket module: a few ms of CPU a call).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "runtime", "health", "--probe", "ready"]

CMD ["python", "-m", "runtime", "run"]
