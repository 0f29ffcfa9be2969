#!/usr/bin/env python
"""Train a binary logistic-regression model with batch gradient descent (numpy only).

SageMaker Training entry point.

Container layout
    /opt/ml/input/data/train, /val, /test     processed splits (numeric features, id, label)
    /opt/ml/input/data/config/hyperparameters.json
    /opt/ml/model                             model.tar.gz (model_weights.npz + model_metadata.json)
    /opt/ml/output/data                       training_metrics.json, val_predictions.csv

Hyperparameters (JSON)
    id_name, label_name       column names
    feature_list              optional list; default: every numeric column but id and label
    learning_rate             step size of gradient descent
    num_round                 maximum number of iterations
    l2_lambda                 L2 penalty on the weights (not the intercept)
    early_stopping_rounds     stop when the validation log loss has not improved for this long
    class_weight              "balanced" or "none"
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

INPUT_DATA_DIR = "/opt/ml/input/data"
HPARAMS_PATH = "/opt/ml/input/data/config/hyperparameters.json"
MODEL_DIR = "/opt/ml/model"
OUTPUT_DATA_DIR = "/opt/ml/output/data"

REQUIRED_HYPERPARAMETERS = ("id_name", "label_name", "learning_rate", "num_round")
EPS = 1e-12


def load_hyperparameters(path: str) -> dict[str, Any]:
    """The config channel is a file; accept the directory holding it as well."""
    if os.path.isdir(path):
        path = os.path.join(path, "hyperparameters.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"Hyperparameters file not found at {path}")
    with open(path) as handle:
        hyperparameters = json.load(handle)
    missing = [key for key in REQUIRED_HYPERPARAMETERS if key not in hyperparameters]
    if missing:
        raise ValueError(f"hyperparameters.json is missing {missing}")
    return hyperparameters


def load_split(data_dir: str, split: str) -> pd.DataFrame:
    split_dir = Path(data_dir) / split
    files = sorted(split_dir.glob("*.csv")) + sorted(split_dir.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"No CSV or Parquet files in {split_dir}")
    frames = [pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_csv(f) for f in files]
    return pd.concat(frames, ignore_index=True)


def select_features(df: pd.DataFrame, hyperparameters: dict[str, Any]) -> list[str]:
    explicit = hyperparameters.get("feature_list") or []
    if explicit:
        missing = [column for column in explicit if column not in df.columns]
        if missing:
            raise KeyError(f"feature_list columns not in training data: {missing}")
        return list(explicit)
    excluded = {hyperparameters["id_name"], hyperparameters["label_name"]}
    return [c for c in df.columns if c not in excluded and pd.api.types.is_numeric_dtype(df[c])]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


def log_loss(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None) -> float:
    p = np.clip(p, EPS, 1.0 - EPS)
    losses = -(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))
    return float(np.average(losses, weights=weights))


def roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Mann-Whitney form of the AUC, ties counted half; None with a single class."""
    n_pos = int((y == 1).sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(p).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fit_logistic_regression(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, hp: dict[str, Any]
) -> tuple[np.ndarray, float, list[dict[str, float]]]:
    learning_rate = float(hp["learning_rate"])
    num_round = int(hp["num_round"])
    l2_lambda = float(hp.get("l2_lambda", 0.0))
    patience = int(hp.get("early_stopping_rounds", 0))

    positive_rate = y_train.mean()
    if str(hp.get("class_weight", "none")).lower() == "balanced" and 0.0 < positive_rate < 1.0:
        sample_weight = np.where(y_train == 1, 0.5 / positive_rate, 0.5 / (1.0 - positive_rate))
    else:
        sample_weight = np.ones_like(y_train)
    sample_weight = sample_weight / sample_weight.sum()

    weights = np.zeros(x_train.shape[1])
    intercept = 0.0
    best = (np.inf, weights.copy(), intercept, 0)
    history = []
    for iteration in range(1, num_round + 1):
        p_train = sigmoid(x_train @ weights + intercept)
        residual = (p_train - y_train) * sample_weight
        weights -= learning_rate * (x_train.T @ residual + l2_lambda * weights / len(y_train))
        intercept -= learning_rate * residual.sum()

        val_loss = log_loss(y_val, sigmoid(x_val @ weights + intercept))
        if iteration % 25 == 0 or iteration == 1:
            train_loss = log_loss(y_train, sigmoid(x_train @ weights + intercept))
            history.append({"iteration": iteration, "train_log_loss": train_loss, "val_log_loss": val_loss})
        if val_loss < best[0] - 1e-7:
            best = (val_loss, weights.copy(), intercept, iteration)
        elif patience and iteration - best[3] >= patience:
            logger.info("Early stopping at iteration %d (best %d)", iteration, best[3])
            break
    _, weights, intercept, best_iteration = best
    history.append({"iteration": best_iteration, "best": True, "val_log_loss": best[0]})
    return weights, intercept, history


def write_model_archive(model_dir: str, members: dict[str, bytes]) -> Path:
    """model.tar.gz with fixed timestamps, so the same model gives the same archive bytes."""
    target = Path(model_dir) / "model.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
        with tarfile.open(fileobj=zipped, mode="w") as tar:
            for name, payload in sorted(members.items()):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(payload))
    return target


def main(
    input_paths: dict[str, str],
    output_paths: dict[str, str],
    environ_vars: dict[str, str],
    job_args: argparse.Namespace,
) -> dict[str, Any]:
    hp = load_hyperparameters(input_paths["hyperparameters_s3_uri"])
    id_name, label_name = hp["id_name"], hp["label_name"]
    logger.info("Hyperparameters: %s", hp)

    train_df = load_split(input_paths["input_path"], "train")
    val_df = load_split(input_paths["input_path"], "val")
    features = select_features(train_df, hp)
    if not features:
        raise ValueError(f"No numeric feature columns in training data: {list(train_df.columns)}")
    print(f"Training on {len(train_df)} rows, validating on {len(val_df)} rows, {len(features)} features")

    x_train_raw = train_df[features].to_numpy(dtype="float64")
    x_val_raw = val_df[features].to_numpy(dtype="float64")
    if np.isnan(x_train_raw).any() or np.isnan(x_val_raw).any():
        raise ValueError("Training data contains missing values; run the imputation step first")
    mean = x_train_raw.mean(axis=0)
    scale = x_train_raw.std(axis=0)
    scale[scale == 0] = 1.0
    x_train = (x_train_raw - mean) / scale
    x_val = (x_val_raw - mean) / scale
    y_train = train_df[label_name].to_numpy(dtype="float64")
    y_val = val_df[label_name].to_numpy(dtype="float64")

    weights, intercept, history = fit_logistic_regression(x_train, y_train, x_val, y_val, hp)

    p_train = sigmoid(x_train @ weights + intercept)
    p_val = sigmoid(x_val @ weights + intercept)
    metrics = {
        "train": {"rows": len(y_train), "log_loss": log_loss(y_train, p_train), "auc": roc_auc(y_train, p_train)},
        "val": {"rows": len(y_val), "log_loss": log_loss(y_val, p_val), "auc": roc_auc(y_val, p_val)},
        "history": history,
        "feature_importance": dict(
            sorted(zip(features, np.abs(weights).round(6).tolist(), strict=True), key=lambda kv: -kv[1])
        ),
    }
    print(f"val log loss {metrics['val']['log_loss']:.4f}, val AUC {metrics['val']['auc']}")

    weights_buffer = io.BytesIO()
    np.savez(weights_buffer, coef=weights, intercept=np.array([intercept]), mean=mean, scale=scale)
    metadata = {
        "model_type": "logistic_regression",
        "features": features,
        "id_name": id_name,
        "label_name": label_name,
        "hyperparameters": hp,
    }
    archive = write_model_archive(
        output_paths["model_output"],
        {
            "model_weights.npz": weights_buffer.getvalue(),
            "model_metadata.json": json.dumps(metadata, indent=2, sort_keys=True).encode(),
        },
    )
    logger.info("Saved model archive to %s", archive)

    output_dir = Path(output_paths["evaluation_output"])
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / "training_metrics.json", "w") as handle:
        json.dump(metrics, handle, indent=2)
    pd.DataFrame({id_name: val_df[id_name], label_name: val_df[label_name], "prob_class_1": p_val}).to_csv(
        output_dir / "val_predictions.csv", index=False
    )
    return metrics


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    # SageMaker Training passes no job arguments; hyperparameters arrive on the config channel.
    parser = argparse.ArgumentParser()
    args, _unknown = parser.parse_known_args()
    main(
        input_paths={"input_path": INPUT_DATA_DIR, "hyperparameters_s3_uri": HPARAMS_PATH},
        output_paths={"model_output": MODEL_DIR, "evaluation_output": OUTPUT_DATA_DIR},
        environ_vars=dict(os.environ),
        job_args=args,
    )
