# Use this when scripts read variables the SageMaker platform sets in every container (SM_CURRENT_HOST, SM_HOSTS, ...)
# that no contract or scenario declares.
"""Gives every step the environment a SageMaker container has, as a local run would not:
the platform's ``SM_*`` variables, and the region. A scenario or contract value wins: only
missing variables are added. Changing them re-runs the steps, since the adjusted environment
is part of each step's cache key.
"""

from __future__ import annotations

import json
import os
from typing import Any


def pytest_cursus_adjust_step(step: Any, env: dict[str, str], job_args: dict[str, Any]) -> None:
    platform = {
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "AWS_REGION": "us-east-1",
    }
    for name, value in platform.items():
        env.setdefault(name, value)  # env values are strings, as in a container
