"""docs/notebook_example.ipynb, executed cell by cell in a real Jupyter kernel (nbclient + ipykernel)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat, nbclient and ipykernel")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook run where it lives (docs/ beside scenarios/), in a copy of the two folders so
    the run's step cache and workspaces stay out of the repository."""
    root = tmp_path_factory.mktemp("notebook")
    shutil.copytree(
        REPO / "scenarios", root / "scenarios", ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__")
    )
    (root / "docs").mkdir()
    shutil.copy(REPO / "docs" / "notebook_example.ipynb", root / "docs")
    notebook = nbformat.read(root / "docs" / "notebook_example.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(root / "docs")}}
    )
    client.execute()
    return notebook


def code_cell(notebook: Any, starting: str) -> Any:
    return next(cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.startswith(starting))


def rich_output(cell: Any, mime: str) -> str:
    return next(
        output["data"][mime]
        for output in cell.outputs
        if output.output_type in ("execute_result", "display_data") and mime in output["data"]
    )


def test_the_notebook_runs_without_errors(executed: Any) -> None:
    errors = [
        output
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]

    assert errors == []


def test_the_scenario_result_renders_as_html_with_the_dag_coloured_by_outcome(executed: Any) -> None:
    html = rich_output(code_cell(executed, "from pytest_cursus import"), "text/html")

    assert '<svg xmlns="http://www.w3.org/2000/svg" class="cursus-dag"' in html
    for step in ("preprocess", "impute_encode", "train", "evaluate"):
        assert f'<g class="cursus-node" data-step="{step}" data-outcome="passed" data-kind="step">' in html
    assert '<table class="cursus-metrics cursus-steps">' in html
    assert "Scenario credit_risk: 4 passed" in html


def test_an_output_reads_as_a_dataframe(executed: Any) -> None:
    shape = rich_output(code_cell(executed, "predictions = "), "text/plain")
    head = rich_output(code_cell(executed, "predictions.head()"), "text/html")

    rows, columns = map(int, re.fullmatch(r"\((\d+), (\d+)\)", shape).groups())  # type: ignore[union-attr]
    assert rows >= 700 and columns == 4  # the scenario's expect: min_rows and columns of eval_output
    assert "prob_class_1" in head and "<table" in head


def test_run_step_reuses_the_cache_and_shows_the_step(executed: Any) -> None:
    html = rich_output(code_cell(executed, "step = run_step"), "text/html")

    assert "Step train of scenario credit_risk: passed (cached)" in html
    assert 'data-step="train" data-outcome="passed"' in html


def test_the_text_form_is_a_table(executed: Any) -> None:
    text = "".join(output.get("text", "") for output in code_cell(executed, "print(result)").outputs)

    assert text.startswith("scenario credit_risk (")
    assert re.search(r"^evaluate\s+passed", text, re.MULTILINE)
