# syntax=docker/dockerfile:1
# pytest-cursus in a small image that runs a mounted project's scenarios.
#
#   docker build -t pytest-cursus .
#   docker run --rm -u "$(id -u):$(id -g)" -v "$PWD:/work" pytest-cursus
#       -> pytest --cursus-scenarios /work/scenarios -n auto   (in /work)
#   docker run --rm -u "$(id -u):$(id -g)" -v "$PWD:/work" pytest-cursus -k train --cursus-json=/work/cursus.json
#       -> extra arguments are added to that pytest command
#   docker run --rm -v "$PWD:/work" --entrypoint cursus-runtime pytest-cursus health-check
#
# -u makes the files the run writes into /work (reports, .pytest_cache) yours; without it they
# belong to the image's non-root user `cursus` (uid 10001). See docs/deployment.md.

ARG PYTHON_VERSION=3.11

# --- build: the pytest-cursus wheel and wheels of everything the runner installs ---------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# pytest-xdist for -n auto, pytest-html for --html reports (s3: sources use botocore, a dependency)
RUN pip wheel --wheel-dir /wheels . pytest-xdist pytest-html

# --- runtime: no compiler, no source tree, no pip cache; a non-root user -------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels pytest-cursus pytest-xdist pytest-html \
    && useradd --create-home --uid 10001 --user-group cursus
USER cursus
WORKDIR /work
ENTRYPOINT ["pytest", "--cursus-scenarios", "/work/scenarios", "-n", "auto"]
