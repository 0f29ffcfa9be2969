# Use this when you want ordinary pytest assertions on what a pipeline step produced (value ranges, joins, model
# metrics), with the step run by the plugin's cursus_run fixture.
"""A fixture running the credit_risk pipeline up to ``evaluate`` (steps come from the step cache
when unchanged, so only the first test pays for the run) and handing its result to tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CREDIT_RISK = Path(__file__).parents[2] / "scenarios" / "credit_risk.yaml"


@pytest.fixture
def evaluation(cursus_run: Any) -> Any:
    result = cursus_run(CREDIT_RISK, "evaluate")
    assert result.passed, result  # the text shows the failing step's traceback
    return result
