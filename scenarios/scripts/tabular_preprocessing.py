#!/usr/bin/env python
"""Tabular preprocessing: combine raw shards, clean the label, split train/val/test.

SageMaker Processing entry point.

Container layout
    /opt/ml/processing/input/data       raw shards (part-*.csv[.gz] / .tsv / .parquet / .jsonl)
    /opt/ml/processing/input/signature  optional: one file holding the header line
    /opt/ml/processing/output           <split>/<split>_processed_data.<ext>

Environment
    LABEL_FIELD      (required) name of the label column
    TRAIN_RATIO      (optional, "0.7") fraction of rows going to train
    TEST_VAL_RATIO   (optional, "0.5") fraction of the held-out rows going to test, rest to val
    OUTPUT_FORMAT    (optional, "CSV") CSV | TSV | PARQUET
    RANDOM_SEED      (optional, "42")

Arguments
    --job_type  training | validation | testing | calibration. Only "training" splits; the
                other job types write every row to a single <job_type>/ folder.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

# Container paths; used by the __main__ block only, main() takes whatever it is given.
INPUT_DATA_DIR = "/opt/ml/processing/input/data"
INPUT_SIGNATURE_DIR = "/opt/ml/processing/input/signature"
OUTPUT_DIR = "/opt/ml/processing/output"

DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".json", ".jsonl")
SPLITS_FOR_TRAINING = ("train", "val", "test")


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def _data_format(path: Path) -> str | None:
    """'csv' for part-00000.csv.gz, 'parquet' for x.snappy.parquet, None for _SUCCESS."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    for suffix in DATA_SUFFIXES:
        if name.endswith(suffix):
            return suffix.lstrip(".")
    return None


def find_shards(data_dir: str) -> list[Path]:
    """All data files under ``data_dir`` (a single file is accepted too), sorted by path."""
    root = Path(data_dir)
    if root.is_file():
        return [root]
    shards = sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and not path.name.startswith((".", "_")) and _data_format(path)
    )
    if not shards:
        listing = sorted(p.name for p in root.iterdir()) if root.is_dir() else "(missing)"
        raise FileNotFoundError(f"No data shards found under {data_dir}; contents: {listing}")
    return shards


def load_signature_columns(signature_path: str) -> list[str] | None:
    """Column names from the signature channel, or None when the channel is not mounted."""
    if not os.path.exists(signature_path):
        return None
    path = Path(signature_path)
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not candidates:
            return None
        path = candidates[0]
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        return None
    first_line = text.splitlines()[0]
    delimiter = "\t" if "\t" in first_line else ","
    return [column.strip() for column in first_line.split(delimiter) if column.strip()]


def _first_line(path: Path) -> str:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return handle.readline().rstrip("\r\n")


def read_shard(path: Path, signature: list[str] | None) -> pd.DataFrame:
    fmt = _data_format(path)
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt in ("json", "jsonl"):
        return pd.read_json(path, lines=True)
    sep = "\t" if fmt == "tsv" else ","
    if signature is not None:
        # Exports from the upstream data loader come with or without a header row; the
        # signature tells us the column names either way.
        header = {column.strip().strip('"') for column in _first_line(path).split(sep)}
        if not set(signature) <= header:
            return pd.read_csv(path, sep=sep, header=None, names=signature)
        return pd.read_csv(path, sep=sep)[signature]
    return pd.read_csv(path, sep=sep)


def combine_shards(data_dir: str, signature: list[str] | None) -> pd.DataFrame:
    frames = [read_shard(path, signature) for path in find_shards(data_dir)]
    combined = pd.concat(frames, ignore_index=True)
    combined.columns = [str(column).strip() for column in combined.columns]
    return combined


# --------------------------------------------------------------------------------------
# Cleaning and splitting
# --------------------------------------------------------------------------------------
def encode_label(df: pd.DataFrame, label_field: str) -> pd.DataFrame:
    """Drop rows without a label and make the label an integer class index."""
    if label_field not in df.columns:
        raise KeyError(f"Label field {label_field!r} not in data columns {list(df.columns)}")
    df = df[df[label_field].notna()].copy()
    numeric = pd.to_numeric(df[label_field], errors="coerce")
    if numeric.notna().all():
        df[label_field] = numeric.astype("int64")
    else:
        classes = sorted(df[label_field].astype(str).unique())
        df[label_field] = df[label_field].astype(str).map({c: i for i, c in enumerate(classes)}).astype("int64")
    return df


def stratified_split(
    df: pd.DataFrame, label_field: str, train_ratio: float, test_val_ratio: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Per-class shuffled split so every split keeps the label distribution."""
    rng = np.random.default_rng(seed)
    picked: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS_FOR_TRAINING}
    for _, positions in sorted(df.groupby(label_field).indices.items()):
        positions = rng.permutation(positions)
        n_train = int(round(len(positions) * train_ratio))
        n_test = int(round((len(positions) - n_train) * test_val_ratio))
        picked["train"].append(positions[:n_train])
        picked["test"].append(positions[n_train : n_train + n_test])
        picked["val"].append(positions[n_train + n_test :])
    return {split: df.iloc[np.sort(np.concatenate(parts))].reset_index(drop=True) for split, parts in picked.items()}


def write_split(df: pd.DataFrame, output_dir: str, split: str, output_format: str) -> Path:
    split_dir = Path(output_dir) / split
    split_dir.mkdir(parents=True, exist_ok=True)
    fmt = output_format.lower()
    if fmt == "parquet":
        target = split_dir / f"{split}_processed_data.parquet"
        df.to_parquet(target, index=False)
    elif fmt == "tsv":
        target = split_dir / f"{split}_processed_data.tsv"
        df.to_csv(target, sep="\t", index=False)
    else:
        target = split_dir / f"{split}_processed_data.csv"
        df.to_csv(target, index=False)
    return target


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------
def main(
    input_paths: dict[str, str],
    output_paths: dict[str, str],
    environ_vars: dict[str, str],
    job_args: argparse.Namespace,
    logger: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    log = logger if logger is not None else print

    label_field = environ_vars["LABEL_FIELD"]
    train_ratio = float(environ_vars["TRAIN_RATIO"])
    test_val_ratio = float(environ_vars["TEST_VAL_RATIO"])
    output_format = environ_vars.get("OUTPUT_FORMAT", "CSV")
    seed = int(os.environ.get("RANDOM_SEED", "42"))
    job_type = job_args.job_type
    if not 0.0 < train_ratio < 1.0:
        raise ValueError(f"TRAIN_RATIO must be in (0, 1), got {train_ratio}")

    signature = load_signature_columns(input_paths["SIGNATURE"])
    if signature is None:
        log("No signature file mounted; reading column names from the shard headers")
    else:
        log(f"Signature columns: {signature}")

    df = combine_shards(input_paths["DATA"], signature)
    log(f"Combined {len(df)} rows x {df.shape[1]} columns from {input_paths['DATA']}")

    df = encode_label(df, label_field)
    log(f"{len(df)} rows with a label; class counts: {df[label_field].value_counts().sort_index().to_dict()}")

    output_dir = output_paths["processed_data"]
    if job_type == "training":
        splits = stratified_split(df, label_field, train_ratio, test_val_ratio, seed)
    else:
        splits = {job_type: df.reset_index(drop=True)}
    for split, frame in splits.items():
        target = write_split(frame, output_dir, split, output_format)
        log(f"Wrote {len(frame)} rows to {target}")
    return splits


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), stream=sys.stdout)
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--job_type", type=str, required=True, choices=["training", "validation", "testing", "calibration"]
    )
    args = parser.parse_args()

    environ = {
        "LABEL_FIELD": os.environ["LABEL_FIELD"],
        "TRAIN_RATIO": os.environ.get("TRAIN_RATIO", "0.7"),
        "TEST_VAL_RATIO": os.environ.get("TEST_VAL_RATIO", "0.5"),
        "OUTPUT_FORMAT": os.environ.get("OUTPUT_FORMAT", "CSV"),
    }
    try:
        main(
            input_paths={"DATA": INPUT_DATA_DIR, "SIGNATURE": INPUT_SIGNATURE_DIR},
            output_paths={"processed_data": OUTPUT_DIR},
            environ_vars=environ,
            job_args=args,
            logger=logging.getLogger("tabular_preprocessing").info,
        )
    except Exception:
        logging.exception("Tabular preprocessing failed")
        sys.exit(1)
