#!/usr/bin/env python
"""Score a held-out split with the trained logistic-regression model and compute metrics.

SageMaker Processing entry point.

Container layout
    /opt/ml/processing/input/model         model.tar.gz from the training step
    /opt/ml/processing/input/eval_data     processed splits; the one named by --job_type is scored
    /opt/ml/processing/output/eval         eval_predictions.csv  (id, label, prob_class_0, prob_class_1)
    /opt/ml/processing/output/metrics      metrics.json, metrics_summary.txt

Environment
    ID_FIELD, LABEL_FIELD   (required)
    PREDICTION_THRESHOLD    (optional, "0.5") probability above which a row is predicted positive

Arguments
    --job_type  testing -> test/, validation -> val/, training -> train/, calibration -> calibration/
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

MODEL_DIR = "/opt/ml/processing/input/model"
EVAL_DATA_DIR = "/opt/ml/processing/input/eval_data"
EVAL_OUTPUT_DIR = "/opt/ml/processing/output/eval"
METRICS_OUTPUT_DIR = "/opt/ml/processing/output/metrics"

SPLIT_FOR_JOB_TYPE = {"training": "train", "validation": "val", "testing": "test", "calibration": "calibration"}
EPS = 1e-12


def load_model(model_dir: str) -> tuple[dict[str, np.ndarray], dict]:
    """Extract model.tar.gz to a temporary directory and read the weights and metadata."""
    archive = Path(model_dir) / "model.tar.gz"
    if not archive.exists():
        raise FileNotFoundError(f"model.tar.gz not found in {model_dir}: {sorted(os.listdir(model_dir))}")
    with tempfile.TemporaryDirectory() as extract_dir:
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12
                tar.extractall(extract_dir, filter="data")
            else:
                tar.extractall(extract_dir)
        with np.load(os.path.join(extract_dir, "model_weights.npz")) as npz:
            weights = {name: npz[name] for name in npz.files}
        with open(os.path.join(extract_dir, "model_metadata.json")) as handle:
            metadata = json.load(handle)
    return weights, metadata


def load_eval_data(data_dir: str, job_type: str) -> pd.DataFrame:
    split_dir = Path(data_dir) / SPLIT_FOR_JOB_TYPE.get(job_type, job_type)
    if not split_dir.is_dir():
        split_dir = Path(data_dir)  # an unsplit directory holds the evaluation data itself
    files = sorted(split_dir.glob("*.csv")) + sorted(split_dir.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"No evaluation data for job_type={job_type!r} in {split_dir}")
    return pd.concat(
        [pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_csv(f) for f in files], ignore_index=True
    )


def predict_proba(df: pd.DataFrame, weights: dict[str, np.ndarray], features: list[str]) -> np.ndarray:
    missing = [column for column in features if column not in df.columns]
    if missing:
        raise KeyError(f"Evaluation data lacks model features {missing}")
    x = (df[features].to_numpy(dtype="float64") - weights["mean"]) / weights["scale"]
    z = x @ weights["coef"] + weights["intercept"][0]
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | int | None]:
    n_pos = int((y == 1).sum())
    n_neg = int(len(y) - n_pos)
    if n_pos and n_neg:
        # AUC = P(score of a random positive > score of a random negative), ties count half.
        ranks = pd.Series(p).rank(method="average").to_numpy()
        auc = float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    else:
        auc = None
    clipped = np.clip(p, EPS, 1 - EPS)
    predicted = (p >= threshold).astype(int)
    tp = int(((predicted == 1) & (y == 1)).sum())
    fp = int(((predicted == 1) & (y == 0)).sum())
    fn = int(((predicted == 0) & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "rows": int(len(y)),
        "positives": n_pos,
        "auc_roc": auc,
        "accuracy": float((predicted == y).mean()),
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
        "precision": precision,
        "recall": recall,
        "f1_score": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "threshold": threshold,
    }


def main(
    input_paths: dict[str, str],
    output_paths: dict[str, str],
    environ_vars: dict[str, str],
    job_args: argparse.Namespace,
    logger: Callable[[str], None] | None = None,
) -> dict[str, float | int | None]:
    log = logger or print
    id_field = environ_vars["ID_FIELD"]
    label_field = environ_vars["LABEL_FIELD"]
    threshold = float(os.environ.get("PREDICTION_THRESHOLD", "0.5"))

    weights, metadata = load_model(input_paths["model_input"])
    features = metadata["features"]
    log(f"Loaded {metadata['model_type']} model with {len(features)} features")

    df = load_eval_data(input_paths["processed_data"], job_args.job_type)
    log(f"Scoring {len(df)} rows for job_type={job_args.job_type}")
    prob = predict_proba(df, weights, features)
    y = df[label_field].to_numpy(dtype="int64")

    eval_dir = Path(output_paths["eval_output"])
    eval_dir.mkdir(parents=True, exist_ok=True)
    predictions = pd.DataFrame(
        {id_field: df[id_field], label_field: y, "prob_class_0": 1.0 - prob, "prob_class_1": prob}
    )
    predictions.to_csv(eval_dir / "eval_predictions.csv", index=False)

    metrics = binary_metrics(y, prob, threshold)
    metrics_dir = Path(output_paths["metrics_output"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    with open(metrics_dir / "metrics.json", "w") as handle:
        json.dump(metrics, handle, indent=2)
    with open(metrics_dir / "metrics_summary.txt", "w") as handle:
        for name, value in metrics.items():
            handle.write(f"{name}: {value}\n")
    log(f"AUC {metrics['auc_roc']}, accuracy {metrics['accuracy']:.4f}, log loss {metrics['log_loss']:.4f}")
    return metrics


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", type=str, required=True)
    args = parser.parse_args()
    try:
        main(
            input_paths={"model_input": MODEL_DIR, "processed_data": EVAL_DATA_DIR},
            output_paths={"eval_output": EVAL_OUTPUT_DIR, "metrics_output": METRICS_OUTPUT_DIR},
            environ_vars={"ID_FIELD": os.environ["ID_FIELD"], "LABEL_FIELD": os.environ["LABEL_FIELD"]},
            job_args=args,
            logger=logging.getLogger("model_evaluation").info,
        )
    except Exception as exc:
        logging.error("Model evaluation failed: %s", exc)
        raise
