"""Hook specifications of pytest-cursus: what a ``conftest.py`` file (or any plugin) can
implement to extend how pipeline steps are fed, run, checked and observed.

Implement a hook by defining a function of the same name in a ``conftest.py`` next to (or
above) your scenario files, or in any pytest plugin; it may take any subset of the arguments
listed. The plugin registers these specifications with pytest's plugin manager
(``pytest_addhooks``), so pytest checks the names: a misspelt ``pytest_cursus_*`` function
stops the run (``PluginValidationError: unknown hook``) instead of being silently ignored.

Every name starts with ``pytest_cursus_`` because pytest only looks at ``pytest_*``
functions in conftest files and plugins.

Outside pytest, the notebook API calls the same hooks on the plugins given to it:
``run_scenario(path, plugins=[my_module])`` (objects or modules with these functions, or a
``pluggy.PluginManager``). In a pytest run, a hook applies to the scenario files below the
``conftest.py`` that implements it, like pytest's own path-aware hooks.

An exception raised by an implementation does not stop the run: the step it was called for
fails with kind ``hook``, the implementation's traceback shown as the failure's traceback.
See docs/hooks.md for worked examples, and ``conftest_examples/`` for tested ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pytest_cursus.plan.scenario_plan import StepPlan
    from pytest_cursus.results import StepResult

# pytest's own project name: implementations marked with @pytest.hookimpl (or not marked at
# all, in a conftest.py) are found by pytest's plugin manager and by the notebook API's alike.
hookspec = pluggy.HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_cursus_data_source(
    kind: str, name: str, spec: dict[str, Any], target_dir: Path, scenario_dir: Path
) -> Path | None:
    """Materialise a data source of a custom kind.

    Called once per run for each ``data:`` source declared as ``custom:`` in a scenario, the
    first time a step (or the step cache's key) needs its data::

        data:
          accounts:
            custom: {kind: sqlite_query, database: fixtures/bank.db, query: "select * from accounts"}

    :param kind: the source's ``kind:``; return ``None`` for kinds you do not provide.
    :param name: the data source's name in the scenario (``accounts``).
    :param spec: every other key of the ``custom:`` block, as written in the YAML.
    :param target_dir: an empty directory, created for you, to write the data into.
    :param scenario_dir: the scenario file's directory: relative paths in ``spec`` are
        relative to it.

    Return the path holding the data: ``target_dir`` itself, a file inside it, or an existing
    file or directory elsewhere (it is copied into each step's read-only input, never changed).
    The first implementation returning a path wins (``firstresult``). When every
    implementation returns ``None``, the steps reading the source fail with a message naming
    the kind.
    """


@hookspec(firstresult=True)
def pytest_cursus_data_source_key(kind: str, name: str, spec: dict[str, Any], scenario_dir: Path) -> str | None:
    """A cheap cache key for a custom data source, so cached steps do not need its data.

    Called when the step cache needs the key of a step that reads a ``custom:`` source, before
    :func:`pytest_cursus_data_source`. Return a string that changes whenever the data would
    change (a table's modification time, a snapshot id), or ``None`` to let the plugin
    materialise the source and hash its files, which is always correct but fetches the data
    even when every step reading it is cached. The first non-``None`` result wins.
    """


@hookspec
def pytest_cursus_adjust_step(step: StepPlan, env: dict[str, str], job_args: dict[str, Any]) -> None:
    """Change a step's environment variables or job arguments before it runs.

    Called once per run for each step about to run (or about to be looked up in the step
    cache: the adjusted values are part of its key, so a changed adjustment re-runs the step).
    ``env`` and ``job_args`` are the step's own copies, merged from the contract, the
    scenario's ``defaults:`` and the step: change them in place. ``step`` (its name,
    ``scenario``, ``contract``, ``script``) is for reading only. Env values must stay strings.
    The return value is ignored; every implementation is called.
    """


@hookspec
def pytest_cursus_check_outputs(step: StepPlan, outputs: dict[str, Path]) -> list[str] | None:
    """Extra checks on a step's outputs, beyond the scenario's ``expect:``.

    Called after a step's script completed successfully, whether it ran now or its outputs
    came from the step cache, with ``outputs`` mapping each output name to its local path.
    Return a list of problems, one sentence each naming what is wrong and where; an empty
    list or ``None`` means the outputs are fine. Problems from every implementation are
    collected, and any problem fails the step (kind ``expectation``), listed with those of
    ``expect:``. Do not write into the outputs: they may be the step cache's.
    """


@hookspec
def pytest_cursus_step_finished(step: StepPlan, result: StepResult) -> None:
    """Observe a step's final result: outcome, failure, metrics, outputs, cache status.

    Called once for each step a run produced (ran, took from the step cache, or failed to
    prepare), after every check, in the process that produced it: under pytest-xdist that
    is a worker, so use it for side effects (a log line, a metrics push), not to aggregate a
    run (``--cursus-json`` does that). The return value is ignored.
    """
