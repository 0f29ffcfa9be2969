"""Fuzzing a step with generated data: `[fuzz]` items, shrinking, the saved example and its replay."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pipeline_project import PipelineProject

AMOUNTS = {
    "id": {"type": "int", "unique": True},
    "amount": {"type": "float", "min": 0, "max": 100, "nulls": 0.2},
    "label": {"type": "category", "values": [0, 1]},
}

# Scripts read CSV with the standard library: a run costs a process start, not a pandas import.
READ_ROWS = """
import csv, glob, os

def read_rows(directory):
    rows = []
    for path in sorted(glob.glob(os.path.join(directory, "*.csv"))):
        with open(path, newline="", encoding="utf-8") as handle:
            rows += list(csv.DictReader(handle))
    trace = os.environ.get("TRACE")
    if trace:
        with open(trace, "a") as handle:
            handle.write(f"{len(rows)} {sum(1 for row in rows if row['amount'])}\\n")
    return rows

def write(output_paths, text):
    with open(os.path.join(output_paths["out"], "summary.txt"), "w") as handle:
        handle.write(text)
"""

FAILS_ON_EMPTY_FRAME = (
    READ_ROWS
    + """
def main(input_paths, output_paths, environ_vars, job_args):
    rows = read_rows(input_paths["DATA"])
    present = [float(row["amount"]) for row in rows if row["amount"]]
    write(output_paths, str(sum(present) / len(rows)))  # ZeroDivisionError on an empty frame
"""
)

FAILS_ON_ALL_NULL_COLUMN = (
    READ_ROWS
    + """
def main(input_paths, output_paths, environ_vars, job_args):
    rows = read_rows(input_paths["DATA"])
    if not rows:
        write(output_paths, "empty")
        return
    write(output_paths, str(max(float(row["amount"]) for row in rows if row["amount"])))  # no value: ValueError
"""
)

FAILS_ON_LABEL_ONE = (
    READ_ROWS
    + """
def main(input_paths, output_paths, environ_vars, job_args):
    rows = read_rows(input_paths["DATA"])
    if any(row["label"] == "1" for row in rows):
        raise ValueError("label 1 is not handled")
    write(output_paths, "fine")
"""
)

# Records every dataset it is run on, whole: two runs on the same datasets leave the same file.
DUMPS_ROWS = """
import csv, glob, os

def main(input_paths, output_paths, environ_vars, job_args):
    for path in sorted(glob.glob(os.path.join(input_paths["DATA"], "*.csv"))):
        with open(path, newline="", encoding="utf-8") as handle, open(os.environ["DUMP"], "a") as dump:
            dump.write(repr(list(csv.reader(handle))) + "\\n")
"""

HANDLES_EVERYTHING = (
    READ_ROWS
    + """
def main(input_paths, output_paths, environ_vars, job_args):
    rows = read_rows(input_paths["DATA"])
    present = [float(row["amount"]) for row in rows if row["amount"]]
    write(output_paths, str(max(present) if present else "none"))
"""
)


def planted(
    project: PipelineProject, script: str, *, fuzz: str = "fuzz: {examples: 30, max_rows: 8, seed: 1}", env: str = ""
) -> None:
    project.pytester.makeini("[pytest]\n")  # rootdir: the project, as printed in the rerun command
    project.contract(
        "Summary",
        entry_point="summary.py",
        inputs={"DATA": {"path": "/opt/ml/processing/input/data", "data": {"columns": AMOUNTS}}},
    )
    project.script("summary.py", script)
    project.scenario(
        "planted",
        f"""
        data:
          rows:
            synthetic:
              rows: 20
              columns:
                id: {{type: int, unique: true}}
                amount: {{type: float}}
                label: {{type: category, values: [0, 1]}}
        steps:
          summary:
            contract: Summary
            inputs: {{DATA: rows}}
            {fuzz}
            {env}
        """,
    )


def failure_text(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines)


def test_a_script_failing_on_an_empty_frame_is_shrunk_to_zero_rows(project: PipelineProject) -> None:
    planted(project, FAILS_ON_EMPTY_FRAME)
    result = project.run("-k", "fuzz")
    result.assert_outcomes(failed=1)
    text = failure_text(result)
    assert "step 'summary' of scenario 'planted' fails on generated data" in text
    assert "input DATA: 0 row(s) x 3 column(s) (schema: contracts/summary.step.yaml: inputs.DATA.data)" in text
    assert "(0 rows)" in text
    assert "ZeroDivisionError: division by zero" in text
    assert 'summary.py", line' in text  # the script's own traceback


def test_a_script_failing_on_an_all_null_column_fails_on_the_null_edge_tried_first(project: PipelineProject) -> None:
    trace = project.root / "trace.txt"
    planted(project, FAILS_ON_ALL_NULL_COLUMN, fuzz="fuzz: {examples: 30, max_rows: 8}", env=f"env: {{TRACE: {trace}}}")
    result = project.run("-k", "fuzz")  # no seed: the null edge does not depend on one
    result.assert_outcomes(failed=1)
    text = failure_text(result)
    assert trace.read_text().splitlines() == ["1 0"]  # one row, no amount: the first and only run
    assert (
        "(found at script run 1, on a dataset tried before any generated one: every column of DATA that declares "
        "nulls is null; 1 script runs in" in text
    )
    assert "shrunk" not in text
    assert "input DATA: 1 row(s) x 3 column(s)" in text
    table = text[text.index("input DATA:") :].splitlines()
    header, row = table[1].split("|"), table[3].split("|")
    assert [cell.strip() for cell in header] == ["id", "amount", "label"]
    assert row[1].strip() == "null"
    assert "ValueError: max() arg is an empty sequence" in text


def test_the_failing_example_is_saved_as_input_files_with_a_command_that_reruns_the_step(
    project: PipelineProject,
) -> None:
    planted(project, FAILS_ON_ALL_NULL_COLUMN)
    text = failure_text(project.run("-k", "fuzz"))
    saved = project.root / ".pytest_cache/d/cursus-fuzz-failures/planted/summary"
    assert f"Saved as input files: {saved.relative_to(project.root)}/inputs/" in text
    data = (saved / "inputs/DATA/part-00000.csv").read_text()
    assert data.splitlines()[0] == '"id","amount","label"' and len(data.splitlines()) == 2
    command = re.search(r"Rerun the step on it \(from (.+)\):\n\s+(pytest .+)", text)
    assert command is not None and Path(command.group(1)) == project.root
    assert "Fuzz it again on the same datasets (after the failing examples saved, tried first):\n" in text
    assert "  pytest 'scenarios/planted.yaml::summary[fuzz]' --cursus-fuzz-seed 1" in text
    assert (
        command.group(2)
        == f"pytest 'scenarios/planted.yaml::summary[fuzz]' --cursus-fuzz-replay {saved.relative_to(project.root)}"
    )

    replayed = project.pytester.runpytest(*shlex.split(command.group(2))[1:], "-p", "no:cacheprovider")
    replayed.assert_outcomes(failed=1)
    replay_text = failure_text(replayed)
    assert "replaying the saved example .pytest_cache/d/cursus-fuzz-failures/planted/summary" in replay_text
    assert "ValueError: max() arg is an empty sequence" in replay_text

    project.script("summary.py", HANDLES_EVERYTHING)  # the fix
    project.pytester.runpytest(*shlex.split(command.group(2))[1:], "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_next_run_tries_the_saved_failing_example_first(project: PipelineProject) -> None:
    trace = project.root / "trace.txt"
    planted(project, FAILS_ON_LABEL_ONE, env=f"env: {{TRACE: {trace}}}")
    first = project.run("-k", "fuzz")
    first.assert_outcomes(failed=1)
    assert "found at script run" in failure_text(first) and "shrunk to this minimal example" in failure_text(first)
    trace.unlink()

    second = project.run("-k", "fuzz")
    second.assert_outcomes(failed=1)
    # the null edge (one row, no amount), then the saved example (one row with an amount and label 1)
    assert trace.read_text().splitlines()[:2] == ["1 0", "1 1"]
    assert "a failing example saved by an earlier run, tried first" in failure_text(second)


def test_a_script_that_handles_every_edge_case_passes_with_statistics(project: PipelineProject) -> None:
    planted(project, HANDLES_EVERYTHING, fuzz="fuzz: {examples: 12, max_rows: 5}")
    result = project.run("-k", "fuzz", "-rP")
    result.assert_outcomes(passed=1)
    assert re.search(
        r"\d+ examples, \d+ script runs \(distinct datasets\) in [\d.]+s: [\d.]+s per run, of which process start \d+%",
        result.stdout.str(),
    )


def test_a_fuzz_run_reports_its_seed_and_that_seed_fuzzes_the_same_datasets_again(project: PipelineProject) -> None:
    dump = project.root / "dump.txt"
    planted(project, DUMPS_ROWS, fuzz="fuzz: {examples: 12, max_rows: 5}", env=f"env: {{DUMP: {dump}}}")

    def fuzzed(*args: str) -> tuple[int, str]:
        dump.unlink(missing_ok=True)
        result = project.run("-k", "fuzz", "-rP", *args)
        result.assert_outcomes(passed=1)
        seed = re.search(r"script imports \d+%; seed (\d+)$", result.stdout.str(), re.MULTILINE)
        assert seed is not None, result.stdout.str()
        return int(seed.group(1)), dump.read_text()

    seed, datasets = fuzzed()  # no seed given: a new one, reported
    assert len(datasets.splitlines()) > 5
    assert fuzzed("--cursus-fuzz-seed", str(seed)) == (seed, datasets)
    other_seed, other_datasets = fuzzed("--cursus-fuzz-seed", str(seed + 1))
    assert other_seed == seed + 1 and other_datasets != datasets


def test_the_fuzz_seed_option_overrides_the_seed_of_a_fuzz_block(project: PipelineProject) -> None:
    planted(project, HANDLES_EVERYTHING, fuzz="fuzz: {examples: 2, seed: 1}")
    assert re.search(r"; seed 1$", project.run("-k", "fuzz", "-rP").stdout.str(), re.MULTILINE)
    assert re.search(
        r"; seed 5$", project.run("-k", "fuzz", "-rP", "--cursus-fuzz-seed", "5").stdout.str(), re.MULTILINE
    )


def test_a_negative_fuzz_seed_is_a_scenario_error(project: PipelineProject) -> None:
    planted(project, HANDLES_EVERYTHING, fuzz="fuzz: {seed: -1}")
    result = project.run()
    result.assert_outcomes(errors=1)
    assert "steps.summary.fuzz.seed" in result.stdout.str() and "greater than or equal to 0" in result.stdout.str()


def test_fuzz_option_adds_a_fuzz_item_to_every_step_and_overrides_the_example_count(project: PipelineProject) -> None:
    planted(project, HANDLES_EVERYTHING, fuzz="")
    assert "planted.yaml::summary[fuzz]" not in project.run("--co", "-q").stdout.str()
    result = project.run("--cursus-fuzz", "3", "-m", "cursus_fuzz", "-rP")
    result.assert_outcomes(passed=1)
    assert re.search(r"\b3 examples,", result.stdout.str())


def test_fuzz_zero_turns_off_the_fuzz_blocks(project: PipelineProject) -> None:
    planted(project, FAILS_ON_EMPTY_FRAME)
    collected = project.run("--co", "-q", "--cursus-fuzz", "0").stdout.str()
    assert "summary[fuzz]" not in collected and "planted.yaml::summary" in collected


def test_fuzz_items_carry_the_cursus_and_cursus_fuzz_markers(project: PipelineProject) -> None:
    planted(project, HANDLES_EVERYTHING, fuzz="fuzz: {examples: 2}")
    selected = project.run("--co", "-q", "-m", "cursus and cursus_fuzz").stdout.str()
    assert "scenarios/planted.yaml::summary[fuzz]" in selected
    assert "scenarios/planted.yaml::summary\n" not in selected


def test_a_root_input_of_a_synthetic_source_is_fuzzed_with_the_source_columns(project: PipelineProject) -> None:
    project.contract("Summary", entry_point="summary.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script("summary.py", FAILS_ON_EMPTY_FRAME)
    project.scenario(
        "sourced",
        """
        data:
          rows:
            synthetic: {rows: 20, columns: {amount: {type: float}}}
        steps:
          summary:
            contract: Summary
            inputs: {DATA: rows}
            fuzz: {examples: 5}
        """,
    )
    result = project.run("-k", "fuzz")
    result.assert_outcomes(failed=1)
    assert "input DATA: 0 row(s) x 1 column(s) (schema: scenarios/sourced.yaml: data.rows.synthetic)" in failure_text(
        result
    )


def test_a_step_with_no_schema_for_any_input_is_skipped_with_what_to_add(project: PipelineProject) -> None:
    project.contract("Summary", entry_point="summary.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script("summary.py", HANDLES_EVERYTHING)
    project.scenario(
        "noschema",
        """
        data:
          rows: {text: "id,amount\\n1,2\\n", filename: rows.csv}
        steps:
          summary:
            contract: Summary
            inputs: {DATA: rows}
            fuzz: {examples: 5}
        """,
    )
    result = project.run("-k", "fuzz", "-rs")
    result.assert_outcomes(skipped=1)
    assert "no input of step 'summary' has a schema" in result.stdout.str()
    assert "add 'data: {columns: ...}' to input 'DATA' in" in result.stdout.str()


def test_fuzz_inputs_naming_an_unknown_input_is_a_scenario_error(project: PipelineProject) -> None:
    planted(project, HANDLES_EVERYTHING, fuzz="fuzz: {inputs: [DTA]}")
    result = project.run()
    result.assert_outcomes(errors=1)
    assert (
        "scenarios/planted.yaml:14: steps.summary.fuzz.inputs[0]: contract Summary has no input 'DTA' (did you mean "
        "DATA?)" in result.stdout.str()
    )


def test_a_replay_directory_without_a_saved_example_is_a_usage_error(project: PipelineProject, tmp_path: Path) -> None:
    planted(project, HANDLES_EVERYTHING)
    result = project.run("--cursus-fuzz-replay", str(tmp_path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--cursus-fuzz-replay: {tmp_path} holds no example.json" in result.stderr.str()


def test_inputs_not_fuzzed_get_their_upstream_output_in_pipeline_mode(project: PipelineProject) -> None:
    project.contract(
        "Lookup", entry_point="lookup.py", outputs={"table": {"path": "/opt/ml/processing/output/lookup.txt"}}
    )
    project.script(
        "lookup.py", "import os\n\ndef main(i, o, e, j):\n    open(o['table'], 'w').write('from upstream')\n"
    )
    project.contract(
        "Summary",
        entry_point="summary.py",
        inputs={
            "DATA": {"path": "/opt/ml/processing/input/data", "data": {"columns": AMOUNTS}},
            "LOOKUP": {"path": "/opt/ml/processing/input/lookup/lookup.txt"},
        },
    )
    project.script(
        "summary.py",
        HANDLES_EVERYTHING + "    assert open(input_paths['LOOKUP']).read() == 'from upstream'\n",
    )
    project.scenario(
        "wired",
        """
        steps:
          lookup:
            contract: Lookup
          summary:
            contract: Summary
            inputs: {DATA: lookup.table, LOOKUP: lookup.table}
            fuzz: {examples: 4, inputs: [DATA]}
        """,
    )
    result = project.run("-k", "summary and fuzz", "-rP")
    result.assert_outcomes(passed=1)
    assert "upstream steps produced as setup of this item: lookup (passed)" in result.stdout.str()
