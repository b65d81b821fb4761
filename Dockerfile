# session-promotions: a Bytewax dataflow service.
# Build: docker build -t session-promotions .   Run: see README ("Deploy").
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY promotion ./promotion
COPY dataflows ./dataflows
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 promotions \
    && mkdir -p /var/lib/promotions/recovery /var/lib/promotions/api \
    && chown -R promotions /var/lib/promotions
COPY --from=build /install /usr/local
USER promotions
WORKDIR /var/lib/promotions
ENV BYTEWAX_DATAFLOW_API_CACHE_PATH=/var/lib/promotions/api \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/promotions"]
ENTRYPOINT ["python", "-m", "bytewax.run", "dataflows.promotions"]
