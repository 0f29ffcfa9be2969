"""Which modules a warm executor may import once, before forking a step: the third-party modules
a script imports at its top level (directly or through its own local modules).

A module is never preloaded when:

- it resolves inside the scenario's own roots (the script's directory, ``python_path``): the
  scripts' own modules must be imported fresh by every step;
- its top-level package is known not to survive ``fork()`` (``NOT_FORK_SAFE``, documented in
  docs/execution.md with the reason for each).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pytest_cursus.execution.script_imports import third_party_modules

# Top-level packages that hold state a forked child cannot inherit safely: threads started at
# import, GPU/driver contexts, a JVM or a display connection. Steps import them themselves.
NOT_FORK_SAFE: dict[str, str] = {
    "torch": "CUDA contexts and its intra-op thread pool do not survive fork()",
    "tensorflow": "starts threads and a runtime at import that fork() leaves broken",
    "jax": "XLA's runtime and thread pools are not fork-safe",
    "jaxlib": "XLA's runtime and thread pools are not fork-safe",
    "cupy": "a CUDA context cannot be shared with a forked child",
    "grpc": "gRPC's core starts threads that fork() does not copy",
    "ray": "connects to (or starts) a Ray runtime with its own threads",
    "pyspark": "talks to a JVM through a socket the parent owns",
    "py4j": "talks to a JVM through a socket the parent owns",
    "tkinter": "a display connection cannot be shared after fork()",
    "numba": "its threading layers (TBB, OpenMP) do not survive fork()",
    "mxnet": "its engine threads do not survive fork()",
}

# Environment variables that native libraries read once, when they are loaded: a step that sets
# one of them differently from the warm parent must start in a fresh interpreter to see it.
IMPORT_TIME_ENV_PREFIXES = (
    "OMP_",
    "KMP_",
    "GOMP_",
    "OPENBLAS_",
    "GOTO_",
    "MKL_",
    "BLIS_",
    "VECLIB_",
    "NUMEXPR_",
    "ARROW_",
    "MPLBACKEND",
    "MALLOC_",
    "LD_",
    "PYTHON",
)


def needs_fresh_interpreter(step_env: dict[str, str], parent_env: dict[str, str]) -> list[str]:
    """The step's variables that native libraries read at load time and the warm parent did not
    load with: a non-empty list means the step must not be forked from it."""
    return sorted(
        name
        for name, value in step_env.items()
        if name.startswith(IMPORT_TIME_ENV_PREFIXES) and parent_env.get(name) != value
    )


def preload_candidates(script: Path, module: str | None, python_path: Iterable[Path]) -> tuple[str, ...]:
    """Dotted module names to import before forking ``script``'s step, in import order.

    ``from pkg import name`` gives ``pkg`` and ``pkg.name?``: the trailing ``?`` marks a name
    that may be an attribute rather than a submodule (imported only if it is a submodule).
    The list is a hint: whatever is not preloaded the step imports itself.
    """
    return tuple(
        name for name in third_party_modules(script, module, python_path) if name.split(".")[0] not in NOT_FORK_SAFE
    )
