"""Entry point of a step's child process: ``python -m pytest_cursus.execution.child REQUEST``.

It imports the script (never running its ``__main__`` block), calls ``main()`` with local paths
and writes ``report.json``. Only the standard library is imported here: the step pays for the
script's own imports and nothing else.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import importlib.util
import inspect
import json
import logging
import os
import re
import signal
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

_THIS_FILE = os.path.abspath(__file__)
# set by whoever starts this process: its pid, to notice a parent that died before we armed
# the parent-death signal
PARENT_PID_VARIABLE = "CURSUS_PARENT_PID"
_MAIN_PARAMETERS = ("input_paths", "output_paths", "environ_vars", "job_args")


class StepLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The ``logger`` passed to ``main``: callable like ``print`` and a logger like ``logging``'s.

    Scripts do both: ``logger("loaded")`` and ``logger.info("loaded")``.
    """

    def __call__(self, message: object, *args: object) -> None:
        self.info(str(message), *args)


def make_logger(step: str) -> StepLogger:
    logger = logging.getLogger(f"cursus.step.{step}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return StepLogger(logger, {})


def run(request: dict[str, Any], *, reraise: bool = False) -> dict[str, Any]:
    """Import the script and call its main(); never raises for anything the script does, unless
    ``reraise`` (a debugging run in the pytest process: the debugger gets the exception)."""
    script = request["script"]
    for root in reversed(request.get("python_path", [])):
        sys.path.insert(0, root)
    if not request.get("module"):
        # as `python script.py` would: sibling modules of the script are importable
        sys.path.insert(0, os.path.dirname(script))
    sys.argv = [script]

    started = time.perf_counter()
    try:
        module = _import_script(script, request.get("module"))
    except SystemExit as exc:
        return {
            "status": "exited",
            "exit_code": _exit_code(exc),
            "detail": "the script called sys.exit() while being imported",
        }
    except BaseException as exc:  # noqa: BLE001 - any import failure is the script's, reported as such
        if reraise:
            raise
        return {"status": "import_failed", **_describe_exception(exc)}
    import_seconds = time.perf_counter() - started

    main = getattr(module, "main", None)
    if not callable(main):
        defined = sorted(
            name
            for name, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module.__name__
        )
        return {
            "status": "no_main",
            "detail": f"{script} defines no main() function"
            + (f" (functions defined: {', '.join(defined)})" if defined else "")
            + "; expected def main(input_paths, output_paths, environ_vars, job_args)",
            "import_seconds": import_seconds,
        }

    arguments = (
        request["input_paths"],
        request["output_paths"],
        _environ_vars(request),
        argparse.Namespace(**request["job_args"]),
    )
    keywords: dict[str, Any] = {}
    try:
        signature = inspect.signature(main)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        if "logger" in signature.parameters:
            keywords["logger"] = make_logger(request["step"])
        try:
            signature.bind(*arguments, **keywords)
        except TypeError as exc:
            line = _line_of(main)
            return {
                "status": "bad_signature",
                "detail": f"main{signature} at {script}{line} cannot be called as "
                f"main({', '.join(_MAIN_PARAMETERS)}): {exc}",
                "import_seconds": import_seconds,
            }

    if request.get("check_only"):
        # a contract check: the script imports and main() can be called; it is not run
        return {
            "status": "checked",
            "detail": f"main{signature}" if signature else "main(...)",
            "import_seconds": import_seconds,
        }

    started = time.perf_counter()
    try:
        value = main(*arguments, **keywords)
    except SystemExit as exc:
        return {
            "status": "exited",
            "exit_code": _exit_code(exc),
            "detail": f"main() called sys.exit({exc.code!r})",
            "import_seconds": import_seconds,
            "main_seconds": time.perf_counter() - started,
        }
    except BaseException as exc:  # noqa: BLE001 - reported, the parent decides
        if reraise:
            raise
        return {
            "status": "raised",
            **_describe_exception(exc),
            "import_seconds": import_seconds,
            "main_seconds": time.perf_counter() - started,
        }
    return {
        "status": "returned",
        "return_summary": summarize(value),
        "import_seconds": import_seconds,
        "main_seconds": time.perf_counter() - started,
    }


def _environ_vars(request: dict[str, Any]) -> dict[str, str]:
    """The step's env; secret values come from the process environment, never from request.json."""
    environ = dict(request["environ_vars"])
    for name in request.get("secret_env", []):
        if name in os.environ:
            environ[name] = os.environ[name]
    return environ


def _import_script(script: str, module_name: str | None) -> ModuleType:
    if module_name:
        return importlib.import_module(module_name)
    name = Path(script).stem
    if not name.isidentifier() or name in sys.modules:
        # a script called `json.py` or `my-step.py` must not shadow or break on its name
        name = "cursus_script_" + re.sub(r"\W", "_", name)
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {script}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    # registered before executing so pickling and multiprocessing can find it by name
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _describe_exception(exc: BaseException) -> dict[str, Any]:
    return {
        "exception_type": type(exc).__qualname__
        if type(exc).__module__ in ("builtins", "__main__")
        else f"{type(exc).__module__}.{type(exc).__qualname__}",
        "exception_message": str(exc),
        "traceback": script_traceback(exc),
    }


def script_traceback(exc: BaseException) -> str:
    """The traceback as Python would print it for the script, without this runner's frames."""
    formatted = traceback.TracebackException.from_exception(exc)
    formatted.stack = traceback.StackSummary.from_list(
        [frame for frame in formatted.stack if not _is_runner_frame(frame.filename)]
    )
    return "".join(formatted.format())


def _is_runner_frame(filename: str) -> bool:
    return os.path.abspath(filename) == _THIS_FILE or filename.startswith("<frozen importlib")


def _line_of(function: Any) -> str:
    try:
        return f":{inspect.getsourcelines(function)[1]}"
    except (OSError, TypeError):
        return ""


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    return 1  # sys.exit("message") exits with 1 after printing the message


def summarize(value: Any, depth: int = 0) -> Any:
    """A small JSON-able description of main()'s return value (recorded, never required)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "..."
    shape = getattr(value, "shape", None)
    if shape is not None and isinstance(shape, tuple):
        return f"{type(value).__name__} {'x'.join(str(n) for n in shape)}"
    if isinstance(value, dict) and depth < 2:
        return {str(key): summarize(item, depth + 1) for key, item in list(value.items())[:50]}
    if isinstance(value, (list, tuple)) and depth < 2:
        return [summarize(item, depth + 1) for item in list(value)[:50]]
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def write_report(path: str, report: dict[str, Any]) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(report, handle, default=repr)
    os.replace(temporary, path)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """If pytest is killed (SIGKILL, OOM killer), this process gets SIGKILL too.

    Done here rather than in a preexec_fn: code between fork and exec in a threaded parent can
    deadlock. The signal follows the parent *thread* that started us, so the runner launches
    and supervises a step on one thread that lives until the step ends.
    """
    expected = os.environ.pop(PARENT_PID_VARIABLE, None)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the supervisor's cleanup still applies
        return
    if expected is not None and os.getppid() != int(expected):
        os._exit(1)  # the parent died before the signal was armed


def serve(request_file: str) -> int:
    """Run the step of ``request_file`` and write its report; the process then ends with
    ``finish`` (forked children of the warm parent come here too)."""
    die_with_parent()
    faulthandler.enable()  # a segfault in a C extension still shows where it happened
    with open(request_file, encoding="utf-8") as handle:
        request = json.load(handle)
    report = run(request)
    report["rss_at_exit_bytes"] = current_rss()
    write_report(request["report_path"], report)
    finish()
    return 0


def current_rss() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux
        return 0


def finish() -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    # os._exit: threads or atexit hooks the script left behind must not keep the step alive;
    # the supervisor kills whatever processes the script started.
    os._exit(0)


if __name__ == "__main__":
    serve(sys.argv[1])
