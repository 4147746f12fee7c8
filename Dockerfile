# syntax=docker/dockerfile:1.7
# The worker image. Built for linux/arm64 (Graviton) to match the task's runtimePlatform:
#   docker buildx build --platform linux/arm64 -t order-service:local .
# The same image runs the worker (default) and the one-off migration (`migrate`).

# Exact tag for people, digest for machines (the multi-arch index digest, so linux/arm64 and
# linux/amd64 both resolve). Both stages share it, so the venv's interpreter path is valid.
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS base

FROM base AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
# Dependencies first: this layer is rebuilt only when the lock file changes. Wheels only, so
# nothing compiles under QEMU and a dependency without a linux/aarch64 wheel fails loudly.
COPY requirements/app.lock /tmp/app.lock
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r /tmp/app.lock
# Then the project itself, as a wheel, without touching the locked dependencies.
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip wheel --no-deps /src -w /tmp/wheels \
    && /opt/venv/bin/pip install --no-deps --no-index /tmp/wheels/*.whl \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# The RDS CA bundle, for sslmode=verify-full (infra config RDS_CA_BUNDLE_PATH). Fetched from
# AWS at build and checked against a pinned checksum (a build argument, set once per bundle
# release: CICD.md), not committed: the bundle is AWS's to publish, and a changed file fails
# the build instead of shipping an unknown trust anchor.
FROM base AS rds-ca
ARG RDS_CA_BUNDLE_URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
ARG RDS_CA_BUNDLE_SHA256
RUN python - "$RDS_CA_BUNDLE_URL" "$RDS_CA_BUNDLE_SHA256" <<'PY'
import hashlib, pathlib, sys, urllib.request
url, expected = sys.argv[1], sys.argv[2]
if not expected:
    sys.exit("build argument RDS_CA_BUNDLE_SHA256 is required (CICD.md, first-time set-up)")
with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (a fixed https URL)
    bundle = response.read()
actual = hashlib.sha256(bundle).hexdigest()
if actual != expected:
    sys.exit(f"RDS CA bundle checksum {actual} is not the pinned {expected}")
target = pathlib.Path("/opt/rds/global-bundle.pem")
target.parent.mkdir(parents=True)
target.write_bytes(bundle)
PY

FROM base AS runtime
# A fixed numeric uid, so USER is numeric and non-root checks need not resolve a name.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=rds-ca /opt/rds/global-bundle.pem /opt/rds/global-bundle.pem
# Read-only root filesystem: nothing is written at run time except /tmp, which the task
# definition (a volume) and docker-compose (tmpfs) mount writable.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HEALTH_PORT=8080 \
    LOG_FORMAT=json \
    SHUTDOWN_GRACE_SECONDS=25
USER 10001:10001
EXPOSE 8080
# ECS ignores this (the task definition carries its own healthCheck with the same command);
# it serves docker and docker-compose.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["order-service", "healthcheck"]
# SIGTERM is what ECS sends; exec form makes order-service PID 1 so it receives it directly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["order-service"]
CMD ["worker"]
