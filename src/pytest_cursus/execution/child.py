"""Entry point of a step's child process: ``python -m pytest_cursus.execution.child REQUEST``.

It imports the script (never running its ``__main__`` block), calls ``main()`` with local paths
and writes ``report.json``. Only the standard library is imported here: the step pays for the
script's own imports and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
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

from pytest_cursus.execution.pip_guard import PipGuard
from pytest_cursus.execution.process_lifetime import (
    LeftoverProcess,
    become_subreaper,
    end_descendants,
    set_parent_death_signal,
)
from pytest_cursus.secret_env import SecretNames, SecretScrubber

_THIS_FILE = os.path.abspath(__file__)
# set by whoever starts this process: its pid, to notice a parent that died before we armed
# the parent-death signal
PARENT_PID_VARIABLE = "CURSUS_PARENT_PID"
_MAIN_PARAMETERS = ("input_paths", "output_paths", "environ_vars", "job_args")
# the fields of report.json that quote what the script said or asked for: masked for secrets
_QUOTING_FIELDS = ("exception_message", "traceback", "detail", "failed_package", "imported_by", "pip_requests")
# room set aside for report.json before the script runs, given back if the script fills the disk
REPORT_RESERVE_BYTES = 256 * 1024
# the script's frames kept of a traceback that ends in a full disk: where it wrote, not how it got there
DISK_FULL_FRAMES = 5


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
    ``reraise`` (a debugging run in the pytest process: the debugger gets the exception).

    Pip installs the script runs are intercepted meanwhile (execution/pip_guard.py) and what they
    asked for is in the report's ``pip_requests``.

    The secret values of this process's environment (the step's env is in it) are masked in what
    the report quotes of the script: ``report.json`` is a file anyone may read, like ``request.json``."""
    names = SecretNames(request.get("secret_mask", ()), request.get("secret_exempt", ()))
    scrub = SecretScrubber(os.environ, names=names)
    guard = PipGuard(request.get("pip", "check"))
    guard.install()
    try:
        report = _run_script(request, reraise, scrub)
    finally:
        guard.uninstall()
    if guard.requests:
        report["pip_requests"] = guard.requests
    # the fields quoting the script (the return value was masked as it was summarized); the status
    # and the keys stay as they are, whatever a secret's value happens to be
    for field in _QUOTING_FIELDS:
        if field in report:
            report[field] = scrub.value(report[field])
    return report


def _run_script(request: dict[str, Any], reraise: bool, scrub: SecretScrubber) -> dict[str, Any]:
    _make_script_importable(request)
    started = time.perf_counter()
    imported = _import(request, reraise)
    if isinstance(imported, dict):
        return imported  # the import failed, or the script exited while imported
    timing = {"import_seconds": time.perf_counter() - started}
    call = _bind_main(imported, request)
    if not isinstance(call, _MainCall):
        return {**call, **timing}  # no main(), or one that cannot take the four arguments
    if request.get("check_only"):
        # a contract check: the script imports and main() can be called; it is not run
        return {"status": "checked", "detail": call.described(), **timing}
    return {**call.call(reraise, scrub), **timing}


def _make_script_importable(request: dict[str, Any]) -> None:
    """``sys.path`` and ``sys.argv`` as the script would see them when run by its own interpreter."""
    script = request["script"]
    for root in reversed(request.get("python_path", [])):
        sys.path.insert(0, root)
    if not request.get("module"):
        # as `python script.py` would: sibling modules of the script are importable
        sys.path.insert(0, os.path.dirname(script))
    sys.argv = [script]


def _import(request: dict[str, Any], reraise: bool) -> ModuleType | dict[str, Any]:
    """The script's module, or the report of why importing it did not finish."""
    try:
        return _import_script(request["script"], request.get("module"))
    except SystemExit as exc:
        return {
            "status": "exited",
            "exit_code": _exit_code(exc),
            "detail": "the script called sys.exit() while being imported",
        }
    except BaseException as exc:  # noqa: BLE001 - any import failure is the script's, reported as such
        if reraise:
            raise
        return {"status": "import_failed", **_describe_exception(exc), **_import_failure_origin(exc, request)}


def _import_failure_origin(exc: BaseException, request: dict[str, Any]) -> dict[str, str]:
    """Where an import of the script failed, when not in the script itself: ``failed_package``, the
    package whose ``__init__.py`` failed (``package churn (churn/__init__.py line 3)``), and for an
    import error ``imported_by``, the file and line of the import (``churn/__init__.py line 3``)."""
    script = os.path.abspath(request["script"])
    roots = [os.path.abspath(root) for root in request.get("python_path", [])] + [os.path.dirname(script)]
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not _is_runner_frame(frame.filename)]
    if not frames:
        return {}
    module = request.get("module") or ""
    # the __init__.py files that importing the script by its dotted name runs
    package_inits = {}
    directory = os.path.dirname(script)
    for depth in range(module.count("."), 0, -1):
        package_inits[os.path.join(directory, "__init__.py")] = ".".join(module.split(".")[:depth])
        directory = os.path.dirname(directory)
    origin = {}
    in_inits = [frame for frame in frames if os.path.abspath(frame.filename) in package_inits]
    if in_inits:  # the innermost package: the one whose __init__.py raised or imported what raised
        frame = in_inits[-1]
        package = package_inits[os.path.abspath(frame.filename)]
        origin["failed_package"] = f"package {package} ({_shown(frame.filename, roots)} line {frame.lineno})"
    importer = frames[-1]
    if isinstance(exc, ImportError) and os.path.abspath(importer.filename) != script:
        origin["imported_by"] = f"{_shown(importer.filename, roots)} line {importer.lineno}"
    return origin


def _shown(filename: str, roots: list[str]) -> str:
    """``filename`` relative to the outermost import root holding it (``churn/__init__.py``), else as is."""
    path = os.path.abspath(filename)
    holding = [root for root in roots if path.startswith(root.rstrip(os.sep) + os.sep)]
    return os.path.relpath(path, min(holding, key=len)) if holding else path


def _bind_main(module: ModuleType, request: dict[str, Any]) -> _MainCall | dict[str, Any]:
    """``main`` bound to the request's arguments, or the report of why it cannot be called so."""
    script = request["script"]
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
        return _MainCall(main, arguments, keywords, None)
    if "logger" in signature.parameters:
        keywords["logger"] = make_logger(request["step"])
    try:
        signature.bind(*arguments, **keywords)
    except TypeError as exc:
        return {
            "status": "bad_signature",
            "detail": f"main{signature} at {script}{_line_of(main)} cannot be called as "
            f"main({', '.join(_MAIN_PARAMETERS)}): {exc}",
        }
    return _MainCall(main, arguments, keywords, signature)


class _MainCall:
    """The script's ``main`` with the arguments it will be called with, checked against its signature."""

    __slots__ = ("main", "arguments", "keywords", "signature")

    def __init__(
        self,
        main: Any,
        arguments: tuple[Any, ...],
        keywords: dict[str, Any],
        signature: inspect.Signature | None,
    ) -> None:
        self.main = main
        self.arguments = arguments
        self.keywords = keywords
        self.signature = signature  # None when Python cannot tell (a builtin, some C callables)

    def described(self) -> str:
        return f"main{self.signature}" if self.signature else "main(...)"

    def call(self, reraise: bool, scrub: SecretScrubber) -> dict[str, Any]:
        """Call ``main``; the report of how it ended, with how long it ran (``scrub``: see :func:`summarize`)."""
        started = time.perf_counter()
        try:
            value = self.main(*self.arguments, **self.keywords)
        except SystemExit as exc:
            return {
                "status": "exited",
                "exit_code": _exit_code(exc),
                "detail": f"main() called sys.exit({exc.code!r})",
                "main_seconds": time.perf_counter() - started,
            }
        except BaseException as exc:  # noqa: BLE001 - reported, the parent decides
            if reraise:
                raise
            return {
                "status": "raised",
                **_describe_exception(exc),
                "main_seconds": time.perf_counter() - started,
            }
        return {
            "status": "returned",
            "return_summary": summarize(value, scrub),
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
    from pytest_cursus.errors import is_disk_full  # only once the script has failed: a step pays nothing for it

    described: dict[str, Any] = {
        "exception_type": type(exc).__qualname__
        if type(exc).__module__ in ("builtins", "__main__")
        else f"{type(exc).__module__}.{type(exc).__qualname__}",
        "exception_message": str(exc),
    }
    if is_disk_full(exc):
        # the disk is what failed: the last frames of the script say where it wrote, and the
        # chain of errors raised while closing its files on the full disk says nothing more
        return {**described, "no_space": True, "traceback": script_traceback(exc, last_frames=DISK_FULL_FRAMES)}
    return {**described, "traceback": script_traceback(exc)}


def script_traceback(exc: BaseException, *, last_frames: int | None = None) -> str:
    """The traceback as Python would print it for the script, without this runner's frames; with
    ``last_frames``, only that many of the innermost frames and no chained exceptions."""
    formatted = traceback.TracebackException.from_exception(exc)
    frames = [frame for frame in formatted.stack if not _is_runner_frame(frame.filename)]
    if last_frames is not None:
        formatted.__cause__ = formatted.__context__ = None
        frames = frames[-last_frames:]
    formatted.stack = traceback.StackSummary.from_list(frames)
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


def summarize(value: Any, scrub: SecretScrubber, depth: int = 0) -> Any:
    """A small JSON-able description of main()'s return value (recorded, never required).

    Text is masked before it is cut to 200 characters: a secret cut in two would no longer be found."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _shortened(scrub.text(value))
    shape = getattr(value, "shape", None)
    if shape is not None and isinstance(shape, tuple):
        return f"{type(value).__name__} {'x'.join(str(n) for n in shape)}"
    if isinstance(value, dict) and depth < 2:
        return {scrub.text(str(key)): summarize(item, scrub, depth + 1) for key, item in list(value.items())[:50]}
    if isinstance(value, (list, tuple)) and depth < 2:
        return [summarize(item, scrub, depth + 1) for item in list(value)[:50]]
    return _shortened(scrub.text(repr(value)))


def _shortened(text: str) -> str:
    return text if len(text) <= 200 else text[:200] + "..."


def reserve_report_space(report_path: str) -> None:
    """Set room aside for ``report.json`` before the script runs: a script that fills the disk must
    not leave the parent without a report, and the user with an empty "see its stderr" (stderr.log
    is on the same full disk). :func:`write_report` gives the room back."""
    try:
        handle = os.open(f"{report_path}.reserve", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError:
        return
    try:
        os.posix_fallocate(handle, 0, REPORT_RESERVE_BYTES)
    except (OSError, AttributeError):  # no room even for that, or no posix_fallocate (macOS)
        pass
    finally:
        os.close(handle)


def write_report(path: str, report: dict[str, Any]) -> None:
    """Write ``report.json``; on a full disk, again in the room :func:`reserve_report_space` set
    aside, and failing that without the traceback's head and the return value, which make a report long."""
    try:
        try:
            _write_json(path, report)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            _release_report_space(path)
            try:
                _write_json(path, report)
            except OSError as again:
                if again.errno != errno.ENOSPC:
                    raise
                _write_json(path, {**report, "traceback": _last_lines(report.get("traceback")), "return_summary": None})
    finally:
        _release_report_space(path)


def _write_json(path: str, content: dict[str, Any]) -> None:
    temporary = f"{path}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(content, handle, default=repr)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)  # half written: its room is needed for the next attempt
        raise
    os.replace(temporary, path)


def _release_report_space(report_path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(f"{report_path}.reserve")


def _last_lines(text: str | None, count: int = 20) -> str | None:
    return None if text is None else "\n".join(text.splitlines()[-count:])


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """If pytest is killed (SIGKILL, OOM killer), this process gets ``signum`` (SIGKILL) too.

    Done here rather than in a preexec_fn: code between fork and exec in a threaded parent can
    deadlock. The signal follows the parent *thread* that started us, so the runner launches
    and supervises a step on one thread that lives until the step ends.
    """
    expected = os.environ.pop(PARENT_PID_VARIABLE, None)
    if not set_parent_death_signal(signum):
        return  # not Linux: the supervisor's cleanup still applies
    if expected is not None and os.getppid() != int(expected):
        os._exit(1)  # the parent died before the signal was armed


def serve(request_file: str) -> int:
    """Run the step of ``request_file`` and write its report; the process then ends with
    ``finish`` (forked children of the warm parent come here too).

    The step's process is a subreaper: a daemon the script double-forks stays below it, and when
    ``main()`` is done every process the script left running is killed, as the end of a
    container's entry process ends the container, and named in the report."""
    die_with_parent()
    become_subreaper()
    faulthandler.enable()  # a segfault in a C extension still shows where it happened
    with open(request_file, encoding="utf-8") as handle:
        request = json.load(handle)
    reserve_report_space(request["report_path"])
    report = run(request)
    report["leftover_processes"] = end_leftovers()
    report["rss_at_exit_bytes"] = current_rss()
    write_report(request["report_path"], report)
    finish()
    return 0


def end_leftovers() -> list[LeftoverProcess]:
    """Kill what the script left running; the processes to name in the report.

    ``multiprocessing``'s own processes (an unclosed pool's workers, an executor's, its resource
    tracker and forkserver) are killed without a word: a plain interpreter's exit ends those too.
    """
    return end_descendants(silent=frozenset(_multiprocessing_pids()))


def _multiprocessing_pids() -> set[int]:
    if "multiprocessing" not in sys.modules:
        return set()  # the script never imported it: nothing to ask (and no import paid for)
    import multiprocessing

    pids = {process.pid for process in multiprocessing.active_children() if process.pid is not None}
    for module_name, holder, attribute in (
        ("multiprocessing.resource_tracker", "_resource_tracker", "_pid"),
        ("multiprocessing.forkserver", "_forkserver", "_forkserver_pid"),
    ):
        helper = getattr(sys.modules.get(module_name), holder, None)
        pid = getattr(helper, attribute, None)
        if isinstance(pid, int):
            pids.add(pid)
    return pids


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
