# syntax=docker/dockerfile:1
# pytest-cursus in a small image that runs a mounted project's scenarios.
#
#   docker build -t pytest-cursus .
#   docker run --rm -u "$(id -u):$(id -g)" -v "$PWD:/work" pytest-cursus
#       -> pytest --cursus-scenarios /work/scenarios -n auto   (in /work)
#   docker run --rm -u "$(id -u):$(id -g)" -v "$PWD:/work" pytest-cursus -n 4 -k train --cursus-json=/work/cursus.json
#       -> arguments replace the default `-n auto` (the CMD), after the ENTRYPOINT's command
#   docker run --rm -v "$PWD:/work" --entrypoint cursus-runtime pytest-cursus health-check
#
# -u makes the files the run writes into /work (reports, .pytest_cache) yours; without it they
# belong to the image's non-root user `cursus` (uid 10001). See docs/deployment.md.

# A full version and the Debian release, so a rebuild next month gets the same Python and libc;
# pin by digest (python:3.11.11-slim-bookworm@sha256:...) where builds must be bit-for-bit.
ARG PYTHON_VERSION=3.11.11
ARG DEBIAN_RELEASE=bookworm

# --- build: the pytest-cursus wheel and wheels of everything the runner installs ---------------
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# every extra: s3 (botocore), fuzz (hypothesis), html (pytest-html), xdist (pytest-xdist)
RUN pip wheel --wheel-dir /wheels '.[s3,fuzz,html,xdist]'

# --- runtime: no compiler, no source tree, no pip cache; a non-root user -------------------------
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS runtime
# HOME is set because `docker run -u <uid>` with a uid the image does not know leaves HOME=/,
# and the documented credential mount (~/.aws at /home/cursus/.aws) would not be found.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOME=/home/cursus
# tini as PID 1: it reaps orphaned processes and forwards signals to pytest, which pytest as
# PID 1 would not (a PID 1 ignores SIGTERM unless it installs a handler).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    apt-get update -q && apt-get install -y -q --no-install-recommends tini && rm -rf /var/lib/apt/lists/* \
    && pip install --no-index --find-links=/wheels 'pytest-cursus[s3,fuzz,html,xdist]' \
    && useradd --create-home --uid 10001 --user-group cursus \
    && chmod 1777 /home/cursus
USER cursus
WORKDIR /work
# `docker stop` then ends pytest as Ctrl-C does: the session finishes, reports are written and
# every step process is stopped (SIGTERM, what Kubernetes sends, is handled the same way).
STOPSIGNAL SIGINT
ENTRYPOINT ["tini", "--", "pytest", "--cursus-scenarios", "/work/scenarios"]
# The default worker count, replaced by any arguments given to `docker run`; under a CPU limit
# (Kubernetes), PYTEST_XDIST_AUTO_NUM_WORKERS tells -n auto the limit instead of the node's CPUs.
CMD ["-n", "auto"]
