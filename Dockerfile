# session-promotions: a Bytewax dataflow service, with its Rust kernel (kernel/) built here.
# Build: docker build -t session-promotions .   (or `make image`)   Run: see README ("Deploy").
# Bytewax 0.21.1 ships wheels for CPython <= 3.12, hence 3.12 (bookworm pinned for repeatability).
# BASE_IMAGE: any Debian bookworm image with Python 3.11 or 3.12 in /usr/local (the python:slim
# layout); `make image` on a machine without a registry passes one made from Debian's archive.
ARG BASE_IMAGE=python:3.12-slim-bookworm

# The kernel wheel. Debian bookworm's own rustc (1.63) is too old; its rustc-web/cargo-web (1.85
# in bookworm, newer from bookworm-security) fit the crate's rust-version (1.75). The wheel is
# abi3 (CPython >= 3.11), so whichever Python the base has builds the one the final stage takes.
FROM ${BASE_IMAGE} AS kernel
# Versions float with Debian's security updates (old ones leave the archive); Cargo.lock pins
# what is compiled.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cargo-web gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src/kernel
# maturin at the version kernel/pyproject.toml pins (read from it, so there is one pin).
COPY kernel/pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" > /tmp/build-requires.txt \
    && python -m venv /opt/maturin \
    && /opt/maturin/bin/pip install --no-cache-dir -r /tmp/build-requires.txt
# Crates from the committed Cargo.lock, in a layer of their own: only a new lock refetches.
COPY kernel/Cargo.toml kernel/Cargo.lock ./
RUN mkdir src && touch src/lib.rs && cargo fetch --locked && rm -rf src
COPY kernel/src ./src
# --frozen: the lock as committed, and nothing more from the network.
RUN /opt/maturin/bin/maturin build --release --frozen --out /wheels

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
# The pinned dependencies first, in a layer that only pyproject.toml changes.
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
    && pip install --no-cache-dir --prefix=/install -r /tmp/requirements.txt
COPY promotion ./promotion
COPY dataflows ./dataflows
COPY --from=kernel /wheels /wheels
# The service and its kernel apart from the dependencies: a change to either adds a small layer.
RUN pip install --no-cache-dir --prefix=/install-app --no-deps . /wheels/*.whl

FROM ${BASE_IMAGE}
# Numeric uid/gid: Kubernetes can only enforce runAsNonRoot on a numeric USER.
RUN groupadd --gid 10001 promotions \
    && useradd --create-home --uid 10001 --gid 10001 promotions \
    && mkdir -p /var/lib/promotions/recovery /var/lib/promotions/api \
    && chown -R 10001:10001 /var/lib/promotions
COPY --from=build /install /usr/local
COPY --from=build /install-app /usr/local
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
