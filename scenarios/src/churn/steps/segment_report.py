#!/usr/bin/env python
"""Churn rate per customer segment: the table the retention team reviews every month.

SageMaker Processing entry point, launched as ``python -m churn.steps.segment_report``.

Container layout
    /opt/ml/processing/input/features    output of build_features
    /opt/ml/processing/output/report     churn_by_segment.tsv, summary.json

Environment
    SEGMENT_COLUMNS    (optional, "contract,tenure_bucket") comma-separated grouping columns
    MIN_SEGMENT_SIZE   (optional, "20") smaller segments are folded into "other"
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..features import TENURE_BUCKET_ORDER
from ..tables import read_table

INPUT_FEATURES_DIR = "/opt/ml/processing/input/features"
OUTPUT_REPORT_DIR = "/opt/ml/processing/output/report"
OTHER = "other"


def segment_table(df: pd.DataFrame, segment_columns: list[str], min_size: int) -> pd.DataFrame:
    grouped = (
        df.groupby(segment_columns, dropna=False, observed=True)["churn"]
        .agg(customers="size", churned="sum")
        .reset_index()
    )
    small = grouped["customers"] < min_size
    if small.any():
        folded = {column: OTHER for column in segment_columns}
        folded["customers"] = int(grouped.loc[small, "customers"].sum())
        folded["churned"] = int(grouped.loc[small, "churned"].sum())
        grouped = pd.concat([grouped[~small], pd.DataFrame([folded])], ignore_index=True)
    grouped["churn_rate"] = (grouped["churned"] / grouped["customers"]).round(4)
    if "tenure_bucket" in segment_columns:
        order = {bucket: i for i, bucket in enumerate([*TENURE_BUCKET_ORDER, OTHER])}
        grouped["_order"] = grouped["tenure_bucket"].map(order)
        grouped = grouped.sort_values([*(c for c in segment_columns if c != "tenure_bucket"), "_order"])
        grouped = grouped.drop(columns="_order")
    return grouped.reset_index(drop=True)


def main(
    input_paths: dict[str, str],
    output_paths: dict[str, str],
    environ_vars: dict[str, str],
    job_args: argparse.Namespace,
    logger: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    log = logger if logger is not None else print
    segment_columns = [
        c.strip() for c in environ_vars.get("SEGMENT_COLUMNS", "contract,tenure_bucket").split(",") if c.strip()
    ]
    min_size = int(environ_vars.get("MIN_SEGMENT_SIZE", "20"))

    features = read_table(input_paths["features"])
    missing = [c for c in [*segment_columns, "churn"] if c not in features.columns]
    if missing:
        raise KeyError(f"Feature table lacks {missing}; has {list(features.columns)}")
    log(f"{len(features)} customers, segmenting by {segment_columns}")

    table = segment_table(features, segment_columns, min_size)
    report_dir = Path(output_paths["report"])
    report_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(report_dir / "churn_by_segment.tsv", sep="\t", index=False)

    worst = table.sort_values("churn_rate", ascending=False).iloc[0]
    summary = {
        "job_type": job_args.job_type,
        "customers": int(len(features)),
        "overall_churn_rate": round(float(features["churn"].mean()), 4),
        "segments": int(len(table)),
        "highest_churn_segment": {
            **{column: str(worst[column]) for column in segment_columns},
            "churn_rate": float(worst["churn_rate"]),
        },
    }
    with open(report_dir / "summary.json", "w") as handle:
        json.dump(summary, handle, indent=2)
    log(f"{summary['segments']} segments, overall churn {summary['overall_churn_rate']}")
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", type=str, default="training")
    args = parser.parse_args()
    main(
        input_paths={"features": INPUT_FEATURES_DIR},
        output_paths={"report": OUTPUT_REPORT_DIR},
        environ_vars={
            "SEGMENT_COLUMNS": os.environ.get("SEGMENT_COLUMNS", "contract,tenure_bucket"),
            "MIN_SEGMENT_SIZE": os.environ.get("MIN_SEGMENT_SIZE", "20"),
        },
        job_args=args,
    )
