# One image for every role: a country node, the coordinator, and the one-shot setup of the compose lab.
#
# The base is pinned by digest so that a rebuild gets the same Debian and CPython bytes. To move to a newer
# python:3.11-slim (do it for every CPython or Debian security release), look up the tag's current index digest
# with `docker buildx imagetools inspect python:3.11-slim` (the "Digest:" line) or
# `crane digest python:3.11-slim`, and replace the digest below; then rebuild and run the tests.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# Stage 1: the dependencies, exactly as the lock files pin them (every file checked against its hash). The
# build lock comes first (setuptools: pysodium comes only as source, and an isolated build would fetch its
# tools unchecked). This stage changes only when a lock does, so code changes reuse its layer.
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
COPY requirements-build.lock requirements.lock /tmp/
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements-build.lock \
 && /opt/venv/bin/pip install --require-hashes --no-deps --no-build-isolation -r /tmp/requirements.lock

# Stage 2: ncpx itself, built with the locked setuptools and nothing fetched, into a folder of its own so that
# the runtime image can take it as a separate, small layer.
FROM deps AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY keys ./keys
COPY node ./node
RUN /opt/venv/bin/pip install --no-deps --no-index --no-build-isolation --target /opt/ncpx .

# Stage 3: what runs. No compiler, no pip cache, no source tree.
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ncpx" \
      org.opencontainers.image.description="National Contact Point eXchange: a country node or the coordinator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"

# libsodium: ristretto255 for private matching (pysodium loads it at run time). The base digest fixes the
# Debian release; its security updates replace the package version, so an exact pin would break the build
# after every one of them rather than make it reproducible.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsodium23 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 ncpx \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data --shell /usr/sbin/nologin ncpx \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && chmod 0700 /data

COPY --from=deps /opt/venv /opt/venv
COPY --from=build /opt/ncpx /opt/ncpx

# Nothing is written outside /data (the node's folder, a volume) and /tmp: no bytecode, no caches, so the
# container runs with a read-only root file system. NCPX_CONFIG is read by `ncpx node serve` and `ncpx health`.
ENV PATH=/opt/ncpx/bin:/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/ncpx \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NCPX_CONFIG=/data/node.toml

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8100 8200
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["ncpx", "health"]
ENTRYPOINT ["ncpx"]
CMD ["node", "serve"]
