# syntax=docker/dockerfile:1
# Without Docker: `make image` builds an equivalent image (platform/image.sh; docs/image.md compares the two).
# The operator image: multi-stage, pinned base, non-root. The same image serves the `kubectl-tenant`
# console script (`docker run --entrypoint kubectl-tenant ...`), though users install that with pip.
#
# Base pinned by tag and digest. The digest was taken from a public, Renovate-maintained Dockerfile
# (python:3.11.10-slim-bookworm) and could not be re-checked against Docker Hub from this machine;
# run `crane digest python:3.11.10-slim-bookworm` (or let Renovate bump it) before relying on it.
ARG PYTHON_IMAGE=docker.io/library/python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Build a wheel of the package and of every dependency, so the runtime stage needs no compiler.
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/python -c "import tenancy_operator.handlers,tenancy_operator.backends.mongodb,tenancy_operator.backends.search,tenancy_operator.backends.mongodb_export,tenancy_operator.backends.search_export"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="tenancy-operator" \
      org.opencontainers.image.description="Kubernetes operator: one Tenant in, an isolated slice of every backing service out" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tenancy-dev/tenancy-operator"
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    TENANCY_LIVENESS=http://0.0.0.0:8080/healthz
COPY --from=build /opt/venv /opt/venv
# pg_dump/pg_restore for archives (/usr/lib/postgresql/15/bin); a Backend of another major version needs
# that version's client too (TENANCY_PG_BINDIR sets the pattern).
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client-15 && rm -rf /var/lib/apt/lists/*
# 65532 matches the chart's runAsUser; the image works with a read-only root filesystem (/tmp is a volume).
RUN groupadd --system --gid 65532 tenancy && useradd --system --uid 65532 --gid 65532 --no-create-home tenancy
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["tenancy-operator"]
