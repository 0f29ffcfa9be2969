#!/usr/bin/env python
"""Missing-value imputation and risk-table encoding of categorical features.

SageMaker Processing entry point.

With ``--job_type training`` the imputation values and the risk tables are fitted on ``train/``
and applied to ``train/``, ``val/`` and ``test/``. With any other job type the fitted artifacts
are read from the optional ``model_artifacts_input`` channel and applied to ``<job_type>/``.

Besides the categorical encoding the step derives numeric features from the other columns:
datetime columns become month / day-of-week / hour, free-text columns become their length and
boolean columns become 0/1. The identifier and the label pass through unchanged.

Container layout
    /opt/ml/processing/input/data             <split>/<split>_processed_data.csv
    /opt/ml/processing/input/model_artifacts  optional: risk_table_map.pkl, impute_dict.pkl
    /opt/ml/processing/output                 <split>/<split>_processed_data.csv
    /opt/ml/processing/model_artifacts        risk_table_map.pkl, impute_dict.pkl, feature_columns.json

Environment
    LABEL_FIELD        (required)
    ID_FIELD           (optional, "id")
    CAT_FIELD_LIST     (optional, "") comma-separated categorical columns; empty = detect
    SMOOTH_FACTOR      (optional, "0.01") prior weight as a fraction of the training rows
    COUNT_THRESHOLD    (optional, "5") categories seen fewer times get the prior
    IMPUTE_STRATEGY    (optional, "mean") mean | median | zero
    MAX_UNIQUE_CATEGORIES (optional, "50") text columns with more distinct values are free text
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import sys
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

INPUT_DATA_DIR = "/opt/ml/processing/input/data"
INPUT_ARTIFACTS_DIR = "/opt/ml/processing/input/model_artifacts"
OUTPUT_DATA_DIR = "/opt/ml/processing/output"
OUTPUT_ARTIFACTS_DIR = "/opt/ml/processing/model_artifacts"

RISK_TABLE_FILE = "risk_table_map.pkl"
IMPUTE_DICT_FILE = "impute_dict.pkl"
FEATURE_COLUMNS_FILE = "feature_columns.json"
MISSING_CATEGORY = "__missing__"
TRUE_FALSE = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}


# --------------------------------------------------------------------------------------
# I/O
# --------------------------------------------------------------------------------------
def read_split(data_dir: str, split: str) -> pd.DataFrame:
    """Read ``<data_dir>/<split>/*``; an unsplit directory counts as the primary split."""
    split_dir = Path(data_dir) / split
    if not split_dir.is_dir():
        split_dir = Path(data_dir)
    files = sorted(
        p
        for p in split_dir.iterdir()
        if p.is_file() and p.name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet"))
    )
    if not files:
        raise FileNotFoundError(f"No data files for split {split!r} in {split_dir}")
    frames = []
    for path in files:
        if path.name.endswith(".parquet"):
            frames.append(pd.read_parquet(path))
        else:
            frames.append(pd.read_csv(path, sep="\t" if ".tsv" in path.name else ","))
    return pd.concat(frames, ignore_index=True)


def splits_present(data_dir: str) -> list[str]:
    present = [s for s in ("train", "val", "test") if (Path(data_dir) / s).is_dir()]
    return present or ["train"]


# --------------------------------------------------------------------------------------
# Column roles
# --------------------------------------------------------------------------------------
def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) or series.dtype == object


def _looks_boolean(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series):
        return True
    values = set(series.dropna().astype(str).str.lower().unique())
    return bool(values) and values <= {"true", "false"}


def _looks_datetime(series: pd.Series) -> bool:
    values = series.dropna().astype(str)
    if values.empty or not values.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    return parsed.notna().mean() >= 0.95


def assign_roles(
    df: pd.DataFrame, passthrough: set[str], cat_fields: list[str], max_unique: int
) -> dict[str, list[str]]:
    """Sort every column into numeric / boolean / datetime / categorical / text."""
    roles: dict[str, list[str]] = {"numeric": [], "boolean": [], "datetime": [], "categorical": [], "text": []}
    for column in df.columns:
        if column in passthrough:
            continue
        series = df[column]
        if column in cat_fields:
            roles["categorical"].append(column)
        elif _looks_boolean(series):
            roles["boolean"].append(column)
        elif pd.api.types.is_numeric_dtype(series):
            roles["numeric"].append(column)
        elif _looks_datetime(series):
            roles["datetime"].append(column)
        elif _is_text(series) and series.nunique(dropna=True) <= max_unique:
            roles["categorical"].append(column)
        else:
            roles["text"].append(column)
    return roles


def derive_features(df: pd.DataFrame, roles: dict[str, list[str]]) -> pd.DataFrame:
    """Turn datetime, text and boolean columns into numeric ones (before imputation)."""
    out = df.copy()
    for column in roles["boolean"]:
        out[column] = out[column].astype(str).str.lower().map(TRUE_FALSE)
    for column in roles["datetime"]:
        stamp = pd.to_datetime(out[column], errors="coerce", format="ISO8601")
        out[f"{column}_month"] = stamp.dt.month.astype("float64")
        out[f"{column}_dayofweek"] = stamp.dt.day_of_week.astype("float64")
        out[f"{column}_hour"] = stamp.dt.hour.astype("float64")
        out = out.drop(columns=column)
    for column in roles["text"]:
        out[f"{column}_length"] = out[column].fillna("").astype("str").str.len().astype("float64")
        out = out.drop(columns=column)
    return out


# --------------------------------------------------------------------------------------
# Fitting and applying
# --------------------------------------------------------------------------------------
def _category_keys(series: pd.Series) -> pd.Series:
    """Category values as strings, with missing values as their own category."""
    return series.astype(object).where(series.notna(), MISSING_CATEGORY).astype(str)


def fit_risk_tables(
    df: pd.DataFrame, columns: list[str], label_field: str, smooth_factor: float, count_threshold: int
) -> dict[str, dict]:
    """Smoothed positive rate per category: (pos + m * prior) / (count + m), m = smooth * n."""
    prior = float(df[label_field].mean())
    smooth_samples = smooth_factor * len(df)
    tables = {}
    for column in columns:
        keys = _category_keys(df[column])
        stats = df.groupby(keys)[label_field].agg(["sum", "count"])
        risk = (stats["sum"] + smooth_samples * prior) / (stats["count"] + smooth_samples)
        risk[stats["count"] < count_threshold] = prior
        tables[column] = {
            "varName": column,
            "type": "categorical",
            "mode": "numeric",
            "default_bin": prior,
            "bins": {str(k): float(v) for k, v in risk.items()},
        }
    return tables


def apply_risk_tables(df: pd.DataFrame, tables: dict[str, dict]) -> pd.DataFrame:
    out = df.copy()
    for column, table in tables.items():
        keys = _category_keys(out[column])
        out[column] = keys.map(table["bins"]).fillna(table["default_bin"]).astype("float64")
    return out


def fit_imputation(df: pd.DataFrame, columns: list[str], strategy: str) -> dict[str, float]:
    values = {}
    for column in columns:
        series = pd.to_numeric(df[column], errors="coerce")
        if strategy == "median":
            value = series.median()
        elif strategy == "zero":
            value = 0.0
        else:
            value = series.mean()
        values[column] = 0.0 if pd.isna(value) else float(value)
    return values


def apply_imputation(df: pd.DataFrame, impute_dict: dict[str, float]) -> pd.DataFrame:
    out = df.copy()
    for column, value in impute_dict.items():
        out[column] = pd.to_numeric(out[column], errors="coerce").fillna(value).astype("float64")
    return out


def transform(df: pd.DataFrame, artifacts: dict) -> pd.DataFrame:
    derived = derive_features(df, artifacts["roles"])
    encoded = apply_risk_tables(derived, artifacts["risk_tables"])
    imputed = apply_imputation(encoded, artifacts["impute_dict"])
    # Scoring data may come without the label: keep the columns that are there, in fitted order.
    return imputed[[column for column in artifacts["output_columns"] if column in imputed.columns]]


def save_artifacts(artifacts: dict, artifacts_dir: str) -> None:
    target = Path(artifacts_dir)
    target.mkdir(parents=True, exist_ok=True)
    with open(target / RISK_TABLE_FILE, "wb") as handle:
        pickle.dump(artifacts["risk_tables"], handle)
    with open(target / IMPUTE_DICT_FILE, "wb") as handle:
        pickle.dump({"impute_dict": artifacts["impute_dict"], "roles": artifacts["roles"]}, handle)
    with open(target / FEATURE_COLUMNS_FILE, "w") as handle:
        json.dump({"output_columns": artifacts["output_columns"], "features": artifacts["features"]}, handle, indent=2)


def load_artifacts(artifacts_dir: str) -> dict:
    if not os.path.exists(os.path.join(artifacts_dir, RISK_TABLE_FILE)):
        raise FileNotFoundError(
            f"Non-training job types need fitted artifacts in {artifacts_dir} "
            f"({RISK_TABLE_FILE}, {IMPUTE_DICT_FILE}); wire the training run's model_artifacts output"
        )
    with open(os.path.join(artifacts_dir, RISK_TABLE_FILE), "rb") as handle:
        risk_tables = pickle.load(handle)
    with open(os.path.join(artifacts_dir, IMPUTE_DICT_FILE), "rb") as handle:
        imputation = pickle.load(handle)
    with open(os.path.join(artifacts_dir, FEATURE_COLUMNS_FILE)) as handle:
        columns = json.load(handle)
    return {
        "risk_tables": risk_tables,
        "impute_dict": imputation["impute_dict"],
        "roles": imputation["roles"],
        "output_columns": columns["output_columns"],
        "features": columns["features"],
    }


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------
def main(
    input_paths: dict[str, str],
    output_paths: dict[str, str],
    environ_vars: dict[str, str],
    job_args: argparse.Namespace,
) -> dict[str, pd.DataFrame]:
    label_field = environ_vars["LABEL_FIELD"]
    id_field = environ_vars.get("ID_FIELD", "id")
    cat_fields = [c.strip() for c in environ_vars.get("CAT_FIELD_LIST", "").split(",") if c.strip()]
    smooth_factor = float(environ_vars.get("SMOOTH_FACTOR", "0.01"))
    count_threshold = int(environ_vars.get("COUNT_THRESHOLD", "5"))
    strategy = environ_vars.get("IMPUTE_STRATEGY", "mean").lower()
    max_unique = int(os.environ.get("MAX_UNIQUE_CATEGORIES", "50"))
    job_type = job_args.job_type
    data_dir = input_paths["data_input"]

    if job_type == "training":
        train_df = read_split(data_dir, "train")
        passthrough = {id_field, label_field} & set(train_df.columns)
        roles = assign_roles(train_df, passthrough, cat_fields, max_unique)
        logger.info("Column roles: %s", roles)

        derived = derive_features(train_df, roles)
        risk_tables = fit_risk_tables(derived, roles["categorical"], label_field, smooth_factor, count_threshold)
        features = [c for c in derived.columns if c not in passthrough]
        impute_dict = fit_imputation(derived, [c for c in features if c not in risk_tables], strategy)
        output_columns = [c for c in (id_field, label_field) if c in passthrough] + features
        artifacts = {
            "roles": roles,
            "risk_tables": risk_tables,
            "impute_dict": impute_dict,
            "features": features,
            "output_columns": output_columns,
        }
        splits = splits_present(data_dir)
    else:
        artifacts = load_artifacts(input_paths["model_artifacts_input"])
        splits = [job_type]

    results = {}
    for split in splits:
        transformed = transform(read_split(data_dir, split), artifacts)
        split_dir = Path(output_paths["processed_data"]) / split
        split_dir.mkdir(parents=True, exist_ok=True)
        transformed.to_csv(split_dir / f"{split}_processed_data.csv", index=False)
        logger.info("%s: %d rows, %d features", split, len(transformed), len(artifacts["features"]))
        print(f"Processed {split}: shape {transformed.shape}")
        results[split] = transformed

    save_artifacts(artifacts, output_paths["model_artifacts"])
    print(
        f"Saved {RISK_TABLE_FILE} ({len(artifacts['risk_tables'])} tables) and {IMPUTE_DICT_FILE} "
        f"({len(artifacts['impute_dict'])} columns) to {output_paths['model_artifacts']}"
    )
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", type=str, required=True)
    args = parser.parse_args()

    main(
        input_paths={"data_input": INPUT_DATA_DIR, "model_artifacts_input": INPUT_ARTIFACTS_DIR},
        output_paths={"processed_data": OUTPUT_DATA_DIR, "model_artifacts": OUTPUT_ARTIFACTS_DIR},
        environ_vars={
            "LABEL_FIELD": os.environ["LABEL_FIELD"],
            "ID_FIELD": os.environ.get("ID_FIELD", "id"),
            "CAT_FIELD_LIST": os.environ.get("CAT_FIELD_LIST", ""),
            "SMOOTH_FACTOR": os.environ.get("SMOOTH_FACTOR", "0.01"),
            "COUNT_THRESHOLD": os.environ.get("COUNT_THRESHOLD", "5"),
            "IMPUTE_STRATEGY": os.environ.get("IMPUTE_STRATEGY", "mean"),
        },
        job_args=args,
    )
    sys.exit(0)
