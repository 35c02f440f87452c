# syntax=docker/dockerfile:1
#
# memtrace-server: the REST API (`memtrace serve`) with the SQLite and PostgreSQL stores.
#
#   docker build -t memtrace-server:local .
#   docker run --init -p 127.0.0.1:9100:9100 -v memtrace-data:/data memtrace-server:local
#
# Build context: the repository root (.dockerignore lets in only the two packages).
# See docs/deployment.md.

# ---- build: a virtual environment with both packages, built from the local source tree ----
FROM python:3.12-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/memtrace

COPY packages/memtrace-core /src/packages/memtrace-core
COPY packages/memtrace-server /src/packages/memtrace-server

# Both in one command, so that memtrace-server's memtrace-core requirement is met by the local
# package (with the asyncpg driver of its postgres extra) and never taken from the index.
RUN /opt/memtrace/bin/pip install --no-cache-dir \
        "/src/packages/memtrace-core[postgres,arc]" \
        /src/packages/memtrace-server

# ---- runtime: the same base image, the virtual environment, an unprivileged user ----
FROM python:3.12-slim

LABEL org.opencontainers.image.title="memtrace-server" \
      org.opencontainers.image.description="memtrace: durable, time-ordered memory for AI agents" \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --system --gid 10001 memtrace \
    && useradd --system --uid 10001 --gid memtrace --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin memtrace \
    && mkdir /data \
    && chown memtrace:memtrace /data

COPY --from=build /opt/memtrace /opt/memtrace

# The embedded SQLite store lives in the /data volume. On PostgreSQL, set MEMTRACE_STORAGE_URL
# to a postgresql:// URL (the environment wins over memtrace.toml; see docs/configuration.md).
ENV PATH="/opt/memtrace/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    MEMTRACE_STORAGE_URL="sqlite:////data/memtrace.db"

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001

EXPOSE 9100

# /ready answers 200 only once the store is reachable (503 otherwise); urlopen raises on 503.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/ready', timeout=4)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["memtrace"]
CMD ["serve", "--host", "0.0.0.0", "--port", "9100"]
