"""Static check of a script against its contract: do the keys it reads agree with what is declared?

The script is parsed, never imported. From ``main``'s first four parameters (whatever they are
called) the analysis follows the dicts and the namespace through aliases (``paths =
input_paths``, ``dict(input_paths)``, ``input_paths.copy()``), into functions of the same file
that receive them (positionally or by keyword), and through string constants naming keys
(``KEY = "DATA"`` at module or function level, ``for name in ("A", "B")`` loops). It records:

* ``input_paths[...]``, ``input_paths.get(...)``, ``"X" in input_paths`` (and ``output_paths``);
* ``environ_vars[...]``/``.get(...)``; ``os.environ[...]``/``.get(...)``, ``os.getenv(...)``
  anywhere in the file (``from os import environ, getenv`` too);
* ``job_args.x`` and ``getattr(job_args, "x", ...)``.

Findings, each naming the script line (all fail the contract item but the last, a note):

* a key the script indexes (``[...]``) that the contract does not declare (a KeyError, or an
  env var nobody sets), unless the key is guarded: tested with ``in``/``.get`` in the function,
  or read inside a ``try`` with an ``except``;
* an undeclared env var read with a fallback (``.get``, ``os.getenv``, ``in``): the finding says
  the fallback, since the contract is what the pipeline sets;
* a key the script raises without (``if "k" not in d: raise``) that the contract does not
  guarantee (undeclared, or an optional input);
* a required input the script never reads; a declared output it never looks up;
* an optional input indexed without a guard: an unwired optional channel points at a path that
  does not exist. Guarded means: inside a ``try``, inside the test of an ``if``/``while``/
  conditional expression, an argument of ``os.path.exists``/``isdir``/``isfile``/``Path.exists``/
  ``glob``/``os.walk``..., read with ``.get``, or stored in a variable (or a path built from it)
  that such a check looks at, here or in a same-file function it is passed to, or its key tested
  with ``in``;
* container paths of the ``if __name__ == "__main__":`` block that differ from the contract's;
* note: a declared env var the script never reads;
* note: a ``__main__`` block that passes a declared channel's path (or a path below it) under another
  key; for that channel the "never reads"/"never looks up" findings are not reported, since the
  script reaches the channel under its own key (a scenario maps it with ``as:``/``file:``).

Caveats (to avoid false findings, the analysis says nothing when it cannot see):
    * A key it cannot resolve (an f-string with variables, a key from a function call) or a dict
      iterated (``.items()``, ``for k in paths``), unpacked (``**paths``) or passed to a
      function of another module makes "never reads" unknowable for that dict: not reported.
    * ``os.environ`` subscripts of variables the platform sets (``PATH``, ``HOME``, ``SM_*``,
      ``AWS_*``, ...) are not findings.
    * Flow-insensitive: a guard anywhere in the function counts, before or after the read.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pytest_cursus.formats.contracts import Contract

Role = Literal["input", "output", "env", "job_args", "os_env"]
MAIN_ROLES: tuple[Role, ...] = ("input", "output", "env", "job_args")
_ROLE_SHOWN = {
    "input": "input_paths",
    "output": "output_paths",
    "env": "environ_vars",
    "job_args": "job_args",
    "os_env": "os.environ",
}
_GUARD_CALLS = frozenset(
    {"exists", "isdir", "isfile", "lexists", "is_dir", "is_file", "glob", "iglob", "rglob", "walk", "hasattr"}
)
_DICT_READS = frozenset({"get", "pop", "setdefault"})
_DICT_COPIES = frozenset({"copy"})
_PLATFORM_ENV = frozenset(
    {"PATH", "HOME", "USER", "PWD", "LANG", "LC_ALL", "TMPDIR", "TEMP", "TMP", "HOSTNAME", "PYTHONPATH", "SHELL", "TZ"}
)
_PLATFORM_ENV_PREFIXES = ("SM_", "AWS_", "SAGEMAKER_", "PYTHON", "LC_", "OMP_", "MKL_", "CUDA_", "NVIDIA_")
_NAMESPACE_METHODS = frozenset({"_get_kwargs", "_get_args"})
# container paths SageMaker itself provides: the code, the training config files, the failure file
_PLATFORM_PATHS = ("/opt/ml/code", "/opt/ml/processing/input/code", "/opt/ml/input/config", "/opt/ml/output/failure")
_CONTAINER_PREFIX = "/opt/ml/"


@dataclass(frozen=True)
class Finding:
    """One disagreement; a ``note`` is reported without failing the contract item."""

    path: Path
    line: int
    message: str
    level: Literal["error", "note"] = "error"

    def render(self, root: Path | None = None) -> str:
        shown = self.path
        if root is not None:
            try:
                shown = self.path.resolve().relative_to(root.resolve())
            except ValueError:
                pass
        return f"{shown}:{self.line}: {'note: ' if self.level == 'note' else ''}{self.message}"


ReadHow = Literal["index", "get", "in", "attr", "require"]


@dataclass(frozen=True)
class KeyRead:
    role: Role
    key: str
    line: int
    how: ReadHow  # "require": the script raises when the key is missing (`if "k" not in d: raise`)
    text: str  # the expression as written, for messages
    guarded: bool = False  # an optional input's path is checked before use
    key_guarded: bool = False  # a missing key cannot raise: tested with `in`/.get, or read inside try/except
    default: str | None = None  # what a .get()/getenv() falls back to, as written


@dataclass(frozen=True)
class MainBlockPath:
    """A container path written in the ``if __name__ == "__main__":`` block; ``key`` when it is the
    value of an entry of the dict passed to ``main`` as ``role``."""

    line: int
    path: str
    role: Literal["input", "output"] | None = None
    key: str | None = None


@dataclass
class ScriptAccess:
    """Every key read the analysis could resolve, and the dicts it could not follow fully."""

    main_line: int | None = None
    main_parameters: int = 0
    reads: list[KeyRead] = field(default_factory=list)
    opaque: set[Role] = field(default_factory=set)
    main_block_paths: list[MainBlockPath] = field(default_factory=list)

    def keys(self, role: Role) -> set[str]:
        return {read.key for read in self.reads if read.role == role}


def check_script(script: Path, contract: Contract) -> list[Finding]:
    """Findings for ``script`` against ``contract``; a script that does not parse is one finding."""
    try:
        source = script.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(script))
    except SyntaxError as exc:
        return [Finding(script, exc.lineno or 1, f"cannot parse the script: {exc.msg}")]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [Finding(script, 1, f"cannot read the script: {exc}")]
    return compare(analyse(tree), contract, script)


def analyse(tree: ast.Module) -> ScriptAccess:
    """What ``main`` (and what it calls in the same file) reads, plus ``os.environ`` anywhere."""
    module = _Module(tree)
    access = ScriptAccess()
    main = module.functions.get("main")
    if main is not None:
        access.main_line = main.lineno
        parameters = [arg.arg for arg in main.args.posonlyargs + main.args.args]
        access.main_parameters = len(parameters)
        if len(parameters) < len(MAIN_ROLES):
            access.opaque.update(MAIN_ROLES[len(parameters) :])  # reached through *args: unknowable
        bindings = dict(zip(parameters, MAIN_ROLES, strict=False))  # extra parameters have no role
        _FunctionScan(module, main, bindings, access).run()
    else:
        access.opaque.update(MAIN_ROLES)
    _scan_os_environ(module, tree, access)
    _scan_main_block(module, tree, access)
    return access


@dataclass(frozen=True)
class RenamedChannel:
    """A ``__main__`` block entry whose key is no declared channel but whose path is a declared
    channel's path (``file`` is None) or a path below it (``file`` relative to the channel's path)."""

    entry: MainBlockPath
    channel: str
    channel_path: str
    file: str | None


def compare(access: ScriptAccess, contract: Contract, script: Path) -> list[Finding]:
    renamed = _renamed_channels(access, contract)
    findings = [
        *_channel_findings(access, contract, script, renamed),
        *_env_findings(access, contract, script),
        *_job_argument_findings(access, contract, script),
        *_main_block_findings(access, contract, script, renamed),
    ]
    return sorted(set(findings), key=lambda finding: (finding.line, finding.message))


def _renamed_channels(access: ScriptAccess, contract: Contract) -> list[RenamedChannel]:
    """The ``__main__`` entries that pass a declared channel under a key of the script's own."""
    renamed: list[RenamedChannel] = []
    for entry in access.main_block_paths:
        if entry.role is None or entry.key is None:
            continue
        channels = contract.inputs if entry.role == "input" else contract.outputs
        if entry.key in channels:
            continue
        path = entry.path.rstrip("/") or "/"
        holders = [(name, channel.path.rstrip("/")) for name, channel in channels.items()]
        holders = [(name, root) for name, root in holders if _same_or_under(path, root)]
        if not holders:
            continue
        channel, root = max(holders, key=lambda holder: len(holder[1]))  # the innermost channel holds it
        file = path[len(root) + 1 :] if path != root else None
        renamed.append(RenamedChannel(entry, channel, root, file))
    return renamed


def _channel_findings(
    access: ScriptAccess, contract: Contract, script: Path, renamed: list[RenamedChannel]
) -> Iterator[Finding]:
    name = contract.name
    # channels main() reaches under the __main__ block's own key: not "never read" when it reads that key
    reached = {
        (item.entry.role, item.channel) for item in renamed if item.entry.key in access.keys(item.entry.role or "input")
    }
    for read in access.reads:
        if read.role not in ("input", "output"):
            continue
        kind = "input" if read.role == "input" else "output"
        channels = contract.inputs if read.role == "input" else contract.outputs
        channel = channels.get(read.key)
        if read.how == "require":
            # the script insists on the key: fine when it is always there, i.e. a required input or any output
            if channel is None:
                yield Finding(
                    script,
                    read.line,
                    f"{read.text}: the script raises when {kind} {read.key!r} is missing, and contract {name} does "
                    f"not declare it{_declared(channels)}, so it always raises; declare {kind} {read.key!r}"
                    + (" (required: true)" if kind == "input" else ""),
                )
            elif kind == "input" and not channel.required:
                yield Finding(
                    script,
                    read.line,
                    f"{read.text}: the script raises when input {read.key!r} is not wired, but contract {name} "
                    "declares it required: false; declare it required: true, or let the script run without it",
                )
            continue
        if read.how != "index" or read.key_guarded:
            continue  # .get, `in`, or a read behind `if "k" in ...`/try: a missing key cannot raise
        if channel is None:
            verb = "reads" if kind == "input" else "writes"
            yield Finding(
                script,
                read.line,
                f"{read.text} {verb} {kind} {read.key!r}, which contract {name} does not declare{_declared(channels)}",
            )
        elif kind == "input" and not channel.required and not read.guarded:
            yield Finding(
                script,
                read.line,
                f"{read.text} uses optional input {read.key!r} without a guard: "
                "when it is not wired its path does not exist; check os.path.exists(...) first, "
                "use .get(...), or wrap the read in try/except",
            )
    if "input" not in access.opaque:
        read_inputs = access.keys("input")
        for input_name, channel in contract.inputs.items():
            if channel.required and input_name not in read_inputs and ("input", input_name) not in reached:
                yield Finding(
                    script,
                    access.main_line or 1,
                    f"contract {name} declares required input {input_name!r}, "
                    f"but the script never reads input_paths[{input_name!r}]",
                )
    if "output" not in access.opaque:
        written = access.keys("output")
        for output_name in contract.outputs:
            if output_name not in written and ("output", output_name) not in reached:
                yield Finding(
                    script,
                    access.main_line or 1,
                    f"contract {name} declares output {output_name!r}, but the script never looks up "
                    f"output_paths[{output_name!r}]: nothing is written there, so a step reading it gets nothing; "
                    "write it, or remove it from the contract",
                )


def _env_findings(access: ScriptAccess, contract: Contract, script: Path) -> Iterator[Finding]:
    name = contract.name
    declared = {**{variable: None for variable in contract.required_env}, **contract.optional_env}
    unset_behaviour: dict[str, list[KeyRead]] = {}  # undeclared variables the script survives without
    for read in access.reads:
        if read.role not in ("env", "os_env") or read.key in declared:
            continue
        if read.role == "os_env" and _platform_variable(read.key):
            continue
        if read.how == "require":
            yield Finding(
                script,
                read.line,
                f"{read.text}: the script raises when env var {read.key!r} is unset, and contract {name} does not "
                "declare it, so it always raises; declare it under env_vars.required",
            )
        elif read.how == "index" and not read.key_guarded:
            yield Finding(
                script,
                read.line,
                f"{read.text} reads env var {read.key!r}, which contract {name} does not declare "
                "in env_vars (required or optional)",
            )
        else:
            unset_behaviour.setdefault(read.key, []).append(read)
    insisted = {read.key for read in access.reads if read.role in ("env", "os_env") and read.how == "require"}
    for variable, reads in unset_behaviour.items():
        if variable in insisted:
            continue  # already said: it raises when unset
        # one finding per variable, on the read that says what the script falls back to
        with_fallback = [read for read in reads if read.default is not None]
        read = min(with_fallback or reads, key=lambda r: r.line)
        behaviour = (
            f"the script falls back to {read.default}"
            if read.default is not None
            else "the script takes its branch for an unset variable"
        )
        suggestion = (
            f"declare it under env_vars.optional with that default ({variable}: {read.default})"
            if read.default not in (None, "None")
            else "declare it under env_vars (required, or optional with a default)"
        )
        yield Finding(
            script,
            read.line,
            f"{read.text} reads env var {variable!r}, which contract {name} does not declare: unless something "
            f"outside the contract sets it, {behaviour}; {suggestion} so that scenarios and the pipeline choose it",
        )
    if not {"env", "os_env"} & access.opaque and access.main_line is not None:
        read_variables = access.keys("env") | access.keys("os_env")
        for variable, default in declared.items():
            if variable not in read_variables:
                how = "required" if default is None else f"optional, default {default!r}"
                yield Finding(
                    script,
                    access.main_line,
                    f"contract {name} declares env var {variable!r} ({how}), but the script never reads it "
                    "(environ_vars, os.environ, os.getenv): setting it changes nothing; read it, or remove it "
                    "from the contract",
                    level="note",
                )


def _job_argument_findings(access: ScriptAccess, contract: Contract, script: Path) -> Iterator[Finding]:
    job_attributes = {argument.attribute for argument in contract.job_arguments}
    for read in access.reads:
        if read.role == "job_args" and read.how == "attr" and read.key not in job_attributes:
            declared = ", ".join(argument.flag for argument in contract.job_arguments) or "none"
            yield Finding(
                script,
                read.line,
                f"{read.text} reads job argument {read.key!r}, which contract {contract.name} does not declare "
                f"(job_arguments: {declared})",
            )


def _main_block_findings(
    access: ScriptAccess, contract: Contract, script: Path, renamed: list[RenamedChannel]
) -> Iterator[Finding]:
    name = contract.name
    declared_paths = [channel.path for channel in [*contract.inputs.values(), *contract.outputs.values()]]
    renamed_entries = {id(item.entry) for item in renamed}
    for item in renamed:
        yield _renamed_channel_note(item, access, script)
    for written in access.main_block_paths:
        path = written.path.rstrip("/") or "/"
        if id(written) in renamed_entries:
            continue
        if written.role is not None and written.key is not None:
            channels = contract.inputs if written.role == "input" else contract.outputs
            channel = channels.get(written.key)
            if channel is None:
                yield Finding(
                    script,
                    written.line,
                    f"the __main__ block passes {written.role} {written.key!r} as {written.path!r}, which contract "
                    f"{name} does not declare{_declared(channels)}; declare it, or drop it from the __main__ block",
                )
            elif not _same_or_under(path, channel.path):
                yield Finding(
                    script,
                    written.line,
                    f"the __main__ block passes {written.role} {written.key!r} as {written.path!r}, but contract "
                    f"{name} declares {channel.path!r}: in the container the channel is at {channel.path!r}; "
                    "use the contract's path",
                )
        elif not _platform_path(path) and not any(
            _same_or_under(path, declared) or _same_or_under(declared, path) for declared in declared_paths
        ):
            listed = ", ".join(declared_paths) or "none"
            yield Finding(
                script,
                written.line,
                f"the __main__ block uses container path {written.path!r}, which contract {name} declares for no "
                f"input or output (declared paths: {listed}): nothing is mounted there in the container; "
                "use the contract's path, or declare a channel at it",
            )


def _renamed_channel_note(item: RenamedChannel, access: ScriptAccess, script: Path) -> Finding:
    role = item.entry.role or "input"
    key = item.entry.key
    shown = f"{_ROLE_SHOWN[role]}[{key!r}]"
    inside = f" (the file {item.file} in it)" if item.file is not None else ""
    verb = "reads it" if role == "input" else "looks it up"
    reached = f"main() {verb} under that key" if key in access.keys(role) else "main() gets it under that key"
    source = "from: ..., " if role == "input" else ""
    file = f", file: {item.file}" if item.file is not None else ""
    mapping = f"{role}s: {{{item.channel}: {{{source}as: {key}{file}}}}}"
    # a note, not an error: the path is the contract's own, so `python script.py` in the container
    # reaches the channel; only the key differs, which a scenario maps instead of a new contract
    return Finding(
        script,
        item.entry.line,
        f"the __main__ block passes channel {item.channel!r} ({item.channel_path}) as {shown}{inside}: "
        f"{reached}; a scenario step maps it with {mapping} (docs/scenarios.md)",
        level="note",
    )


def _same_or_under(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def _platform_path(path: str) -> bool:
    return any(_same_or_under(path, root) for root in _PLATFORM_PATHS)


def _declared(names: Iterable[str]) -> str:
    listed = ", ".join(names)
    return f" (declared: {listed})" if listed else " (it declares none)"


def _platform_variable(name: str) -> bool:
    return name in _PLATFORM_ENV or name.startswith(_PLATFORM_ENV_PREFIXES)


# --- module facts -----------------------------------------------------------------------------


class _Module:
    """Module-level functions, string constants and the names ``os``/``os.environ`` go by."""

    def __init__(self, tree: ast.Module) -> None:
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.constants: dict[str, list[str]] = {}
        self.os_names: set[str] = set()
        self.environ_names: set[str] = set()
        self.getenv_names: set[str] = set()
        for statement in tree.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[statement.name] = statement
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "os":
                        self.os_names.add(alias.asname or "os")
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                for alias in node.names:
                    if alias.name == "environ":
                        self.environ_names.add(alias.asname or "environ")
                    elif alias.name == "getenv":
                        self.getenv_names.add(alias.asname or "getenv")
        _collect_constants(tree.body, self.constants, {})

    def is_os_environ(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.environ_names
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.os_names
        )

    def is_getenv(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.getenv_names
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "getenv"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.os_names
        )


def _collect_constants(body: Iterable[ast.stmt], into: dict[str, list[str]], known: dict[str, list[str]]) -> None:
    """``NAME = "x"`` and ``NAMES = ("a", "b")`` assignments directly in ``body``."""
    for node in body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and value is not None:
            strings = _literal_strings(value, {**known, **into})
            if strings is not None:
                into[target.id] = strings


def _literal_strings(node: ast.expr, constants: dict[str, list[str]]) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        strings: list[str] = []
        for element in node.elts:
            found = _literal_strings(element, constants)
            if found is None:
                return None
            strings += found
        return strings
    if isinstance(node, ast.JoinedStr):
        text = ""
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                text += part.value
            elif isinstance(part, ast.FormattedValue) and part.format_spec is None and part.conversion == -1:
                inner = _literal_strings(part.value, constants)
                if inner is None or len(inner) != 1:
                    return None
                text += inner[0]
            else:
                return None
        return [text]
    return None


# --- one function -----------------------------------------------------------------------------


@dataclass
class _PendingRead:
    read: KeyRead
    holders: set[str]
    node: ast.Subscript


class _FunctionScan:
    """Reads in one function given which of its names stand for which role."""

    def __init__(
        self,
        module: _Module,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        bindings: dict[str, Role],
        access: ScriptAccess,
        visited: set[tuple[str, tuple[tuple[str, Role], ...]]] | None = None,
    ) -> None:
        self.module = module
        self.function = function
        self.aliases = dict(bindings)
        self.access = access
        self.visited = visited if visited is not None else set()
        self.constants: dict[str, list[str]] = {}
        self.guarded_keys: set[str] = set()  # keys tested with `in` or read with .get
        self.guard_names: set[str] = set()  # names that appear in a guard (exists(), if-test, try)
        self.optional_reads: list[_PendingRead] = []
        self.assignments: list[tuple[set[str], set[str]]] = []  # (targets, names in the value)
        self.guarded_nodes: set[int] = set()
        self.checking_nodes: set[int] = set()  # in a test or a guard call: a read here guards its key
        self.try_nodes: set[int] = set()  # inside a try body with an except: a KeyError there is handled
        self.tested_keys: set[tuple[Role, str]] = set()  # tested with `in`, read with .get
        self.reads: list[tuple[KeyRead, ast.AST]] = []  # settled once every test in the function is known

    def run(self) -> None:
        key = (self.function.name, tuple(sorted(self.aliases.items())))
        if key in self.visited:
            return
        self.visited.add(key)
        body = self.function.body
        _collect_constants(_all_statements(body), self.constants, self.module.constants)
        self._find_aliases()
        self._mark_guarded_regions()
        for node in _walk_body(body):
            self._visit(node)
        self._settle_optional_reads()

    # aliases: `paths = input_paths`, `paths = dict(input_paths)`, `paths = input_paths.copy()`
    def _find_aliases(self) -> None:
        changed = True
        while changed:
            changed = False
            for node in _walk_body(self.function.body):
                targets: list[ast.expr] = []
                value: ast.expr | None = None
                if isinstance(node, ast.Assign):
                    targets, value = node.targets, node.value
                elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                    targets, value = [node.target], node.value
                if value is None:
                    continue
                role = self._role_of_container(value)
                for target in targets:
                    if role is not None and isinstance(target, ast.Name) and self.aliases.get(target.id) != role:
                        self.aliases[target.id] = role
                        changed = True

    def _role_of(self, node: ast.expr) -> Role | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if self.module.is_os_environ(node):
            return "os_env"
        return None

    def _role_of_container(self, node: ast.expr) -> Role | None:
        """The role of an expression that is (a copy of) a role's dict or namespace."""
        role = self._role_of(node)
        if role is not None:
            return role
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "dict" and len(node.args) == 1 and not node.keywords:
                return self._role_of(node.args[0])
            if isinstance(node.func, ast.Attribute) and node.func.attr in _DICT_COPIES and not node.args:
                return self._role_of(node.func.value)
        return None

    def _mark_guarded_regions(self) -> None:
        """Nodes inside try bodies, if/while/ternary tests and guard calls; names found there."""
        for node in _walk_body(self.function.body):
            for region in _guard_regions(node):
                for inner in ast.walk(region):
                    self.guarded_nodes.add(id(inner))
                    if not isinstance(node, ast.Try):
                        self.checking_nodes.add(id(inner))
                    if isinstance(inner, ast.Name) and not isinstance(node, ast.Try):
                        self.guard_names.add(inner.id)
            if isinstance(node, ast.Try) and node.handlers:
                # a name used inside a try body is guarded wherever it was set
                for statement in node.body:
                    self.guard_names.update(n.id for n in ast.walk(statement) if isinstance(n, ast.Name))
                    self.try_nodes.update(id(n) for n in ast.walk(statement))

    def _loop_strings(self, name: str) -> list[str] | None:
        for node in _walk_body(self.function.body):
            if (
                isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension))
                and isinstance(node.target, ast.Name)
                and node.target.id == name
            ):
                return _literal_strings(node.iter, {**self.module.constants, **self.constants})
        return None

    def _keys(self, node: ast.expr) -> list[str] | None:
        found = _literal_strings(node, {**self.module.constants, **self.constants})
        if found is None and isinstance(node, ast.Name):
            found = self._loop_strings(node.id)
        return found

    def _record(
        self,
        role: Role,
        key_node: ast.expr,
        node: ast.expr,
        how: ReadHow,
        guarded: bool,
        default: str | None = None,
    ) -> None:
        keys = self._keys(key_node)
        if keys is None:
            self.access.opaque.add(role)
            return
        for key in keys:
            read = KeyRead(role, key, node.lineno, how, ast.unparse(node), guarded, default=default)
            if how in ("get", "in") or id(node) in self.checking_nodes:
                self.guarded_keys.add(key)  # `x[K] if exists(x[K]) else ...` guards the other reads of K
            if how in ("get", "in", "require") or id(node) in self.checking_nodes:
                self.tested_keys.add((role, key))  # `if "K" in x: x["K"]`, `if x.get("K"): x["K"]`
            if role == "input" and how == "index" and not guarded and isinstance(node, ast.Subscript):
                self.optional_reads.append(_PendingRead(read, set(), node))
            else:
                self.reads.append((read, node))

    def _visit(self, node: ast.AST) -> None:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
            if node.value is not None:
                self.assignments.append((names, {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}))
                self.assignments[-1][1].update(
                    f"#{id(n)}" for n in ast.walk(node.value) if isinstance(n, ast.Subscript)
                )
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            role = self._role_of(node.iter)
            if role is not None:
                self.access.opaque.add(role)  # `for name in input_paths`
        if isinstance(node, ast.Subscript):
            role = self._role_of(node.value)
            if role is not None and role not in ("job_args", "os_env"):  # os.environ: see _scan_os_environ
                self._record(role, node.slice, node, "index", id(node) in self.guarded_nodes)
        elif isinstance(node, ast.Compare):
            for operator, right in zip(node.ops, node.comparators, strict=True):
                role = self._role_of(right)
                if role is not None and role != "os_env" and isinstance(operator, (ast.In, ast.NotIn)):
                    self._record(role, node.left, node, "in", True)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            role = self._role_of(node.value)
            if role == "job_args" and not node.attr.startswith("__") and node.attr not in _NAMESPACE_METHODS:
                self.access.reads.append(
                    KeyRead(
                        "job_args", node.attr, node.lineno, "attr", ast.unparse(node), id(node) in self.guarded_nodes
                    )
                )
            elif role is not None and role != "job_args" and node.attr not in _DICT_READS | _DICT_COPIES:
                self.access.opaque.add(role)  # .items(), .values(), .keys(), .update(): not followed
        elif isinstance(node, ast.Call):
            self._visit_call(node)
        elif isinstance(node, ast.If) and _raises(node.body):
            for container, key_node in _missing_key_tests(node.test, self.module):
                role = self._role_of(container)
                if role is not None and role not in ("job_args", "os_env"):
                    self._record(role, key_node, node.test, "require", True)
        elif isinstance(node, ast.Starred) or (isinstance(node, ast.keyword) and node.arg is None):
            role = self._role_of(node.value)
            if role is not None:
                self.access.opaque.add(role)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                role = self._role_of(value)
                if key is None and role is not None:
                    self.access.opaque.add(role)  # {**input_paths}

    def _visit_call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _DICT_READS and node.args:
            role = self._role_of(func.value)
            if role is not None and role not in ("job_args", "os_env"):
                self._record(role, node.args[0], node, "get", True, _fallback(node))
                return
        if (
            isinstance(func, ast.Name)
            and func.id in ("getattr", "hasattr")
            and len(node.args) >= 2
            and self._role_of(node.args[0]) == "job_args"
        ):
            keys = self._keys(node.args[1])
            if keys is None:
                self.access.opaque.add("job_args")
            for key in keys or []:
                # getattr with a default or hasattr cannot fail
                safe = func.id == "hasattr" or len(node.args) > 2
                self.access.reads.append(
                    KeyRead("job_args", key, node.lineno, "get" if safe else "attr", ast.unparse(node), safe)
                )
            return
        passed = self._passed_roles(node)
        if not passed:
            return
        callee = self.module.functions.get(func.id) if isinstance(func, ast.Name) else None
        if callee is None:
            if isinstance(func, ast.Name) and func.id in ("dict", "len", "print", "repr", "str", "sorted", "list"):
                if func.id in ("sorted", "list"):
                    self.access.opaque.update(passed.values())  # their keys are iterated
                return
            self.access.opaque.update(passed.values())  # another module's function: not followed
            return
        _FunctionScan(self.module, callee, _bind(callee, node, self), self.access, self.visited).run()

    def _passed_roles(self, node: ast.Call) -> dict[str, Role]:
        passed: dict[str, Role] = {}
        for index, argument in enumerate(node.args):
            role = self._role_of(argument)
            if role is not None and role != "os_env":
                passed[str(index)] = role
        for keyword in node.keywords:
            role = self._role_of(keyword.value)
            if role is not None and role != "os_env" and keyword.arg is not None:
                passed[keyword.arg] = role
        return passed

    def _settle_optional_reads(self) -> None:
        """An unguarded-looking read is guarded when what it was stored in is checked somewhere."""
        holders_of: dict[str, set[str]] = {}
        for pending in self.optional_reads:
            marker = f"#{id(pending.node)}"
            holders = {target for targets, names in self.assignments if marker in names for target in targets}
            changed = True
            while changed:  # paths built from a holder are holders too
                changed = False
                for targets, names in self.assignments:
                    if names & holders and not targets <= holders:
                        holders |= targets
                        changed = True
            holders_of[marker] = holders
        for pending in self.optional_reads:
            holders = holders_of[f"#{id(pending.node)}"]
            guarded = (
                pending.read.key in self.guarded_keys
                or bool(holders & self.guard_names)
                or self._guarded_by_callee(pending.node, holders)
            )
            self.reads.append((replace(pending.read, guarded=guarded), pending.node))
        for read, node in self.reads:
            key_guarded = (read.role, read.key) in self.tested_keys or id(node) in self.try_nodes
            self.access.reads.append(replace(read, key_guarded=key_guarded))

    def _guarded_by_callee(self, node: ast.Subscript, holders: set[str]) -> bool:
        """The read (or a holder) is passed to a same-file function that guards that parameter."""
        for call in _walk_body(self.function.body):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            callee = self.module.functions.get(call.func.id)
            if callee is None:
                continue
            parameters = [arg.arg for arg in callee.args.posonlyargs + callee.args.args]
            # parameters with defaults may get no argument; surplus arguments bind to no named parameter
            pairs = list(zip(parameters, call.args, strict=False)) + [(k.arg, k.value) for k in call.keywords if k.arg]
            for parameter, argument in pairs:
                inside = {id(n) for n in ast.walk(argument)}
                names = {n.id for n in ast.walk(argument) if isinstance(n, ast.Name)}
                if (id(node) in inside or names & holders) and parameter in _guarded_parameters(callee):
                    return True
        return False


def _bind(callee: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call, caller: _FunctionScan) -> dict[str, Role]:
    parameters = [arg.arg for arg in callee.args.posonlyargs + callee.args.args]
    bindings: dict[str, Role] = {}
    for index, argument in enumerate(call.args):
        role = caller._role_of(argument)
        if role is None or role == "os_env":
            continue
        if index < len(parameters):
            bindings[parameters[index]] = role
        else:
            caller.access.opaque.add(role)  # into *args
    names = set(parameters) | {arg.arg for arg in callee.args.kwonlyargs}
    for keyword in call.keywords:
        role = caller._role_of(keyword.value)
        if role is None or role == "os_env" or keyword.arg is None:
            continue
        if keyword.arg in names:
            bindings[keyword.arg] = role
        else:
            caller.access.opaque.add(role)  # into **kwargs
    return bindings


def _guarded_parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    guarded: set[str] = set()
    for node in _walk_body(function.body):
        for region in _guard_regions(node):
            guarded.update(n.id for n in ast.walk(region) if isinstance(n, ast.Name))
    return guarded


def _guard_regions(node: ast.AST) -> list[ast.AST]:
    """The parts of ``node`` where a missing path is checked for or survived."""
    if isinstance(node, ast.Try) and node.handlers:
        return list(node.body)
    if isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)):
        return [node.test]
    if isinstance(node, ast.Call) and _call_name(node.func) in _GUARD_CALLS:
        return [node]
    return []


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _walk_body(body: list[ast.stmt]) -> Iterator[ast.AST]:
    for statement in body:
        yield from ast.walk(statement)


def _all_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    return [node for node in _walk_body(body) if isinstance(node, ast.stmt)]


def _scan_os_environ(module: _Module, tree: ast.Module, access: ScriptAccess) -> None:
    """``os.environ`` reads anywhere in the file: module level, helpers, classes."""
    constants = dict(module.constants)
    guarded_nodes: set[int] = set()
    try_nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and node.handlers:
            for statement in node.body:
                try_nodes.update(id(n) for n in ast.walk(statement))
        elif isinstance(node, (ast.If, ast.While, ast.IfExp)):
            guarded_nodes.update(id(n) for n in ast.walk(node.test))
    found: list[tuple[ast.expr, ast.expr, ReadHow, str | None]] = []  # (read, key, how, fallback)
    accounted: set[int] = set()  # os.environ nodes whose use is a read or a write of one key
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and module.is_os_environ(node.value):
            accounted.add(id(node.value))
            if isinstance(node.ctx, ast.Load):
                found.append((node, node.slice, "index", None))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and module.is_os_environ(node.func.value)
        ):
            if node.func.attr in _DICT_READS and node.args:
                accounted.add(id(node.func.value))
                found.append((node, node.args[0], "get", _fallback(node)))
            elif node.func.attr in ("update", "__setitem__"):
                accounted.add(id(node.func.value))  # a write reads nothing
        elif isinstance(node, ast.Call) and module.is_getenv(node.func) and node.args:
            found.append((node, node.args[0], "get", _fallback(node)))
        elif isinstance(node, ast.Compare) and any(module.is_os_environ(c) for c in node.comparators):
            accounted.update(id(c) for c in node.comparators)
            found.append((node, node.left, "in", None))
        elif isinstance(node, ast.If) and _raises(node.body):
            for container, key_node in _missing_key_tests(node.test, module):
                if module.is_os_environ(container) or module.is_getenv(container):
                    found.append((node.test, key_node, "require", None))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and module.is_os_environ(node) and id(node) not in accounted:
            access.opaque.add("os_env")  # dict(os.environ), env=os.environ, .items(): any variable may be read
    tested: set[str] = set()  # `if "K" in os.environ: os.environ["K"]` cannot raise
    for _, key_node, how, _ in found:
        if how != "index":
            tested.update(_literal_strings(key_node, constants) or [])
    for read, key_node, how, fallback in found:
        keys = _literal_strings(key_node, constants)
        if keys is None:
            continue  # a computed name: nothing to say
        for key in keys:
            access.reads.append(
                KeyRead(
                    "os_env",
                    key,
                    read.lineno,
                    how,
                    ast.unparse(read),
                    how != "index" or id(read) in guarded_nodes or id(read) in try_nodes,
                    key_guarded=how != "index" or id(read) in try_nodes or key in tested,
                    default=fallback,
                )
            )


def _raises(body: list[ast.stmt]) -> bool:
    """The block raises or exits the process (``raise``, ``sys.exit(...)``, ``exit(...)``)."""
    for node in _walk_body(body):
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, ast.Call) and _call_name(node.func) in ("exit", "_exit", "quit"):
            return True
    return False


def _missing_key_tests(test: ast.expr, module: _Module) -> Iterator[tuple[ast.expr, ast.expr]]:
    """(container, key) pairs a test is true for when the key is missing: ``"k" not in d``,
    ``not d.get("k")``, ``d.get("k") is None``, ``not os.getenv("k")``, joined by ``or``."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        for value in test.values:
            yield from _missing_key_tests(value, module)
    elif isinstance(test, ast.Compare) and len(test.ops) == 1:
        operator, right = test.ops[0], test.comparators[0]
        if isinstance(operator, ast.NotIn):
            yield right, test.left
        elif isinstance(operator, (ast.Is, ast.Eq)) and isinstance(right, ast.Constant) and right.value is None:
            yield from _looked_up(test.left, module)
    elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        operand = test.operand
        if isinstance(operand, ast.Compare) and len(operand.ops) == 1 and isinstance(operand.ops[0], ast.In):
            yield operand.comparators[0], operand.left
        else:
            yield from _looked_up(operand, module)


def _looked_up(node: ast.expr, module: _Module) -> Iterator[tuple[ast.expr, ast.expr]]:
    """``d.get("k")`` -> (d, "k"); ``os.getenv("k")`` -> (os.getenv, "k")."""
    if isinstance(node, ast.Call) and node.args:
        if isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            yield node.func.value, node.args[0]
        elif module.is_getenv(node.func):
            yield node.func, node.args[0]


def _fallback(call: ast.Call) -> str:
    """What ``d.get(k, default)`` / ``os.getenv(k, default)`` returns when ``k`` is missing, as written."""
    default = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "default"), None)
    if default is None:
        return "None"
    if isinstance(default, ast.Constant):
        return repr(default.value)
    return ast.unparse(default)


# --- the __main__ block -----------------------------------------------------------------------


def _scan_main_block(module: _Module, tree: ast.Module, access: ScriptAccess) -> None:
    """Container paths the ``if __name__ == "__main__":`` block hard-codes: the entries of the dicts it
    passes to ``main`` (literals, constants, ``os.path.join`` of them, argparse defaults behind
    ``args.x``), then every other ``/opt/ml/...`` literal or constant it uses."""
    block = next((node for node in tree.body if isinstance(node, ast.If) and _is_main_test(node.test)), None)
    if block is None:
        return
    constants = dict(module.constants)
    _collect_constants(_all_statements(block.body), constants, module.constants)
    defaults = _argparse_defaults(tree, constants)
    used: set[int] = set()  # nodes already read as the value of a dict entry

    def resolve(node: ast.expr) -> str | None:
        strings = _literal_strings(node, constants)
        if strings is not None:
            return strings[0] if len(strings) == 1 else None
        if isinstance(node, ast.Attribute) and node.attr in defaults:
            default = defaults[node.attr]
            used.add(id(default))
            return resolve(default)
        if isinstance(node, ast.Call) and _joins_paths(node.func) and node.args:
            parts = [resolve(argument) for argument in node.args]
            known = [part for part in parts if part is not None]
            return "/".join(part.rstrip("/") for part in known) if len(known) == len(parts) else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = resolve(node.left), resolve(node.right)
            return f"{left.rstrip('/')}/{right}" if left is not None and right is not None else None
        return None

    for role, entries in _dicts_passed_to_main(block).items():
        for key_node, value in entries:
            keys = _literal_strings(key_node, constants)
            path = resolve(value)
            if keys is None or len(keys) != 1 or path is None or not path.startswith("/"):
                continue
            used.update(id(node) for node in ast.walk(value))
            access.main_block_paths.append(MainBlockPath(value.lineno, path, role, keys[0]))
    for node in _walk_body(block.body):
        if id(node) in used:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(_CONTAINER_PREFIX):
            access.main_block_paths.append(MainBlockPath(node.lineno, node.value))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in module.constants:
            for value in module.constants[node.id]:
                if value.startswith(_CONTAINER_PREFIX):
                    access.main_block_paths.append(MainBlockPath(node.lineno, value))


def _joins_paths(func: ast.expr) -> bool:
    """``os.path.join``/``path.join``, ``Path(...)``/``PurePosixPath(...)``; not ``",".join``."""
    if isinstance(func, ast.Attribute) and func.attr == "join":
        owner = func.value
        return (isinstance(owner, ast.Attribute) and owner.attr == "path") or (
            isinstance(owner, ast.Name) and owner.id in ("path", "posixpath")
        )
    return _call_name(func) in ("Path", "PurePosixPath")


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(side, ast.Name) and side.id == "__name__" for side in sides) and any(
        isinstance(side, ast.Constant) and side.value == "__main__" for side in sides
    )


def _argparse_defaults(tree: ast.Module, constants: dict[str, list[str]]) -> dict[str, ast.expr]:
    """``parser.add_argument("--data-dir", default=X)`` anywhere in the file -> {"data_dir": X}."""
    defaults: dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _call_name(node.func) == "add_argument"):
            continue
        keywords = {keyword.arg: keyword.value for keyword in node.keywords if keyword.arg}
        if "default" not in keywords:
            continue
        flags = [flag for argument in node.args for flag in _literal_strings(argument, constants) or []]
        dest_node = keywords.get("dest")
        dest = _literal_strings(dest_node, constants) if dest_node is not None else None
        if dest:
            defaults[dest[0]] = keywords["default"]
        elif flags:
            long_flags = [flag for flag in flags if flag.startswith("--")] or flags
            defaults[long_flags[0].lstrip("-").replace("-", "_")] = keywords["default"]
    return defaults


def _dicts_passed_to_main(block: ast.If) -> dict[Literal["input", "output"], list[tuple[ast.expr, ast.expr]]]:
    """(key, value) entries of the dicts the block passes to ``main`` as input_paths and output_paths:
    dict literals in the call, or names bound in the block to a dict literal and then filled by
    ``name["k"] = v``. Without a ``main(...)`` call, names that say ``input``/``output``."""
    roles: dict[str, Literal["input", "output"]] = {}
    literals: dict[Literal["input", "output"], list[ast.Dict]] = {"input": [], "output": []}
    call = next(
        (
            node
            for node in _walk_body(block.body)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "main"
        ),
        None,
    )
    if call is not None:
        passed: list[tuple[Literal["input", "output"], ast.expr]] = [
            (role, argument) for role, argument in zip(("input", "output"), call.args, strict=False)
        ]
        passed += [
            ("input" if keyword.arg == "input_paths" else "output", keyword.value)
            for keyword in call.keywords
            if keyword.arg in ("input_paths", "output_paths")
        ]
        for role, argument in passed:
            if isinstance(argument, ast.Dict):
                literals[role].append(argument)
            elif isinstance(argument, ast.Name):
                roles[argument.id] = role
    entries: dict[Literal["input", "output"], list[tuple[ast.expr, ast.expr]]] = {"input": [], "output": []}
    for node in _walk_body(block.body):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        holder = target.value if isinstance(target, ast.Subscript) else target
        if not isinstance(holder, ast.Name):
            continue
        role = roles.get(holder.id) if call is not None else _role_by_name(holder.id)
        if role is None:
            continue
        if isinstance(target, ast.Subscript):
            entries[role].append((target.slice, node.value))
        elif isinstance(node.value, ast.Dict):
            literals[role].append(node.value)
    for role, dicts in literals.items():
        for literal in dicts:
            entries[role] += [(key, value) for key, value in zip(literal.keys, literal.values, strict=True) if key]
    return entries


def _role_by_name(name: str) -> Literal["input", "output"] | None:
    lowered = name.lower()
    if "input" in lowered:
        return "input"
    if "output" in lowered:
        return "output"
    return None
