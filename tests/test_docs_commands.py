"""Every command block of README.md and docs/*.md runs, and shows what the tool really prints.

A *command block* is a fenced ```bash (or sh, shell, console) block, or an untagged fence whose
lines start with ``$ `` (a transcript: the ``$ `` lines, with their ``\\`` continuations, are the
commands; the other lines are the output shown). Each is one test, with the id
``<file>:<line of the opening fence>``.

How a block runs:

* in a sandbox of its own: a temporary copy of what a clone holds that the commands use
  (``scenarios/``, ``docs/``, README.md, tox.ini), never the repository itself, so pytest's
  cache, the step cache and every file the commands write are the sandbox's. Blocks with the same
  ``setup:`` marker share the sandbox it made, one per test process, in place (the step cache
  keys on the absolute paths of the scripts, so a copy would be cold): such a block must leave it
  as the next one needs it. Blocks without a setup whose commands are the same (README's and
  docs/index.md's) run once per test process, as they start from the same state;
* with bash (``set -e -o pipefail``: a command that fails fails the block), this checkout's
  package first on ``PYTHONPATH`` (as tests/test_repository_files.py does), the interpreter running
  the tests first on ``PATH``, no AWS credentials or endpoint from the environment, and
  ``COLUMNS=80`` (pytest's separators and truncated summary lines depend on the width);
* in a session of its own, killed as a whole when the block ends (``moto_server &`` and
  whatever else a block starts in the background), and the test fails if anything of it is
  still alive afterwards; with a timeout, as a guard against a hang.

Substitutions, all visible in the Markdown source:

* ``pip install ...`` does not install anything: the tests run with the checkout on PYTHONPATH
  and the test extra installed, and installing into the running environment would change it
  under every other test. A ``pip`` shell function checks instead that each distribution named
  (``.`` is this project) and the requirements of the extras named are installed, and fails the
  block otherwise; so a doc asking for something the test extra lacks still fails.
* markers in an HTML comment right above the fence (invisible in the rendered site), one per
  comment, ``<!-- docs-test: KEY: VALUE -->``:

  - ``skip: REASON``: the block cannot run here (a Docker engine, a cluster, a real AWS account,
    a past commit, a long benchmark); reported as skipped with the reason;
  - ``exit: N``: the exit status the doc shows or describes (default 0);
  - ``setup: COMMANDS``: bash run first in the same sandbox, which must succeed; its output is
    not compared (a failing step the doc starts from, files a command reads);
  - ``run: COMMANDS``: run these instead of the block, when part of it cannot run here: README's
    quick start also runs the plugin's own test suite (``pytest -n auto``), which is the suite
    running this test; its marker runs the scenarios part only;
  - ``xfail: REASON``: the tool does not (yet) print what the doc shows, for the reason given (a
    product bug, not a doc to rewrite); strict: the test fails once the block passes;
  - ``free-port: N``: the literal port N in the commands is replaced by a free port, so two
    test runs on one machine do not collide on the port a doc names.

How the output shown in a transcript is checked: every shown line must be a line of the real
output (stdout and stderr together), in any order (xdist workers print in any order), after
both are normalized: each number becomes ``0`` (durations, sizes, percentages, versions, worker
ids, line numbers vary by run and machine), each absolute path ``<path>`` (temporary
directories, the interpreter), runs of 3 or more ``=``, ``-`` or ``_`` become 3 (a separator's
length follows the text in it), and whitespace is dropped (column widths follow the values). A
shown line ending in ``...`` (pytest's truncated summary lines, a cut table) must begin a real
line; a line that is only ``...`` elides lines. So every word, name, status, verdict and column
the doc shows must still be printed: a doc showing output the tool no longer prints fails.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# What of a clone the commands use; copied into each block's sandbox.
# Not pyproject.toml: its testpaths name tests/, which is not copied (pytest would warn of it in every run).
SANDBOX_CONTENT = ["scenarios", "docs", "README.md", "tox.ini"]
BLOCK_TIMEOUT_S = 600  # a hang guard only: a block takes seconds
MARKER_KEYS = {"skip", "exit", "setup", "run", "free-port", "xfail"}
# the most blocks that may be skipped: each is a command no reader can check here, listed with its reason
MAX_SKIPPED = 11

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[\w+-]*)\s*$")
_MARKER = re.compile(r"^docs-test:\s*(?P<key>[\w-]+)\s*(?::\s*(?P<value>.*))?$", re.DOTALL)
_SHELL_INFO = {"bash", "sh", "shell", "console"}


@dataclass(frozen=True)
class CommandBlock:
    """One command block of a doc page, with the markers above it."""

    path: str  # relative to the repository, e.g. docs/s3.md
    line: int  # 1-based line of the opening fence
    commands: tuple[str, ...]
    shown_output: tuple[str, ...]
    markers: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"


def _markers_above(lines: list[str], fence_index: int) -> dict[str, str]:
    """The ``<!-- docs-test: ... -->`` comments directly above a fence (no blank line between)."""
    markers: dict[str, str] = {}
    end = fence_index - 1
    while end >= 0 and lines[end].strip().endswith("-->"):
        start = end
        while start >= 0 and "<!--" not in lines[start]:
            start -= 1
        if start < 0:
            break
        text = textwrap.dedent("\n".join(lines[start : end + 1])).strip()
        match = _MARKER.match(text.removeprefix("<!--").removesuffix("-->").strip())
        if not match:
            break
        key = match.group("key")
        if key in markers:
            raise ValueError(f"line {start + 1}: marker '{key}' given twice above the fence on line {fence_index + 1}")
        markers[key] = (match.group("value") or "").strip()
        end = start - 1
    return markers


def _logical_lines(body: list[str]) -> list[str]:
    """Lines with their ``\\`` continuations joined."""
    joined: list[str] = []
    pending = ""
    for line in body:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    if pending:
        joined.append(pending)
    return joined


def _parse_transcript(body: list[str]) -> tuple[list[str], list[str]]:
    commands: list[str] = []
    output: list[str] = []
    index = 0
    while index < len(body):
        line = body[index]
        if line.startswith("$ "):
            command = line[2:]
            while command.rstrip().endswith("\\") and index + 1 < len(body):
                index += 1
                command = command.rstrip()[:-1] + " " + body[index].strip()
            commands.append(command)
        else:
            output.append(line)
        index += 1
    return commands, output


def command_blocks(path: Path) -> list[CommandBlock]:
    """The command blocks of one Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[CommandBlock] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, info = len(opening["indent"]), opening["fence"], opening["info"].lower()
        close = index + 1
        while close < len(lines) and not (
            lines[close].strip().startswith(fence) and set(lines[close].strip()) == {fence[0]}
        ):
            close += 1
        body = [line[indent:] if line[:indent].isspace() else line.lstrip() for line in lines[index + 1 : close]]
        relative = path.relative_to(REPO).as_posix()
        is_transcript = any(line.startswith("$ ") for line in body)
        if info in _SHELL_INFO or (not info and is_transcript):
            if is_transcript:
                commands, output = _parse_transcript(body)
            else:
                commands = [line for line in _logical_lines(body) if line.strip() and not line.lstrip().startswith("#")]
                output = []
            blocks.append(
                CommandBlock(relative, index + 1, tuple(commands), tuple(output), _markers_above(lines, index))
            )
        index = close + 1
    return blocks


ALL_BLOCKS = [block for path in DOC_FILES for block in command_blocks(path)]


# --- comparing the output shown with the real output --------------------------------------------------

_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/$])/[\w.@+~-]+(?:/[\w.@+~-]*)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_RULE = re.compile(r"([=_-])\1{2,}")


def normalized(line: str) -> str:
    """A line with what varies by run and machine taken out (see the module docstring)."""
    line = _ABSOLUTE_PATH.sub("<path>", line)
    line = _NUMBER.sub("0", line)
    line = _RULE.sub(lambda match: match.group(1) * 3, line)
    return re.sub(r"\s+", "", line)


def missing_lines(shown: tuple[str, ...], real: str) -> list[str]:
    """The shown lines that the real output does not have."""
    real_lines = [normalized(line) for line in real.splitlines()]
    missing = []
    for line in shown:
        text = line.strip()
        if not text or text == "...":
            continue
        if text.endswith("..."):
            prefix = normalized(text[:-3])
            found = any(real_line.startswith(prefix) for real_line in real_lines)
        else:
            found = normalized(text) in real_lines
        if not found:
            missing.append(line)
    return missing


# --- running a block ------------------------------------------------------------------------------------

# `pip install` checks that what it names is installed (see the module docstring).
_PIP_CHECK = r"""
import re, sys
from importlib.metadata import PackageNotFoundError, distribution
from packaging.requirements import Requirement

def check(name, extras, seen):
    if (name, extras) in seen:
        return
    seen.add((name, extras))
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        sys.exit(f"docs test: pip install: {name} is not installed in the test environment")
    for text in dist.requires or []:
        requirement = Requirement(text)
        if requirement.marker and any(requirement.marker.evaluate({"extra": extra}) for extra in extras):
            check(requirement.name, frozenset(requirement.extras), seen)

seen = set()
for argument in sys.argv[1:]:
    if argument.startswith("-"):
        continue
    match = re.fullmatch(r"(?P<name>\.|[A-Za-z0-9._-]+)(?:\[(?P<extras>[^]]*)\])?(?:[<>=!~].*)?", argument)
    if not match:
        sys.exit(f"docs test: pip install: expected a requirement or '.', got {argument!r}")
    name = "pytest-cursus" if match["name"] == "." else match["name"]
    extras = frozenset(extra.strip() for extra in (match["extras"] or "").split(",") if extra.strip())
    check(name, extras, seen)
"""

_PREAMBLE = """\
set -o pipefail
pip() {
    if [ "$1" != install ]; then echo "docs test: only 'pip install' is supported, got: pip $*" >&2; return 2; fi
    shift
    python -c "$DOCS_TEST_PIP_CHECK" "$@"
}
"""


def checked_script(commands: list[str], expected_status: int) -> str:
    """The commands, each followed by a check of its exit status: the script exits 86 at the first wrong one."""
    lines = [_PREAMBLE]
    for command in commands:
        quoted = shlex.quote(command)
        lines += [
            command,
            f'status=$?; if [ "$status" != {expected_status} ]; then '
            f'echo "docs test: exit status $status, expected {expected_status}: "{quoted} >&2; exit 86; fi',
        ]
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sandbox_env(tmp: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "PYTEST_", "COV_", "CURSUS_")) and name != "COLUMNS"
    }
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        COLUMNS="80",
        NO_COLOR="1",
        PY_COLORS="0",
        TMPDIR=str(tmp),
        # no credentials, config or instance metadata from this machine: blocks set their own
        AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        DOCS_TEST_PIP_CHECK=_PIP_CHECK,
    )
    return env


@dataclass
class Finished:
    status: int
    output: str


def run_in_session(script: str, cwd: Path, env: dict[str, str], log: Path) -> Finished:
    """Run a bash script in its own session; kill the session when it ends and check nothing survived."""
    with log.open("wb") as sink:  # a file, not a pipe: a background process would hold a pipe open
        process = subprocess.Popen(
            ["bash", "-c", script], cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            status = process.wait(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            status = -1
        finally:
            _kill_session(process.pid)
            process.wait()
    output = log.read_text(encoding="utf-8", errors="replace")
    if status == -1:
        pytest.fail(f"timed out after {BLOCK_TIMEOUT_S} s; output:\n{output}")
    return Finished(status, output)


def _session_members(session: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def _kill_session(session: int) -> None:
    try:
        os.killpg(session, signal.SIGKILL)
    except ProcessLookupError:
        pass
    # processes that left the group but not the session (a step's own process group)
    for process in _session_members(session):
        try:
            process.kill()
        except psutil.Error:
            pass
    deadline = time.monotonic() + 30
    while (left := _session_members(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"still running after the block was killed: {[process.cmdline() for process in left]}"


def make_sandbox(root: Path) -> Path:
    sandbox = root / "clone"
    sandbox.mkdir()
    for name in SANDBOX_CONTENT:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, sandbox / name, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        else:
            shutil.copy2(source, sandbox / name)
    return sandbox


# --- the tests ------------------------------------------------------------------------------------------


def test_the_docs_have_command_blocks_and_every_marker_is_well_formed() -> None:
    assert len(ALL_BLOCKS) >= 30, [block.id for block in ALL_BLOCKS]  # the parser finds them
    for block in ALL_BLOCKS:
        assert block.commands, f"{block.id}: a command block without a command"
        assert set(block.markers) <= MARKER_KEYS, f"{block.id}: unknown marker {set(block.markers) - MARKER_KEYS}"
        if "skip" in block.markers:
            assert block.markers["skip"], f"{block.id}: a skip marker says why the block cannot run here"
            assert set(block.markers) == {"skip"}, f"{block.id}: a skipped block has no other marker"
        if "exit" in block.markers:
            assert block.markers["exit"].isdigit(), f"{block.id}: exit: expected a number, got {block.markers['exit']}"
        for key in ("setup", "run", "free-port"):
            assert block.markers.get(key, "-"), f"{block.id}: marker '{key}' is empty"


def test_every_docs_test_marker_sits_above_a_command_block() -> None:
    """A marker left behind when its block was edited away would silently stop applying."""
    attached = sum(len(block.markers) for block in ALL_BLOCKS)
    written = sum(path.read_text(encoding="utf-8").count("<!-- docs-test:") for path in DOC_FILES)
    assert written == attached


def test_few_blocks_are_skipped() -> None:
    skipped = {block.id: block.markers["skip"] for block in ALL_BLOCKS if "skip" in block.markers}
    assert len(skipped) <= MAX_SKIPPED, skipped


def test_the_output_comparison_catches_a_line_the_tool_no_longer_prints() -> None:
    real = "scenarios/a.yaml::train PASSED                [ 36%]\n======== 3 passed in 1.52s ========\n"
    assert missing_lines(("scenarios/a.yaml::train PASSED  [100%]", "...", "=== 7 passed in 0.1s ==="), real) == []
    assert missing_lines(("scenarios/a.yaml::train CACHED [ 36%]",), real) == ["scenarios/a.yaml::train CACHED [ 36%]"]
    assert missing_lines(("scenarios/a.yaml::tr...",), real) == []
    assert missing_lines(("scenarios/b.yaml::tr...",), real) == ["scenarios/b.yaml::tr..."]
    assert normalized("at /usr/local/bin/python3.11 in /tmp/x") == normalized("at /opt/py/bin/python in /var/tmp")


# Sandboxes made by a setup, by setup text (see the module docstring), and the results of blocks
# without a setup, by commands.
_SET_UP: dict[str, tuple[Path, dict[str, str]]] = {}
_FINISHED: dict[tuple[str, ...], Finished] = {}


def sandbox_for(block: CommandBlock, root: Path, factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The block's sandbox and environment: its own, or the one its setup made."""
    setup = block.markers.get("setup")
    if setup is None:
        (root / "tmp").mkdir()
        return make_sandbox(root), sandbox_env(root / "tmp")
    if setup not in _SET_UP:
        shared_root = factory.mktemp("setup")
        (shared_root / "tmp").mkdir()
        sandbox, env = make_sandbox(shared_root), sandbox_env(shared_root / "tmp")
        made = run_in_session(_PREAMBLE + "set -e\n" + setup, sandbox, env, shared_root / "setup.log")
        assert made.status == 0, f"{block.id}: the setup failed ({made.status}):\n{made.output}"
        _SET_UP[setup] = (sandbox, env)
    return _SET_UP[setup]


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.id for block in ALL_BLOCKS])
def test_the_command_block_runs_as_documented(
    block: CommandBlock, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if "skip" in block.markers:
        pytest.skip(block.markers["skip"])
    sandbox, env = sandbox_for(block, tmp_path, tmp_path_factory)
    commands = [block.markers["run"]] if "run" in block.markers else list(block.commands)
    if "free-port" in block.markers:
        port = rf"\b{re.escape(block.markers['free-port'])}\b"
        free = str(_free_port())
        commands = [re.sub(port, free, command) for command in commands]
    expected_status = int(block.markers.get("exit", "0"))

    script = checked_script(commands, expected_status)
    memo = (script,) if "setup" not in block.markers and "free-port" not in block.markers else None
    finished = _FINISHED.get(memo) if memo else None
    if finished is None:
        finished = run_in_session(script, sandbox, env, tmp_path / "block.log")
        if memo:
            _FINISHED[memo] = finished

    missing = missing_lines(block.shown_output, finished.output)
    if "xfail" in block.markers:
        assert finished.status != 0 or missing, f"{block.id}: passes now: remove its xfail marker"
        pytest.xfail(block.markers["xfail"])
    assert finished.status == 0, f"{block.id}: exit status {finished.status}; output:\n{finished.output}"
    assert not missing, (
        f"{block.id}: the doc shows lines the command does not print:\n"
        + "\n".join(missing)
        + f"\n--- real output:\n{finished.output}"
    )
