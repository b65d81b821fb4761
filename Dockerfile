# session-promotions: a Bytewax dataflow service.
# Build: docker build -t session-promotions .   Run: see README ("Deploy").
# Bytewax 0.21.1 ships wheels for CPython <= 3.12, hence 3.12 (bookworm pinned for repeatability).
FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY promotion ./promotion
COPY dataflows ./dataflows
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.12-slim-bookworm
# Numeric uid/gid: Kubernetes can only enforce runAsNonRoot on a numeric USER.
RUN groupadd --gid 10001 promotions \
    && useradd --create-home --uid 10001 --gid 10001 promotions \
    && mkdir -p /var/lib/promotions/recovery /var/lib/promotions/api \
    && chown -R 10001:10001 /var/lib/promotions
COPY --from=build /install /usr/local
# The entrypoint lives in the working directory because waxctl's Helm chart starts containers
# with `sh ./entrypoint.sh`; it is run with `sh`, so no exec bit is needed.
WORKDIR /app
COPY deploy/entrypoint.sh ./entrypoint.sh
USER 10001:10001
ENV PYTHONUNBUFFERED=1 \
    BYTEWAX_DATAFLOW_API_CACHE_PATH=/var/lib/promotions/api
# recovery/ holds the recovery partitions (BYTEWAX_RECOVERY_DIRECTORY); api/ the dataflow.json.
VOLUME ["/var/lib/promotions"]
# 3030: Bytewax API (/metrics, /dataflow) when BYTEWAX_DATAFLOW_API_ENABLED is set.
EXPOSE 3030
# Bytewax shuts down cleanly on SIGINT; on SIGTERM Python as PID 1 would have no handler.
STOPSIGNAL SIGINT
ENTRYPOINT ["sh", "/app/entrypoint.sh"]
