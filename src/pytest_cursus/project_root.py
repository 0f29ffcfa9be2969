"""Finding a project's root directory the way pytest does, so that the notebook API and
``cursus-runtime`` use the same step cache as ``pytest`` run from that project.

pytest's rule (``rootdir``): from the given path upwards, the first directory holding a pytest
configuration file (``pytest.toml``, ``pytest.ini``, ``pyproject.toml`` with a ``[tool.pytest...]``
table, ``tox.ini`` with ``[pytest]``, ``setup.cfg`` with ``[tool:pytest]``); else the first
directory holding a ``pyproject.toml``; else one holding ``setup.py``; else the path itself.
The step cache then lives in ``<rootdir>/.pytest_cache/d/cursus-steps``.

A project with none of these has no rootdir of its own: pytest takes the directory it was started
in, which a notebook cannot know. There :func:`project_dir` anchors the caches for pytest and the
notebook alike: the repository holding the scenario (``.git``), else the working directory when
the scenario is under it, else the scenario's directory.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (tomli is a dependency of pytest there)
    import tomli as tomllib

CONFIG_NAMES = ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
STEP_CACHE_DIR = "cursus-steps"  # under pytest's cache, for the plugin (run/factory.py) and the notebook alike
STEP_CACHE_DEFAULT_MAX_MB = 2048  # here, not in cache/store.py, so the option table needs no pydantic
S3_CACHE_DIR = "cursus-s3"
KEPT_LOGS_DIR = "cursus-logs"  # failed steps' logs, by default (--cursus-keep-logs)


def find_rootdir(start: Path) -> Path:
    """The rootdir pytest would choose when run with ``start`` (a file or directory) as argument."""
    start = start.resolve()
    base = start if start.is_dir() else start.parent
    first_pyproject: Path | None = None
    for directory in (base, *base.parents):
        for name in CONFIG_NAMES:
            candidate = directory / name
            if not candidate.is_file():
                continue
            if name == "pyproject.toml" and first_pyproject is None:
                first_pyproject = directory
            if _holds_pytest_config(candidate):
                return directory
    if first_pyproject is not None:
        return first_pyproject
    for directory in (base, *base.parents):
        if (directory / "setup.py").is_file():
            return directory
    return base


def project_dir(start: Path, cwd: Path | None = None) -> Path:
    """Where the caches of the project holding ``start`` (a scenario file or directory) live,
    the same for ``pytest`` and the notebook API: pytest's rootdir when the project has a pytest
    configuration, a ``pyproject.toml`` or a ``setup.py``; else the repository's top (``.git``);
    else ``cwd`` (the current directory) when ``start`` is under it; else ``start``'s directory."""
    start = start.resolve()
    base = start if start.is_dir() else start.parent
    rootdir = find_rootdir(start)
    if rootdir != base or _has_project_file(base):
        return rootdir
    for directory in (base, *base.parents):
        if (directory / ".git").exists():
            return directory
    here = (cwd or Path.cwd()).resolve()
    return here if here == base or here in base.parents else base


def _has_project_file(directory: Path) -> bool:
    return any((directory / name).is_file() for name in (*CONFIG_NAMES, "setup.py"))


def pytest_cache_dir(rootdir: Path, name: str) -> Path:
    """``<rootdir>/.pytest_cache/d/<name>``: where pytest's ``config.cache.mkdir(name)`` points
    by default (a project setting ``cache_dir`` elsewhere is not read here)."""
    return rootdir / ".pytest_cache" / "d" / name


def _holds_pytest_config(path: Path) -> bool:
    name = path.name
    if name in ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml"):
        return True  # pytest takes these even when empty
    try:
        if name == "pyproject.toml":
            tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
            pytest_table = tool.get("pytest", {}) if isinstance(tool, dict) else {}
            return isinstance(pytest_table, dict) and bool(pytest_table)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path, encoding="utf-8")
    except (OSError, ValueError, configparser.Error):
        return False  # pytest would refuse a broken file; it is no rootdir of ours either
    return parser.has_section("pytest" if name == "tox.ini" else "tool:pytest")
