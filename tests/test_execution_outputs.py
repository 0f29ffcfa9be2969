"""``--cursus-execution``: inputs that reference upstream steps read a real pipeline execution's
outputs from S3 (moto's server over HTTP) instead of running those steps."""

from __future__ import annotations

import json

import pytest

from pipeline_project import PipelineProject
from s3_fixtures import S3Bucket

PREPROCESS = """
import os, shutil

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write("preprocess\\n")
    os.makedirs(os.path.join(output_paths["processed_data"], "train"))
    for name in sorted(os.listdir(input_paths["DATA"])):
        target = os.path.join(output_paths["processed_data"], "train", name)
        shutil.copy(os.path.join(input_paths["DATA"], name), target)
"""

# Records which rows it trained on: the ids of every CSV under its input.
TRAIN = """
import csv, glob, json, os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write("train\\n")
    ids = []
    for path in sorted(glob.glob(os.path.join(input_paths["input_path"], "**", "*.csv"), recursive=True)):
        with open(path) as handle:
            ids += [int(row["id"]) for row in csv.DictReader(handle)]
    with open(os.path.join(output_paths["model"], "model.json"), "w") as handle:
        json.dump({"ids": ids}, handle)
"""

SCENARIO = """
defaults: {{env: {{RUN_LOG: {log}}}}}
data:
  raw:
    synthetic:
      rows: 30
      seed: 2
      columns: {{id: {{type: int, unique: true}}, amount: {{type: float, min: 0, max: 10}}}}
{execution}steps:
  preprocess: {{contract: Preprocess, inputs: {{DATA: raw}}}}
  train: {{contract: Train, inputs: {{input_path: preprocess.processed_data}}}}
"""

EXECUTION_CSV = "id,amount\n101,1.5\n102,2.5\n103,3.5\n"


class Pipeline:
    """preprocess -> train, with run counting, and an execution bucket to fill."""

    def __init__(self, project: PipelineProject, bucket: S3Bucket) -> None:
        self.project = project
        self.bucket = bucket
        self.log = project.root / "runs.log"
        project.contract(
            "Preprocess",
            entry_point="preprocess.py",
            inputs={"DATA": {"path": "/opt/ml/processing/input/data"}},
            outputs={"processed_data": {"path": "/opt/ml/processing/output"}},
        )
        schema = {"columns": {"id": {"type": "int"}, "amount": {"type": "float"}}}
        project.contract(
            "Train",
            entry_point="train.py",
            inputs={"input_path": {"path": "/opt/ml/input/data/train", "data": schema}},
            outputs={"model": {"path": "/opt/ml/model"}},
        )
        project.script("preprocess.py", PREPROCESS)
        project.script("train.py", TRAIN)
        self.scenario()

    def scenario(self, execution: str = "") -> None:
        self.project.scenario("pipe", SCENARIO.format(log=self.log, execution=execution))

    @property
    def execution(self) -> str:
        return self.bucket.uri("pipelines/exec-1/")

    def run(self, *args: str) -> pytest.RunResult:
        self.log.write_text("")
        return self.project.run("--cursus-s3-endpoint", self.bucket.endpoint, "-v", *args)

    def runs(self) -> list[str]:
        return self.log.read_text().split()

    def trained_on(self) -> list[int]:
        return json.loads((self.project.step_dir("pipe", "train") / "output" / "model" / "model.json").read_text())[
            "ids"
        ]


@pytest.fixture
def pipeline(project: PipelineProject, s3_bucket: S3Bucket) -> Pipeline:
    return Pipeline(project, s3_bucket)


def test_k_reruns_only_the_step_on_the_execution_s_outputs(pipeline: Pipeline) -> None:
    pipeline.bucket.put("pipelines/exec-1/preprocess/processed_data/train/part-0.csv", EXECUTION_CSV)
    result = pipeline.run("--cursus-execution", pipeline.execution, "-k", "train")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*::compat?preprocess.processed_data-train.input_path? PASSED*", "*::train PASSED*"])
    assert pipeline.runs() == ["train"]
    assert pipeline.trained_on() == [101, 102, 103]
    assert not pipeline.project.step_dir("pipe", "preprocess").exists()


def test_without_k_root_steps_run_on_their_sources_and_downstream_reads_the_execution(pipeline: Pipeline) -> None:
    pipeline.bucket.put("pipelines/exec-1/preprocess/processed_data/train/part-0.csv", EXECUTION_CSV)
    pipeline.run("--cursus-execution", pipeline.execution).assert_outcomes(passed=3)
    assert sorted(pipeline.runs()) == ["preprocess", "train"]
    assert pipeline.trained_on() == [101, 102, 103], "not the 30 synthetic rows preprocess produced"


def test_the_layout_template_says_where_each_output_is(pipeline: Pipeline) -> None:
    pipeline.bucket.put("pipelines/exec-1/Preprocess/output/processed_data/part-0.csv", EXECUTION_CSV)
    result = pipeline.run(
        "--cursus-execution",
        pipeline.execution,
        "--cursus-execution-layout",
        "{prefix}{contract}/output/{output}/",
        "-k",
        "train",
    )
    result.assert_outcomes(passed=2)
    assert pipeline.trained_on() == [101, 102, 103]


def test_execution_in_the_scenario_file_with_layout_and_limits(pipeline: Pipeline) -> None:
    for index in range(3):
        pipeline.bucket.put(
            f"pipelines/exec-1/steps/preprocess/processed_data/part-{index}.csv", f"id,amount\n{index},0.5\n"
        )
    pipeline.scenario(
        f"execution: {{uri: {pipeline.execution}, layout: '{{prefix}}steps/{{step}}/{{output}}/', max_files: 2}}\n"
    )
    pipeline.run("-k", "train").assert_outcomes(passed=2)
    assert pipeline.trained_on() == [0, 1]


def test_the_command_line_execution_replaces_the_scenario_s_and_ini_options_work(pipeline: Pipeline) -> None:
    pipeline.bucket.put("pipelines/exec-2/out/preprocess/processed_data/part-0.csv", "id,amount\n7,0.5\n")
    pipeline.scenario("execution: s3://elsewhere/exec-0/\n")
    pipeline.project.pytester.makeini("[pytest]\ncursus_execution_layout = {prefix}out/{step}/{output}/\n")
    pipeline.run("--cursus-execution", pipeline.bucket.uri("pipelines/exec-2"), "-k", "train").assert_outcomes(passed=2)
    assert pipeline.trained_on() == [7]


def test_a_missing_output_fails_naming_the_uri_tried(pipeline: Pipeline) -> None:
    pipeline.bucket.put("pipelines/exec-1/other/processed_data/part-0.csv", EXECUTION_CSV)
    result = pipeline.run("--cursus-execution", pipeline.execution, "-k", "train")
    result.assert_outcomes(failed=1, errors=1)
    tried = pipeline.bucket.uri("pipelines/exec-1/preprocess/processed_data/")
    expected = (
        f"*execution output preprocess.processed_data not found at {tried} (nothing under {tried} at http://127.0.0.1:*"
    )
    result.stdout.fnmatch_lines(["*::compat?preprocess.processed_data-train.input_path? ERROR*", "*::train FAILED*"])
    assert result.stdout.str().count(f"execution output preprocess.processed_data not found at {tried}") >= 2
    result.stdout.fnmatch_lines([expected, "*the layout '{prefix}{step}/{output}/' (--cursus-execution-layout)*"])
    output = result.stdout.str()
    assert "Traceback" not in output and "botocore" not in output and "INTERNALERROR" not in output
    assert pipeline.runs() == []


def test_the_edge_item_checks_what_the_execution_wrote(pipeline: Pipeline) -> None:
    pipeline.bucket.put("pipelines/exec-1/preprocess/processed_data/part-0.csv", "id,label\n1,yes\n")
    result = pipeline.run("--cursus-execution", pipeline.execution, "-k", "compat")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*incompatible data on edge preprocess.processed_data -> train.input_path:*",
            "*part-0.csv does not match the downstream input's schema*amount*",
        ]
    )
    assert pipeline.runs() == []


def test_a_changed_execution_output_reruns_the_step_and_an_unchanged_one_does_not(pipeline: Pipeline) -> None:
    key = "pipelines/exec-1/preprocess/processed_data/part-0.csv"
    pipeline.bucket.put(key, EXECUTION_CSV)
    pipeline.run("--cursus-execution", pipeline.execution, "-k", "train").assert_outcomes(passed=2)
    pipeline.run("--cursus-execution", pipeline.execution, "-k", "train").stdout.fnmatch_lines(["*::train CACHED*"])
    assert pipeline.runs() == []
    pipeline.bucket.put(key, "id,amount\n9,0.5\n")
    pipeline.run("--cursus-execution", pipeline.execution, "-k", "train").assert_outcomes(passed=2)
    assert pipeline.runs() == ["train"] and pipeline.trained_on() == [9]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--cursus-execution", "http://bucket/exec/"),
            "*--cursus-execution / cursus_execution: expected an s3://bucket/key URI, got 'http://bucket/exec/'*",
        ),
        (
            ("--cursus-execution-layout", "{prefix}{stepname}/{output}/"),
            "*--cursus-execution-layout / cursus_execution_layout: layout '{prefix}{stepname}/{output}/' uses unknown "
            "placeholder {stepname}*",
        ),
        (("--cursus-execution-layout", "{prefix}{step}/"), "*must contain {output}*"),
    ],
)
def test_a_bad_execution_option_is_a_usage_error(pipeline: Pipeline, args: tuple[str, ...], expected: str) -> None:
    result = pipeline.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_a_bad_execution_in_the_scenario_is_a_collection_error_naming_the_line(pipeline: Pipeline) -> None:
    pipeline.scenario("execution: {uri: s3://bucket/exec/, layout: 'bucket/{step}/{output}/'}\n")
    result = pipeline.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*scenarios/pipe.yaml:9: execution.layout*must give an s3:// URI*start it with {prefix}*"]
    )


def test_an_execution_output_is_compared_with_the_step_s_synthetic_run_from_the_cache(pipeline: Pipeline) -> None:
    pipeline.run().assert_outcomes(passed=3)  # the synthetic run fills the step cache
    pipeline.bucket.put(
        "pipelines/exec-1/preprocess/processed_data/train/part-0.csv", "id,amount,region\n101,15.5,EU\n102,-2.5,\n"
    )
    result = pipeline.run("--cursus-execution", pipeline.execution, "-k", "train")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= cursus: synthetic vs real =*",
            "pipe: preprocess.processed_data: synthetic step cache entry * (30 rows, 1 file) vs real "
            + pipeline.bucket.uri("pipelines/exec-1/preprocess/processed_data/")
            + " (2 rows, 1 file)",
        ]
    )
    text = result.stdout.str()
    assert "region: only real: synthetic absent, real string -> add column region (category)" in text
    assert "amount: range: synthetic" in text and "real -2.5 .. 15.5 -> set min: -2.5, max: 15.5" in text


def test_without_a_synthetic_run_in_the_cache_nothing_is_compared(pipeline: Pipeline) -> None:
    pipeline.bucket.put("pipelines/exec-1/preprocess/processed_data/part-0.csv", EXECUTION_CSV)
    result = pipeline.run("--cursus-execution", pipeline.execution, "-k", "train")
    result.assert_outcomes(passed=2)
    assert "synthetic vs real" not in result.stdout.str()
