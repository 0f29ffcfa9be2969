"""Pip in a step's process: what a script asks pip to install is recorded and checked, not installed.

Real scripts run ``subprocess.check_call([sys.executable, "-m", "pip", "install", "pkg==1.2"])``
(or ``os.system("pip install ...")``, ``pip.main([...])``) when they are imported. Run unchanged
in a test they would rewrite the test environment over the network, or fail without the private
index's credentials. In the child, before the script is imported, :class:`PipGuard` wraps
``subprocess.Popen`` (so ``run``, ``call``, ``check_call``, ``check_output`` and asyncio's
subprocesses), ``os.system`` and the ``main`` functions of the ``pip`` modules. A pip
``install`` is then not run: each requirement is compared with the installed distribution and
the call returns 0 (policy ``check``), or 1 when one is not met (``strict``). Other pip commands
(``list``, ``freeze``, ``show``) run as usual. Policy ``allow`` installs no guard at all.

Only the standard library is imported here, and not ``subprocess``: it is wrapped when the script
imports it (most do, or pandas does for them); ``packaging`` only when a requirement is checked.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

# pip's options that take a value, global and `install`'s; any other option is a flag
_OPTIONS_WITH_VALUE = frozenset(
    {
        "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
        "--extra-index-url", "-f", "--find-links", "--trusted-host", "-t", "--target", "--prefix", "--root",
        "--src", "--platform", "--python-version", "--implementation", "--abi", "--progress-bar", "--cache-dir",
        "--log", "--log-file", "--proxy", "--timeout", "--retries", "--exists-action", "--cert", "--client-cert",
        "--global-option", "--install-option", "--config-settings", "-C", "--no-binary", "--only-binary",
        "--upgrade-strategy", "--python", "--report", "--keyring-provider", "--use-feature", "--use-deprecated",
        "--root-user-action", "--resume-retries", "--group",
    }
)  # fmt: skip
_SHELL_SEPARATORS = r"(&&|\|\||;|\n|\|)"  # patterns stay strings: compiled only when a command is checked
_PIP_MODULES = ("pip", "pip._internal", "pip._internal.cli.main")
_WATCHED_MODULES = ("subprocess", *_PIP_MODULES)
_EXIT = "/bin/sh"


class CursusPipWarning(UserWarning):
    """A requirement a script asked pip for (or its contract declares) that the environment does not meet."""


PipRequest = dict[str, Any]  # {requirement, via, installed, satisfied (None: not checked), detail}


def pip_arguments(argv: Sequence[str]) -> list[str] | None:
    """What follows ``pip`` in a command line that runs pip (``pip ...``, ``python -m pip ...``), else None."""
    if not argv:
        return None
    program = os.path.basename(argv[0])
    if _is_program(program, "pip"):
        return list(argv[1:])
    if not (_is_program(program, "python") or _same_file(argv[0], sys.executable)):
        return None
    index = 1
    while index < len(argv) and argv[index].startswith("-") and argv[index] not in ("-m", "-c"):
        if argv[index].startswith("-m"):  # `-mpip`
            return list(argv[index + 1 :]) if _is_program(argv[index][2:], "pip") else None
        index += 2 if argv[index] in ("-X", "-W") else 1
    if index + 1 < len(argv) and argv[index] == "-m" and _is_program(argv[index + 1], "pip"):
        return list(argv[index + 2 :])
    return None


def _is_program(name: str, program: str) -> bool:
    """``pip``, ``pip3``, ``pip3.11`` for ``pip``."""
    version = name[len(program) :]
    return (
        name.startswith(program) and all(part.isdigit() for part in version.split(".")) if version else name == program
    )


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def parse_pip_command(arguments: Sequence[str]) -> tuple[str | None, list[str]]:
    """pip's subcommand and the requirements it names (``-r`` files read), options skipped."""
    command: str | None = None
    requirements: list[str] = []
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        if not argument.startswith("-") or argument == "-":
            if command is None:
                command = argument
            else:
                requirements.append(argument)
            continue
        name, has_value, value = argument.partition("=")
        if not has_value and len(name) > 2 and name[:2] in ("-r", "-c", "-i", "-f", "-e", "-t"):
            name, value, has_value = name[:2], name[2:], "="  # `-rrequirements.txt`
        if name not in _OPTIONS_WITH_VALUE:
            continue
        if not has_value:
            value = arguments[index] if index < len(arguments) else ""
            index += 1
        if name in ("-r", "--requirement"):
            requirements += requirements_file(value)
        elif name in ("-e", "--editable"):
            requirements.append(value)
    return command, requirements


def requirements_file(path: str) -> list[str]:
    """The requirements a ``-r`` file names (nested ``-r`` followed; other options skipped)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        return [f"-r {path}  # unreadable: {exc.strerror or exc}"]
    found: list[str] = []
    for raw in lines:
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if not line.startswith("-"):
            found.append(line)
            continue
        import shlex

        words = shlex.split(line)
        name, has_value, value = words[0].partition("=")
        if name in ("-r", "--requirement") or (name.startswith("-r") and not name.startswith("--")):
            nested = value if has_value else (words[1] if name in ("-r", "--requirement") else name[2:])
            found += requirements_file(os.path.join(os.path.dirname(path), nested))
        elif name in ("-e", "--editable") and (has_value or len(words) > 1):
            found.append(value if has_value else words[1])
        # other options (index URLs, constraints, hashes) say where from, not what
    return found


def check_requirement(text: str, via: str) -> PipRequest:
    """Whether the installed distribution meets ``text`` (packaging's ``Requirement``)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import InvalidRequirement, Requirement

    record: PipRequest = {"requirement": text, "via": via, "installed": None, "satisfied": None, "detail": ""}
    if "# unreadable:" in text:
        record["detail"] = text.split("# unreadable:", 1)[1].strip()
        return record
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        record["detail"] = "a path or URL, not a requirement: not checked"
        return record
    if requirement.marker is not None and not requirement.marker.evaluate():
        record["satisfied"] = True  # not meant for this Python or platform
        return record
    try:
        record["installed"] = version(requirement.name)
    except PackageNotFoundError:
        record["satisfied"] = False
        return record
    record["satisfied"] = requirement.specifier.contains(record["installed"], prereleases=True)
    return record


def describe_request(step: str, request: PipRequest) -> str:
    """``feature_selection asked pip for xgboost==1.7.3; 3.2.0 is installed``."""
    asked = (
        f"{step} asked pip for {request['requirement']}"
        if request["via"] == "pip"
        else f"{step}'s contract requires {request['requirement']} ({request['via']})"
    )
    if request["via"] == "pip uninstall":
        return f"{step} asked pip to uninstall {request['requirement']}; nothing was uninstalled"
    if request["satisfied"] is None:
        return f"{asked}; {request['detail']}"
    if request["satisfied"]:
        return f"{asked}; met"
    if request["installed"] is None:
        name = re.split(r"[\s\[<>=!~;@(]", request["requirement"].strip(), maxsplit=1)[0]
        return f"{asked}; {name} is not installed"
    return f"{asked}; {request['installed']} is installed"


def unmet(request: PipRequest) -> bool:
    return request["satisfied"] is False


class PipGuard:
    """The step's pip, intercepted: :meth:`install` before the script is imported, :meth:`uninstall` after."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.requests: list[PipRequest] = []
        self._restore: list[Callable[[], None]] = []

    def install(self) -> None:
        if self.policy == "allow":
            return
        self._wrap(os, "system", self._system)
        for name in _WATCHED_MODULES:
            if name in sys.modules:  # imported already (by the warm parent, for a script's `import pip`)
                self._patch_module(sys.modules[name])
        finder = _PipModuleFinder(self._patch_module)
        sys.meta_path.insert(0, finder)
        self._restore.append(lambda: sys.meta_path.remove(finder) if finder in sys.meta_path else None)

    def uninstall(self) -> None:
        while self._restore:
            self._restore.pop()()

    def _wrap(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = getattr(owner, name)
        setattr(owner, name, make(original))
        self._restore.append(lambda: setattr(owner, name, original))

    def intercept(self, arguments: Sequence[str]) -> int | None:
        """The exit code of a pip command that is not run, or None when it should run (not an install)."""
        command, requirements = parse_pip_command(arguments)
        if command not in ("install", "uninstall"):
            return None
        if command == "uninstall":
            self.requests += [
                {"requirement": name, "via": "pip uninstall", "installed": None, "satisfied": None, "detail": ""}
                for name in requirements
            ]
            return 0
        checked = [check_requirement(requirement, "pip") for requirement in requirements]
        self.requests += checked
        failed = self.policy == "strict" and any(unmet(request) for request in checked)
        print(
            f"[pytest-cursus] pip {' '.join(arguments)}: intercepted, nothing installed (--cursus-pip {self.policy})",
            file=sys.stderr,
            flush=True,
        )
        return 1 if failed else 0

    def _command_line(self, argv: Sequence[Any]) -> list[str] | None:
        """The replacement of a pip install's argv (a shell that exits with its code), else None."""
        arguments = pip_arguments([os.fsdecode(part) for part in argv])
        code = None if arguments is None else self.intercept(arguments)
        return None if code is None else [_EXIT, "-c", f"exit {code}"]

    def _shell_command(self, command: str) -> str | None:
        """``command`` with each pip install in it replaced by ``true`` or ``false``, else None."""
        import shlex

        parts = re.split(_SHELL_SEPARATORS, command)
        replaced = False
        for index in range(0, len(parts), 2):
            try:
                words = shlex.split(parts[index])
            except ValueError:
                continue
            while words and re.match(r"\w+=", words[0]):  # `PIP_INDEX_URL=... pip install x`
                words.pop(0)
            cut = next((i for i, word in enumerate(words) if word[:1] in "<>" or word[:2] in ("1>", "2>")), len(words))
            arguments = pip_arguments(words[:cut])
            code = None if arguments is None else self.intercept(arguments)
            if code is not None:
                parts[index] = " true " if code == 0 else " false "
                replaced = True
        return "".join(parts) if replaced else None

    def _popen_init(self, original: Callable[..., None]) -> Callable[..., None]:
        guard = self

        def __init__(popen: Any, args: Any, *positional: Any, **keywords: Any) -> None:
            shell = keywords.get("shell", positional[7] if len(positional) > 7 else False)
            if shell:
                command = args if isinstance(args, (str, bytes)) else args[0]
                replaced = guard._shell_command(os.fsdecode(command))
                if replaced is not None:
                    args = replaced if isinstance(args, (str, bytes)) else [replaced, *args[1:]]
            else:
                argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
                replaced_argv = guard._command_line(argv)
                if replaced_argv is not None:
                    args = replaced_argv
                    keywords.pop("executable", None)
            original(popen, args, *positional, **keywords)

        return __init__

    def _system(self, original: Callable[[str], int]) -> Callable[[str], int]:
        def system(command: str) -> int:
            return original(self._shell_command(os.fsdecode(command)) or command)

        return system

    def _patch_module(self, module: Any) -> None:
        if module.__name__ == "subprocess":
            self._wrap(module.Popen, "__init__", self._popen_init)
            return
        original = getattr(module, "main", None)
        if not callable(original) or getattr(original, "_cursus_guarded", False):
            return
        guard = self

        def main(args: Sequence[str] | None = None, *rest: Any, **keywords: Any) -> Any:
            arguments = list(sys.argv[1:] if args is None else args)
            code = guard.intercept(arguments)
            return original(args, *rest, **keywords) if code is None else code

        main._cursus_guarded = True  # type: ignore[attr-defined]
        module.main = main
        self._restore.append(lambda: setattr(module, "main", original))


class _PipModuleFinder:
    """Patches ``subprocess.Popen`` and ``main`` of the pip modules when the script imports them."""

    def __init__(self, patch: Callable[[Any], None]) -> None:
        self.patch = patch

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in _WATCHED_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader, self.patch)
                return spec
        return None


class _PatchingLoader:
    def __init__(self, loader: Any, patch: Callable[[Any], None]) -> None:
        self.loader = loader
        self.patch = patch

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        self.patch(module)

    def __getattr__(self, name: str) -> Any:  # resource readers and the like: the real loader's
        return getattr(self.loader, name)


def framework_requirement(name: str, spec: str) -> str:
    """A contract's ``framework_requirements`` entry as pip would read it (a bare version pins it)."""
    spec = spec.strip()
    if not spec:
        return name
    return name + (spec if spec[:1] in "<>=!~;[@" else f"=={spec}")


def check_framework_requirements(requirements: dict[str, str]) -> list[PipRequest]:
    return [check_requirement(framework_requirement(n, s), "framework_requirements") for n, s in requirements.items()]


def pip_findings(step: str, requests: Sequence[PipRequest]) -> tuple[list[str], list[str]]:
    """What the step asked pip for, described: (requirements not met, other notes: unchecked, uninstalls)."""
    unmet_requests = [describe_request(step, request) for request in requests if unmet(request)]
    others = [describe_request(step, request) for request in requests if request["satisfied"] is None]
    return list(dict.fromkeys(unmet_requests)), list(dict.fromkeys(others))
