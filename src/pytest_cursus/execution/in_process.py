"""``--cursus-debug``: a step's ``main()`` called in this very process, so ``--pdb`` and
``breakpoint()`` in the script work.

A debugging aid that gives up isolation: no timeout or memory limit, the script shares this
process's threads, signal handlers and imported modules, and what it prints goes to pytest's
capture rather than the step's log files. Everything it changes that this module knows of (the
environment, the working directory, ``sys.path``, ``sys.argv`` and the modules imported from the
scenario's own roots) is put back afterwards, so the next step imports its modules afresh.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import psutil

from pytest_cursus.execution import child
from pytest_cursus.execution.supervisor import ProcessOutcome


def run_in_process(request_file: Path, env: dict[str, str], cwd: Path) -> ProcessOutcome:
    request = json.loads(request_file.read_text(encoding="utf-8"))
    roots = [os.path.abspath(root) for root in request.get("python_path", [])]
    if not request.get("module"):
        roots.append(os.path.dirname(os.path.abspath(request["script"])))
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_path, saved_argv = list(sys.path), list(sys.argv)
    known_modules = set(sys.modules)
    started, cpu_started = time.monotonic(), time.process_time()
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        report = child.run(request, reraise=True)
        child.write_report(request["report_path"], report)
    finally:
        wall, cpu = time.monotonic() - started, time.process_time() - cpu_started
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:], sys.argv[:] = saved_path, saved_argv
        _forget_scenario_modules(set(sys.modules) - known_modules, roots)
    rss = psutil.Process().memory_info().rss
    return ProcessOutcome(
        exit_status=0,
        killed_for=None,
        wall_seconds=wall,
        cpu_seconds=cpu,
        peak_rss_bytes=rss,
        memory_series=[(round(wall, 3), rss)],
    )


def _forget_scenario_modules(new: set[str], roots: list[str]) -> None:
    """Drop the modules the step imported from its own roots (third-party ones stay: many
    C extensions cannot be imported twice in one process)."""
    for name in new:
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None) or ""
        if name.startswith("cursus_script_") or any(location.startswith(root + os.sep) for root in roots):
            sys.modules.pop(name, None)
