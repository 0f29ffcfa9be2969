#!/usr/bin/env python
"""Build model features from the raw customer snapshot.

SageMaker Processing entry point, shipped with its package (``source_dir=src``) and launched as
``python -m churn.steps.build_features --job_type training``.

Container layout
    /opt/ml/processing/input/data         customer snapshot (parquet or csv shards)
    /opt/ml/processing/output/features    features.<fmt> and feature_manifest.json

Environment
    TARGET_COLUMN    (required) raw churn flag, e.g. "churned"
    POSITIVE_LABEL   (optional, "yes") value of TARGET_COLUMN that means churned
    REFERENCE_DATE   (optional, "2024-07-01") snapshot date for account ages
    OUTPUT_FORMAT    (optional, "parquet") parquet | csv | tsv
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import pandas as pd

from ..features import FEATURE_COLUMNS, add_customer_features, encode_target
from ..tables import read_table, write_table

logger = logging.getLogger(__name__)

INPUT_DATA_DIR = "/opt/ml/processing/input/data"
OUTPUT_FEATURES_DIR = "/opt/ml/processing/output/features"
ID_COLUMN = "customer_id"


def main(
    input_paths: dict[str, str],
    output_paths: dict[str, str],
    environ_vars: dict[str, str],
    job_args: argparse.Namespace,
) -> dict[str, pd.DataFrame]:
    target_column = environ_vars["TARGET_COLUMN"]
    positive_label = environ_vars.get("POSITIVE_LABEL", "yes")
    reference_date = pd.Timestamp(environ_vars.get("REFERENCE_DATE", "2024-07-01"))
    output_format = os.environ.get("OUTPUT_FORMAT", "parquet")

    raw = read_table(input_paths["raw_data"])
    logger.info("Read %d customers with columns %s", len(raw), list(raw.columns))

    features = add_customer_features(raw, reference_date)
    features["churn"] = encode_target(raw[target_column], positive_label)
    features = features[[ID_COLUMN, *FEATURE_COLUMNS, "churn"]]
    features = features.sort_values(ID_COLUMN, kind="stable").reset_index(drop=True)

    output_dir = Path(output_paths["features"])
    target = write_table(features, output_dir, "features", output_format)
    manifest = {
        "job_type": job_args.job_type,
        "rows": int(len(features)),
        "churn_rate": round(float(features["churn"].mean()), 6),
        "columns": {name: str(dtype) for name, dtype in features.dtypes.items()},
        "reference_date": reference_date.date().isoformat(),
    }
    with open(output_dir / "feature_manifest.json", "w") as handle:
        json.dump(manifest, handle, indent=2)
    print(f"Wrote {len(features)} rows to {target} (churn rate {manifest['churn_rate']:.3f})")
    return {"features": features}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", type=str, required=True)
    args = parser.parse_args()
    main(
        input_paths={"raw_data": INPUT_DATA_DIR},
        output_paths={"features": OUTPUT_FEATURES_DIR},
        environ_vars={
            "TARGET_COLUMN": os.environ["TARGET_COLUMN"],
            "POSITIVE_LABEL": os.environ.get("POSITIVE_LABEL", "yes"),
            "REFERENCE_DATE": os.environ.get("REFERENCE_DATE", "2024-07-01"),
        },
        job_args=args,
    )
