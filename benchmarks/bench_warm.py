"""Warm executor: a 7-step data-science chain by hand vs the plugin, and a trivial step's overhead.

    pip install -e '.[bench]'                # scikit-learn, scipy, xgboost-cpu, matplotlib
    python benchmarks/bench_warm.py          # 5 repetitions
    python benchmarks/bench_warm.py --quick  # 2 repetitions
    python benchmarks/bench_warm.py --only chain|trivial [--profile]

1. A chain of 7 realistic steps (ingest -> clean -> {impute_scale, stats}; impute_scale -> train
   -> evaluate -> report, stats -> report) on a generated 30,200-row customer CSV. The scripts
   import, at their top level, what each needs of pandas, numpy, pyarrow, scipy, scikit-learn,
   xgboost and matplotlib, and do 0.1-0.5 s of real work each (Parquet I/O, feature
   engineering, imputing/scaling/one-hot encoding, scipy tests, a boosted-tree model, metrics
   and plots, a bootstrap confidence interval, an HTML report). Per repetition, side by side
   (the order rotates each repetition, so a busy moment of the shared machine hits all alike):

     by hand     each step's main() in its own fresh ``python -c "import <script>; <script>.main(...)"``,
                 one after the other in DAG order, on the same input file, as a user would run
                 them by hand (timed from the first start to the last exit)
     warm        python -m pytest -p no:randomly --cursus-scenarios scenarios -m cursus_step
                 --cursus-no-cache --cache-clear ...          (the default: the warm executor)
     no-preload  the same with --cursus-no-preload (a fresh interpreter per step)
     floor       the same as warm with --collect-only: pytest start-up, plugin imports and
                 collection, no step: the least any plugin run can cost
     imports     a fresh ``python -c`` importing, timed from inside, the modules the warm parent
                 preloads for these scripts (``preload_candidates`` of the measured plugin, each
                 imported as the parent does): the import time the warm executor pays once

   Target (issue): warm <= 0.5 x by hand, as the median of per-repetition ratios. Each pytest
   run writes --cursus-json, from which the per-step ``executor`` (checked: ``forked`` for warm,
   ``fresh`` for no-preload), ``import_seconds`` and ``main_seconds`` are read.

2. A trivial step (``main`` writes one small file; no third-party import), 40 independent
   steps in one scenario (distinct env values, so distinct cache keys). Per repetition:

     engine      the plugin's own path for each step, ``StepRunner.run`` (workspace, request
                 file, launch, supervision, reaping, report, output listing), timed around each
                 call in this process, once with the warm executor (``WarmForkLauncher``, its
                 parent started by the first step, which is reported apart) and once with a
                 fresh interpreter per step (``FreshInterpreterLauncher``); plus a bare
                 ``python -c "import trivial; trivial.main(...)"`` per step for reference
     pytest      whole pytest runs of the 40 steps (cold step cache: --cache-clear), warm and
                 --cursus-no-preload, against the same command with every step deselected
                 (``-m "not cursus_step"``: start-up and collection of the same scenario);
                 per-step overhead = (run - deselected) / 40

   Target (issue): per-step overhead <= 50 ms (median). The script's own work is ~0.1 ms, so a
   step's whole wall time is overhead.

``--profile`` adds a cProfile of one warm pytest run of the 40 trivial steps (pytest process
only). One untimed warm-up of every configuration comes first (.pyc files, matplotlib's font
cache).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # the two private ones: the by-hand runs are measured as run_command measures a command
    REPO_ROOT,
    Run,
    _cpu_busy_seconds,
    _own_children_cpu,
    check_ok,
    child_env,
    fmt_s,
    machine_report,
    md_table,
    median,
    parse_args,
    profile_pytest,
    progress,
    project_dir,
    run_command,
    run_pytest,
    verdict,
    wait_until_idle,
)

CHAIN_TARGET = 0.5
TRIVIAL_TARGET_MS = 50.0
TRIVIAL_STEPS = 40
ROWS = 30_000
BENCH_MODULES = ("sklearn", "scipy", "xgboost", "matplotlib")
INSTALL_HINT = "pip install -e '.[bench]'  (scikit-learn, scipy, xgboost-cpu, matplotlib)"

# --- the chain's scripts -------------------------------------------------------------------

INGEST = '''"""Ingest the billing export: read the raw CSV shards, type and validate them, write Parquet."""

import argparse
import glob
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CATEGORIES = ["region", "plan", "payment_method"]


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    files = sorted(glob.glob(os.path.join(input_paths["raw"], "*.csv")))
    frame = pd.concat([pd.read_csv(path, parse_dates=["signup_date"]) for path in files], ignore_index=True)
    frame["churned"] = frame["churned"].map({"yes": 1, "no": 0}).astype("int8")
    frame["paperless"] = frame["paperless"].astype(bool)
    for column in CATEGORIES:
        frame[column] = frame[column].astype("category")
    invalid = (frame["monthly_charges"] <= 0) | (frame["tenure_months"] < 0)
    frame = frame.loc[~invalid]
    checksum = int(pd.util.hash_pandas_object(frame[["customer_id", "tenure_months"]], index=False).sum() % 2**31)
    out = output_paths["table"]
    os.makedirs(out, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), os.path.join(out, "customers.parquet"))
    manifest = {
        "rows": len(frame),
        "dropped_invalid": int(invalid.sum()),
        "nulls": {k: int(v) for k, v in frame.isna().sum().items() if v},
        "checksum": checksum,
        "churn_rate": float(np.round(frame["churned"].mean(), 4)),
    }
    with open(os.path.join(out, "manifest.json"), "w") as handle:
        json.dump(manifest, handle, indent=2)
    return manifest


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    main(
        {"raw": "/opt/ml/processing/input/raw"},
        {"table": "/opt/ml/processing/output/table"},
        dict(os.environ),
        parser.parse_args(),
    )
'''

CLEAN = '''"""Clean and enrich: de-duplicate, repair totals, winsorize usage, derive features."""

import argparse
import os

import numpy as np
import pandas as pd
from scipy.stats import mstats


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    frame = pd.read_parquet(os.path.join(input_paths["table"], "customers.parquet"))
    frame = frame.sort_values("signup_date").drop_duplicates("customer_id", keep="last")
    missing_total = frame["total_charges"].isna()
    frame.loc[missing_total, "total_charges"] = (
        frame.loc[missing_total, "tenure_months"] * frame.loc[missing_total, "monthly_charges"]
    )
    usage = frame["data_usage_gb"].to_numpy(dtype=float, copy=True)
    present = ~np.isnan(usage)
    usage[present] = np.asarray(mstats.winsorize(usage[present], limits=(0.01, 0.01)))
    frame["data_usage_gb"] = usage
    reference = pd.Timestamp(environ_vars.get("REFERENCE_DATE", "2024-07-01"))
    frame["days_since_signup"] = (reference - frame["signup_date"]).dt.days
    frame["signup_month"] = frame["signup_date"].dt.month.astype("int8")
    frame["signup_weekday"] = frame["signup_date"].dt.day_name().astype("category")
    frame["charge_per_month_tenure"] = frame["total_charges"] / frame["tenure_months"].clip(lower=1)
    frame["charge_vs_plan"] = frame["monthly_charges"] / frame.groupby("plan", observed=True)[
        "monthly_charges"
    ].transform("median")
    frame["tickets_vs_region"] = frame["support_tickets"] - frame.groupby("region", observed=True)[
        "support_tickets"
    ].transform("mean")
    frame["usage_rank_in_region"] = frame.groupby("region", observed=True)["data_usage_gb"].rank(pct=True)
    frame["tenure_band"] = pd.cut(
        frame["tenure_months"], [-1, 6, 12, 24, 48, 1000], labels=["0-6", "7-12", "13-24", "25-48", "49+"]
    )
    frame["customer_key"] = (
        frame["region"].astype(str) + "-" + frame["plan"].astype(str) + "-" + frame["customer_id"].astype(str)
    )
    out = output_paths["table"]
    os.makedirs(out, exist_ok=True)
    frame.drop(columns=["signup_date"]).to_parquet(os.path.join(out, "clean.parquet"), index=False)
    return {"rows": len(frame), "repaired_totals": int(missing_total.sum())}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    main(
        {"table": "/opt/ml/processing/input/table"},
        {"table": "/opt/ml/processing/output/table"},
        dict(os.environ),
        parser.parse_args(),
    )
'''

IMPUTE_SCALE = '''"""Split, impute, scale and one-hot encode with scikit-learn; keep the fitted preprocessor."""

import argparse
import json
import os

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_tickets",
    "data_usage_gb",
    "age",
    "days_since_signup",
    "charge_per_month_tenure",
    "charge_vs_plan",
    "tickets_vs_region",
    "usage_rank_in_region",
]
CATEGORICAL = ["region", "plan", "payment_method", "signup_weekday", "tenure_band", "paperless"]


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    frame = pd.read_parquet(os.path.join(input_paths["table"], "clean.parquet"))
    target = environ_vars.get("TARGET_COLUMN", "churned")
    seed = int(environ_vars.get("RANDOM_SEED", "42"))
    train, test = train_test_split(frame, test_size=0.25, stratify=frame[target], random_state=seed)
    preprocessor = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]
                ),
                NUMERIC,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                CATEGORICAL,
            ),
        ]
    )
    for_sklearn = lambda part: part[NUMERIC + CATEGORICAL].astype({c: "object" for c in CATEGORICAL})
    train_matrix = preprocessor.fit_transform(for_sklearn(train))
    test_matrix = preprocessor.transform(for_sklearn(test))
    names = [name.replace("__", "_") for name in preprocessor.get_feature_names_out()]
    out = output_paths["datasets"]
    os.makedirs(out, exist_ok=True)
    for label, matrix, part in (("train", train_matrix, train), ("test", test_matrix, test)):
        table = pd.DataFrame(matrix, columns=names)
        table[target] = part[target].to_numpy()
        table["customer_id"] = part["customer_id"].to_numpy()
        table.to_parquet(os.path.join(out, f"{label}.parquet"), index=False)
    joblib.dump(preprocessor, os.path.join(out, "preprocessor.joblib"))
    with open(os.path.join(out, "features.json"), "w") as handle:
        json.dump({"features": names, "target": target}, handle)
    return {"train_rows": len(train), "test_rows": len(test), "features": len(names)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    main(
        {"table": "/opt/ml/processing/input/table"},
        {"datasets": "/opt/ml/processing/output/datasets"},
        dict(os.environ),
        parser.parse_args(),
    )
'''

STATS = '''"""Statistical profile of churn drivers with scipy: two-sample tests, chi-square, correlations, drift."""

import argparse
import json
import os

import numpy as np
import pandas as pd
from scipy import stats

NUMERIC = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_tickets",
    "data_usage_gb",
    "age",
    "charge_per_month_tenure",
    "charge_vs_plan",
    "days_since_signup",
]
CATEGORICAL = ["region", "plan", "payment_method", "tenure_band", "paperless"]


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    frame = pd.read_parquet(os.path.join(input_paths["table"], "clean.parquet"))
    churned = frame["churned"] == 1
    numeric = {}
    for column in NUMERIC:
        a = frame.loc[churned, column].dropna().to_numpy()
        b = frame.loc[~churned, column].dropna().to_numpy()
        ks = stats.ks_2samp(a, b)
        mw = stats.mannwhitneyu(a, b)
        welch = stats.ttest_ind(a, b, equal_var=False)
        r = stats.pointbiserialr(frame.loc[frame[column].notna(), "churned"], frame[column].dropna())
        numeric[column] = {
            "ks": float(ks.statistic),
            "ks_p": float(ks.pvalue),
            "mannwhitney_p": float(mw.pvalue),
            "welch_t": float(welch.statistic),
            "point_biserial": float(r.statistic),
        }
    categorical = {}
    for column in CATEGORICAL:
        table = pd.crosstab(frame[column], frame["churned"])
        chi2, p, dof, _ = stats.chi2_contingency(table)
        categorical[column] = {
            "chi2": float(chi2),
            "p": float(p),
            "dof": int(dof),
            "cramers_v": float(np.sqrt(chi2 / (len(frame) * (min(table.shape) - 1)))),
        }
    rho, _ = stats.spearmanr(frame[NUMERIC].fillna(frame[NUMERIC].median()).to_numpy())
    order = frame["days_since_signup"].to_numpy()
    older, newer = order > np.median(order), order <= np.median(order)
    drift = {
        column: float(stats.ks_2samp(frame.loc[older, column].dropna(), frame.loc[newer, column].dropna()).pvalue)
        for column in NUMERIC
    }
    alpha = float(environ_vars.get("ALPHA", "0.01"))
    significant = sorted(c for c, v in numeric.items() if v["ks_p"] < alpha) + sorted(
        c for c, v in categorical.items() if v["p"] < alpha
    )
    out = output_paths["stats"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "stats.json"), "w") as handle:
        json.dump(
            {
                "numeric": numeric,
                "categorical": categorical,
                "spearman": np.round(rho, 4).tolist(),
                "drift_p": drift,
                "significant": significant,
                "alpha": alpha,
            },
            handle,
            indent=2,
        )
    return {"significant": len(significant)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    main(
        {"table": "/opt/ml/processing/input/table"},
        {"stats": "/opt/ml/processing/output/stats"},
        dict(os.environ),
        parser.parse_args(),
    )
'''

TRAIN = '''"""Train a gradient-boosted tree classifier with xgboost, early-stopped on a validation split."""

import argparse
import json
import os

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.model_selection import train_test_split


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    with open(os.path.join(input_paths["datasets"], "features.json")) as handle:
        spec = json.load(handle)
    train = pd.read_parquet(os.path.join(input_paths["datasets"], "train.parquet"))
    features, target = spec["features"], spec["target"]
    seed = int(environ_vars.get("RANDOM_SEED", "42"))
    fit_part, valid_part = train_test_split(train, test_size=0.2, stratify=train[target], random_state=seed)
    # one thread unless told: OpenMP's threads spin-wait, which on a busy shared host costs 10x
    model = xgb.XGBClassifier(
        n_estimators=int(environ_vars.get("N_ESTIMATORS", "60")),
        max_depth=5,
        learning_rate=0.1,
        subsample=0.8,
        colsample_bytree=0.8,
        tree_method="hist",
        eval_metric="auc",
        early_stopping_rounds=20,
        random_state=seed,
        n_jobs=int(environ_vars.get("N_JOBS", "1")),
    )
    model.fit(
        fit_part[features], fit_part[target], eval_set=[(valid_part[features], valid_part[target])], verbose=False
    )
    out = output_paths["model"]
    os.makedirs(out, exist_ok=True)
    model.save_model(os.path.join(out, "model.json"))
    importance = model.get_booster().get_score(importance_type="gain")
    top = sorted(importance.items(), key=lambda item: -item[1])[:15]
    with open(os.path.join(out, "training.json"), "w") as handle:
        json.dump(
            {
                "best_iteration": int(model.best_iteration),
                "best_auc": float(model.best_score),
                "features": features,
                "target": target,
                "top_gain": [[k, float(v)] for k, v in top],
                "positive_rate": float(np.mean(fit_part[target])),
            },
            handle,
            indent=2,
        )
    return {"best_iteration": int(model.best_iteration)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    main(
        {"datasets": "/opt/ml/processing/input/datasets"},
        {"model": "/opt/ml/processing/output/model"},
        dict(os.environ),
        parser.parse_args(),
    )
'''

EVALUATE = '''"""Evaluate the model on the held-out test set: metrics, predictions, ROC and calibration plots."""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.calibration import calibration_curve
from sklearn.metrics import (average_precision_score, brier_score_loss, confusion_matrix, log_loss,
                             precision_recall_curve, roc_auc_score, roc_curve)


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    with open(os.path.join(input_paths["model"], "training.json")) as handle:
        training = json.load(handle)
    test = pd.read_parquet(os.path.join(input_paths["datasets"], "test.parquet"))
    model = xgb.XGBClassifier(n_jobs=int(environ_vars.get("N_JOBS", "1")))
    model.load_model(os.path.join(input_paths["model"], "model.json"))
    truth = test[training["target"]].to_numpy()
    score = model.predict_proba(test[training["features"]])[:, 1]
    precision, recall, thresholds = precision_recall_curve(truth, score)
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    threshold = float(thresholds[np.argmax(f1[:-1])])
    tn, fp, fn, tp = confusion_matrix(truth, score >= threshold).ravel()
    metrics = {"auc": roc_auc_score(truth, score), "average_precision": average_precision_score(truth, score),
               "log_loss": log_loss(truth, score), "brier": brier_score_loss(truth, score), "threshold": threshold,
               "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}
    out = output_paths["evaluation"]
    os.makedirs(out, exist_ok=True)
    figure, (roc_axis, calibration_axis) = plt.subplots(1, 2, figsize=(9, 4))
    fpr, tpr, _ = roc_curve(truth, score)
    roc_axis.plot(fpr, tpr, label=f"AUC {metrics['auc']:.3f}")
    roc_axis.plot([0, 1], [0, 1], "--", color="grey")
    roc_axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    roc_axis.legend()
    observed, predicted = calibration_curve(truth, score, n_bins=10)
    calibration_axis.plot(predicted, observed, marker="o")
    calibration_axis.plot([0, 1], [0, 1], "--", color="grey")
    calibration_axis.set(xlabel="predicted", ylabel="observed", title="calibration")
    figure.tight_layout()
    figure.savefig(os.path.join(out, "evaluation.png"), dpi=80)
    plt.close(figure)
    pd.DataFrame({"customer_id": test["customer_id"], "truth": truth, "score": score}).to_parquet(
        os.path.join(out, "predictions.parquet"), index=False)
    with open(os.path.join(out, "metrics.json"), "w") as handle:
        json.dump({k: float(v) for k, v in metrics.items()}, handle, indent=2)
    return metrics


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    main({"model": "/opt/ml/processing/input/model", "datasets": "/opt/ml/processing/input/datasets"},
         {"evaluation": "/opt/ml/processing/output/evaluation"}, dict(os.environ), parser.parse_args())
'''

REPORT = '''"""Publish: a bootstrap confidence interval of the AUC, score deciles, an HTML report and a summary CSV."""
import argparse
import html
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats


def _auc(truth, score):
    ranks = stats.rankdata(score)
    positives = truth.sum()
    negatives = len(truth) - positives
    return (ranks[truth == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    with open(os.path.join(input_paths["evaluation"], "metrics.json")) as handle:
        metrics = json.load(handle)
    with open(os.path.join(input_paths["stats"], "stats.json")) as handle:
        profile = json.load(handle)
    predictions = pd.read_parquet(os.path.join(input_paths["evaluation"], "predictions.parquet"))
    truth, score = predictions["truth"].to_numpy(), predictions["score"].to_numpy()
    interval = stats.bootstrap(
        (truth, score), _auc, paired=True, vectorized=False, n_resamples=int(environ_vars.get("BOOTSTRAP", "100")),
        method="percentile", random_state=np.random.default_rng(0),
    ).confidence_interval
    predictions["decile"] = pd.qcut(predictions["score"].rank(method="first"), 10, labels=False) + 1
    deciles = predictions.groupby("decile").agg(
        customers=("truth", "size"), churners=("truth", "sum"), mean_score=("score", "mean")
    )
    deciles["lift"] = (deciles["churners"] / deciles["customers"]) / truth.mean()
    out = output_paths["report"]
    os.makedirs(out, exist_ok=True)
    figure, axis = plt.subplots(figsize=(6, 3))
    deciles["lift"].plot.bar(ax=axis, color="tab:blue")
    axis.set(xlabel="score decile", ylabel="lift", title="lift by decile")
    figure.tight_layout()
    figure.savefig(os.path.join(out, "lift.png"), dpi=80)
    plt.close(figure)
    drivers = pd.DataFrame(profile["numeric"]).T.sort_values("ks", ascending=False)
    body = [f"<h1>Churn model report ({html.escape(job_args.job_type)})</h1>",
            f"<p>AUC {metrics['auc']:.4f} (95% bootstrap CI {interval.low:.4f}-{interval.high:.4f}), "
            f"average precision {metrics['average_precision']:.4f}, threshold {metrics['threshold']:.3f}</p>",
            "<h2>Lift by decile</h2>", deciles.to_html(float_format="%.3f"), '<img src="lift.png">',
            "<h2>Drivers (two-sample KS)</h2>", drivers.to_html(float_format="%.4g"),
            f"<p>Significant at alpha={profile['alpha']}: {html.escape(', '.join(profile['significant']))}</p>"]
    with open(os.path.join(out, "report.html"), "w") as handle:
        handle.write("<html><body>" + "\\n".join(body) + "</body></html>")
    deciles.reset_index().to_csv(os.path.join(out, "summary.csv"), index=False)
    return {"auc_low": float(interval.low), "auc_high": float(interval.high)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    main({"evaluation": "/opt/ml/processing/input/evaluation", "stats": "/opt/ml/processing/input/stats"},
         {"report": "/opt/ml/processing/output/report"}, dict(os.environ), parser.parse_args())
'''

# name -> (script source, {input: (container path, source or "step.output")}, {output: container path}, expected files)
CHAIN: dict[str, tuple[str, dict[str, tuple[str, str]], dict[str, str], list[str]]] = {
    "ingest": (
        INGEST,
        {"raw": ("/opt/ml/processing/input/raw", "raw_customers")},
        {"table": "/opt/ml/processing/output/table"},
        ["customers.parquet", "manifest.json"],
    ),
    "clean": (
        CLEAN,
        {"table": ("/opt/ml/processing/input/table", "ingest.table")},
        {"table": "/opt/ml/processing/output/table"},
        ["clean.parquet"],
    ),
    "impute_scale": (
        IMPUTE_SCALE,
        {"table": ("/opt/ml/processing/input/table", "clean.table")},
        {"datasets": "/opt/ml/processing/output/datasets"},
        ["train.parquet", "test.parquet", "preprocessor.joblib"],
    ),
    "stats": (
        STATS,
        {"table": ("/opt/ml/processing/input/table", "clean.table")},
        {"stats": "/opt/ml/processing/output/stats"},
        ["stats.json"],
    ),
    "train": (
        TRAIN,
        {"datasets": ("/opt/ml/processing/input/datasets", "impute_scale.datasets")},
        {"model": "/opt/ml/processing/output/model"},
        ["model.json", "training.json"],
    ),
    "evaluate": (
        EVALUATE,
        {
            "model": ("/opt/ml/processing/input/model", "train.model"),
            "datasets": ("/opt/ml/processing/input/datasets", "impute_scale.datasets"),
        },
        {"evaluation": "/opt/ml/processing/output/evaluation"},
        ["metrics.json", "predictions.parquet", "evaluation.png"],
    ),
    "report": (
        REPORT,
        {
            "evaluation": ("/opt/ml/processing/input/evaluation", "evaluate.evaluation"),
            "stats": ("/opt/ml/processing/input/stats", "stats.stats"),
        },
        {"report": "/opt/ml/processing/output/report"},
        ["report.html", "summary.csv", "lift.png"],
    ),
}
CHAIN_ENV = {"TARGET_COLUMN": "churned", "RANDOM_SEED": "42", "REFERENCE_DATE": "2024-07-01"}
JOB_TYPE = "training"

# One step run by hand: import the script (timed), call main() (timed), print both as JSON.
BY_HAND = """
import argparse, json, sys, time
spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["scripts"])
started = time.perf_counter()
module = __import__(spec["module"])
imported, cpu = time.perf_counter(), time.process_time()
module.main(spec["inputs"], spec["outputs"], spec["env"], argparse.Namespace(job_type=spec["job_type"]))
print(json.dumps(
    {"import": imported - started, "main": time.perf_counter() - imported, "main_cpu": time.process_time() - cpu}
))
"""

# The warm parent's own preload, in a fresh process, timed from inside.
IMPORT_ONCE = """
import json, sys, time
from pytest_cursus.execution.warm_parent import preload
names = json.loads(sys.argv[1])
started = time.perf_counter()
failures = [failure for failure in map(preload, names) if failure]
print(json.dumps({"seconds": time.perf_counter() - started, "modules": len(sys.modules), "failures": failures}))
"""


def write_customers(path: Path, rows: int) -> None:
    """A deterministic customer snapshot with nulls, skew and a churn signal, as 3 CSV shards."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    tenure = rng.integers(0, 73, rows)
    plan = rng.choice(["basic", "standard", "premium"], rows, p=[0.5, 0.35, 0.15])
    monthly = np.round(
        rng.normal(30, 6, rows) + np.select([plan == "standard", plan == "premium"], [25, 55], 0), 2
    ).clip(5)
    total = np.round(monthly * tenure * rng.uniform(0.9, 1.05, rows), 2)
    total[rng.random(rows) < 0.02] = np.nan
    tickets = rng.poisson(1.2, rows)
    usage = np.round(rng.lognormal(2.5, 0.9, rows), 3)
    usage[rng.random(rows) < 0.05] = np.nan
    age = rng.integers(18, 90, rows).astype(float)
    age[rng.random(rows) < 0.08] = np.nan
    payment = rng.choice(["card", "bank_transfer", "electronic_check", "mailed_check"], rows)
    logit = -1.2 - 0.04 * tenure + 0.35 * tickets + 0.012 * (monthly - 50) + 0.8 * (payment == "electronic_check")
    churned = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(100_000, 100_000 + rows),
            "signup_date": pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 2300, rows), unit="D"),
            "region": rng.choice(["north", "south", "east", "west", "central"], rows),
            "plan": plan,
            "payment_method": payment,
            "paperless": rng.random(rows) < 0.6,
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_tickets": tickets,
            "data_usage_gb": usage,
            "age": age,
            "churned": churned,
        }
    )
    # a few exact duplicates, as exports have
    frame = pd.concat([frame, frame.sample(200, random_state=1)], ignore_index=True)
    path.mkdir(parents=True)
    for index, rows_of_part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows_of_part].to_csv(path / f"part-{index:05d}.csv", index=False)


def build_chain_project(root: Path) -> None:
    for directory in ("contracts", "scripts", "scenarios"):
        (root / directory).mkdir()
    write_customers(root / "data" / "raw", ROWS)
    lines = [
        "scenario: churn_chain",
        "contracts: [../contracts]",
        "scripts: [../scripts]",
        "defaults:",
        "  timeout: 600",
        "  env: {" + ", ".join(f"{k}: '{v}'" for k, v in CHAIN_ENV.items()) + "}",
        "data:",
        "  raw_customers: {file: ../data/raw}",
        "steps:",
    ]
    for name, (source, inputs, outputs, files) in CHAIN.items():
        (root / "scripts" / f"{name}.py").write_text(source, encoding="utf-8")
        contract = [f"name: Churn{name.title().replace('_', '')}", f"entry_point: {name}.py", "inputs:"]
        contract += [f"  {channel}: {{path: {path}, required: true}}" for channel, (path, _) in inputs.items()]
        contract += ["outputs:"] + [f"  {channel}: {{path: {path}}}" for channel, path in outputs.items()]
        contract += [
            "job_arguments:",
            "  - {flag: --job_type, source: job_type, required: true}",
            "env_vars:",
            "  optional: {" + ", ".join(f"{k}: '{v}'" for k, v in CHAIN_ENV.items()) + "}",
        ]
        (root / "contracts" / f"{name}.contract.yaml").write_text("\n".join(contract) + "\n", encoding="utf-8")
        (output,) = outputs
        lines += [
            f"  {name}:",
            f"    contract: Churn{name.title().replace('_', '')}",
            f"    job_args: {{job_type: {JOB_TYPE}}}",
            "    inputs: {" + ", ".join(f"{channel}: {wired}" for channel, (_, wired) in inputs.items()) + "}",
            f"    expect: {{{output}: {{files: [{', '.join(files)}]}}}}",
        ]
    (root / "scenarios" / "churn_chain.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_by_hand(root: Path, env: dict[str, str]) -> tuple[float, dict[str, dict[str, float]]]:
    """Every step in DAG order (CHAIN's order is one), each in a fresh interpreter; outputs in a fresh directory."""
    outputs_root = root / "by_hand"
    shutil.rmtree(outputs_root, ignore_errors=True)
    produced: dict[str, str] = {"raw_customers": str(root / "data" / "raw")}
    per_step: dict[str, dict[str, float]] = {}
    step_env = {**env, **CHAIN_ENV}
    started = time.perf_counter()
    for name, (_, inputs, outputs, _files) in CHAIN.items():
        spec = {
            "scripts": str(root / "scripts"),
            "module": name,
            "inputs": {channel: produced[wired] for channel, (_, wired) in inputs.items()},
            "outputs": {channel: str(outputs_root / name / channel) for channel in outputs},
            "env": dict(CHAIN_ENV),
            "job_type": JOB_TYPE,
        }
        step_start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", BY_HAND, json.dumps(spec)],
            cwd=root,
            env=step_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"step {name} by hand exited {done.returncode}:\n{done.stderr[-3000:]}")
        per_step[name] = {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": time.perf_counter() - step_start}
        produced.update({f"{name}.{channel}": path for channel, path in spec["outputs"].items()})
    return time.perf_counter() - started, per_step


def step_records(json_path: Path) -> list[dict[str, Any]]:
    return [step for step in json.loads(json_path.read_text())["steps"] if not step.get("cached")]


def chain(root: Path, args: argparse.Namespace, env: dict[str, str]) -> tuple[str, bool]:
    build_chain_project(root)
    preload_names = preload_names_of(root, env)
    progress(f"chain: {len(CHAIN)} steps; the warm parent preloads {len(preload_names)} names")
    base = [
        "--cursus-scenarios",
        "scenarios",
        "-m",
        "cursus_step",
        "--cursus-no-cache",
        "--cache-clear",
        "-q",
        "-p",
        "no:xdist",
        "--basetemp",
        str(root / ".basetemp"),
        "--cursus-workspace",
        str(root / "ws"),
    ]
    configs = {"warm": [], "no-preload": ["--cursus-no-preload"]}
    labels = ["by hand", "warm", "no-preload", "floor", "imports"]
    walls: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}
    noise: dict[str, list[float]] = {label: [] for label in labels}
    ratios: dict[str, list[float]] = {"warm": [], "no-preload": [], "floor": []}
    inside: dict[str, dict[str, list[float]]] = {
        label: {"import": [], "main": [], "steps_wall": []} for label in ("by hand", "warm", "no-preload")
    }
    executors: dict[str, set[str]] = {"warm": set(), "no-preload": set()}
    import_once: list[float] = []

    def run_config(label: str, rep: int) -> None:
        if label == "by hand":
            busy_before, own_before = _cpu_busy_seconds(), _own_children_cpu()
            seconds, per_step = run_by_hand(root, env)
            own = _own_children_cpu() - own_before
            walls[label].append(seconds)
            cpu[label].append(own)
            noise[label].append(max(0.0, _cpu_busy_seconds() - busy_before - own) / (seconds * (os.cpu_count() or 1)))
            inside[label]["import"].append(sum(s["import"] for s in per_step.values()))
            inside[label]["main"].append(sum(s["main"] for s in per_step.values()))
            inside[label]["steps_wall"].append(sum(s["wall"] for s in per_step.values()))
            return
        if label == "imports":
            run = run_command(label, [sys.executable, "-c", IMPORT_ONCE, json.dumps(preload_names)], root, env)
            check_ok(run)
            found = json.loads(run.output.strip().splitlines()[-1])
            if found["failures"]:
                raise SystemExit(f"preloading failed in a fresh process: {found['failures']}")
            import_once.append(found["seconds"])
        elif label == "floor":
            run = run_pytest(label, [*base, "--collect-only"], root, env)
            check_ok(run)
        else:
            report = root / f"run-{label}-{rep}.json"
            run = run_pytest(label, [*base, *configs[label], "--cursus-json", str(report)], root, env)
            check_ok(run)
            steps = step_records(report)
            if len(steps) != len(CHAIN):
                raise SystemExit(f"{label}: expected {len(CHAIN)} steps run in {report}, found {len(steps)}")
            executors[label].update(step["metrics"]["executor"] for step in steps)
            inside[label]["import"].append(sum(step["metrics"]["import_seconds"] for step in steps))
            inside[label]["main"].append(sum(step["metrics"]["main_seconds"] for step in steps))
            inside[label]["steps_wall"].append(sum(step["metrics"]["wall_seconds"] for step in steps))
        walls[label].append(run.seconds)
        cpu[label].append(run.own_cpu)
        noise[label].append(run.foreign_share)

    progress("chain: warm-up (not timed) ...")
    run_by_hand(root, env)
    for label in ("warm", "no-preload", "floor"):
        run_config(label, 0)
    for values in (*walls.values(), *cpu.values(), *noise.values(), import_once):
        values.clear()
    for per_label in inside.values():
        for values in per_label.values():
            values.clear()
    loads = []
    for rep in range(1, args.repeat + 1):
        wait_until_idle(args.wait_idle, args.max_wait)
        loads.append(os.getloadavg()[0])
        order = labels[rep - 1 :] + labels[: rep - 1]  # rotate: each configuration takes each place in turn
        for label in order:
            run_config(label, rep)
        for label in ratios:
            ratios[label].append(walls[label][-1] / walls["by hand"][-1])
        progress(
            f"chain rep {rep}/{args.repeat} ({' -> '.join(order)}): "
            + "  ".join(f"{label} {walls[label][-1]:.2f}s" for label in labels if label != "imports")
            + f"  imports once {import_once[-1]:.2f}s  warm/by hand {ratios['warm'][-1]:.3f}  load {loads[-1]:.1f}"
        )

    warm_ratio = median(ratios["warm"])
    ok = warm_ratio <= CHAIN_TARGET
    rows = []
    for label in ("by hand", "warm", "no-preload", "floor"):
        ratio = (
            "1 (reference)"
            if label == "by hand"
            else f"{median(ratios[label]):.3f} (" + ", ".join(f"{r:.3f}" for r in ratios[label]) + ")"
        )
        parts = inside.get(label)
        rows.append(
            [
                label,
                fmt_s(median(walls[label])),
                fmt_s(min(walls[label])),
                ratio,
                fmt_s(median(parts["steps_wall"])) if parts else "-",
                fmt_s(median(parts["import"])) if parts else "-",
                fmt_s(median(parts["main"])) if parts else "-",
                fmt_s(median(cpu[label])) if cpu[label] else "-",
                f"{median(noise[label]):.0%}" if noise[label] else "-",
                ", ".join(sorted(executors.get(label, []))) or "-",
            ]
        )
    rest_known = median(walls["floor"]) + median(import_once) + median(inside["warm"]["steps_wall"])
    stdlib = set(sys.stdlib_module_names)
    packages = sorted({name.split(".")[0] for name in preload_names} - stdlib)
    saved = [fresh - warm for fresh, warm in zip(inside["no-preload"]["import"], inside["warm"]["import"], strict=True)]
    table = md_table(
        [
            "configuration",
            "median wall s",
            "min s",
            "wall / by hand (median of per-repetition ratios; each)",
            "sum of step walls s",
            "sum of import_seconds s (inside each step)",
            "sum of main_seconds s",
            "CPU s of the process tree (median)",
            "others' CPU use (median)",
            "executor of the steps",
        ],
        rows,
    )
    summary = md_table(
        ["target", "measured", "measured / target", "result"],
        [
            [
                f"warm <= {CHAIN_TARGET} x by hand",
                f"**{warm_ratio:.3f} x** by hand",
                f"{warm_ratio / CHAIN_TARGET:.2f}",
                verdict(ok),
            ]
        ],
    )
    text = (
        f"{summary}\n\n{table}\n\n"
        f"Load average (1 min) at the start of each repetition: {', '.join(f'{x:.1f}' for x in loads)}.\n\n"
        f"**Import time paid once** by the warm parent: {median(import_once):.2f} s (median; "
        + ", ".join(f"{x:.2f}" for x in import_once)
        + f") to import the {len(preload_names)} names `preload_candidates` finds in the 7 scripts, "
        "in a fresh process, timed "
        f"from inside. Import time the warm executor saved across the 7 steps (sum of the steps' `import_seconds`, "
        f"no-preload minus warm): {median(saved):.2f} s (median). By hand, the 7 steps spent "
        f"{median(inside['by hand']['import']):.2f} s importing their scripts and "
        f"{median(inside['by hand']['main']):.2f} s "
        f"in `main()`, of {median(inside['by hand']['steps_wall']):.2f} s of step wall time.\n\n"
        f"Where the warm run's time goes (medians): pytest start-up, plugin imports and collection (floor) "
        f"{median(walls['floor']):.2f} s + the parent's imports, once, about {median(import_once):.2f} s + the 7 "
        "steps' own "
        f"walls (fork to exit) {median(inside['warm']['steps_wall']):.2f} s = {rest_known:.2f} s of "
        f"{median(walls['warm']):.2f} s; "
        f"the rest is staging inputs, output listings, expectations, reports and the warm parent's own start.\n\n"
        f"The warm parent preloads {len(preload_names)} names found in the scripts' top-level imports, from these "
        "packages: "
        f"{', '.join(f'`{name}`' for name in packages)}.\n"
    )
    return text, ok


# --- the trivial step ----------------------------------------------------------------------

TRIVIAL_SCRIPT = '''"""Write one small file: nothing to measure but the plugin's own cost."""
import os


def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["out"], "done.txt"), "w") as handle:
        handle.write(environ_vars["INDEX"] + "\\n")
'''

TRIVIAL_BY_HAND = (
    "import sys; sys.path.insert(0, sys.argv[1]); import trivial, argparse; "
    "trivial.main({}, {'out': sys.argv[2]}, {'INDEX': sys.argv[3]}, argparse.Namespace())"
)


def build_trivial_project(root: Path) -> None:
    for directory in ("contracts", "scripts", "scenarios"):
        (root / directory).mkdir()
    (root / "scripts" / "trivial.py").write_text(TRIVIAL_SCRIPT, encoding="utf-8")
    (root / "contracts" / "trivial.contract.yaml").write_text(
        "name: Trivial\nentry_point: trivial.py\ninputs: {}\noutputs:\n  out: {path: /opt/ml/processing/output/out}\n"
        "env_vars:\n  required: [INDEX]\n",
        encoding="utf-8",
    )
    lines = ["scenario: trivial", "contracts: [../contracts]", "scripts: [../scripts]", "steps:"]
    lines += [
        f"  step{index:02d}: {{contract: Trivial, env: {{INDEX: '{index}'}}, expect: {{out: {{files: [done.txt]}}}}}}"
        for index in range(TRIVIAL_STEPS)
    ]
    (root / "scenarios" / "trivial.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _engine(plugin_src: Path | None, env: dict[str, str]) -> tuple[Any, ...]:
    """The measured plugin's engine, imported into this process with the timed processes' environment."""
    os.environ.clear()
    os.environ.update(env)  # the warm parent and the step children inherit it, as under pytest
    sys.path.insert(0, str((plugin_src or REPO_ROOT / "src").resolve()))
    from pytest_cursus.execution.launcher import FreshInterpreterLauncher
    from pytest_cursus.execution.step_runner import StepRunner, child_environment
    from pytest_cursus.execution.warm_executor import WarmForkLauncher
    from pytest_cursus.plan.scenario_plan import load_scenario

    return FreshInterpreterLauncher, StepRunner, WarmForkLauncher, child_environment, load_scenario


def trivial(root: Path, args: argparse.Namespace, env: dict[str, str]) -> tuple[str, bool, str | None]:
    build_trivial_project(root)
    Fresh, StepRunner, Warm, child_environment, load_scenario = _engine(args.plugin_src, env)
    plan = load_scenario(root / "scenarios" / "trivial.yaml")
    steps = list(plan.steps.values())

    def engine_run(kind: str) -> tuple[list[float], float | None, set[str], float]:
        """Per-step wall of StepRunner.run for every step; the warm parent's start (first step) apart."""
        workspace = root / f"engine-{kind}"
        shutil.rmtree(workspace, ignore_errors=True)
        launcher = Warm(base_env=child_environment({}), workdir=workspace / "_warm") if kind == "warm" else Fresh()
        runner = StepRunner(workspace, launcher=launcher)
        times, first, kinds, mains = [], None, set(), []
        try:
            for index, step in enumerate(steps):
                started = time.perf_counter()
                result = runner.run(step, {})
                seconds = time.perf_counter() - started
                if not result.passed or not (Path(result.outputs["out"]) / "done.txt").is_file():
                    raise SystemExit(f"engine {kind}: step {step.name} failed: {result.failure}")
                kinds.add(result.metrics.executor)
                mains.append(result.metrics.main_seconds)
                if kind == "warm" and index == 0:
                    first = seconds
                else:
                    times.append(seconds)
        finally:
            getattr(launcher, "close", lambda: None)()
        return times, first, kinds, median(mains)

    def bare_run() -> list[float]:
        out = root / "bare"
        times = []
        for index in range(TRIVIAL_STEPS):
            target = out / f"step{index:02d}"
            target.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", TRIVIAL_BY_HAND, str(root / "scripts"), str(target), str(index)],
                env=env,
                check=True,
            )
            times.append(time.perf_counter() - started)
        return times

    base = [
        "--cursus-scenarios",
        "scenarios",
        "--cache-clear",
        "-q",
        "-p",
        "no:xdist",
        "--basetemp",
        str(root / ".basetemp"),
        "--cursus-workspace",
        str(root / "ws"),
    ]  # the step cache in its default place, which --cache-clear empties
    half = TRIVIAL_STEPS // 2
    # -k "step0 or step1" selects step00-step19: the same collection, half the steps
    half_select = ["-k", " or ".join(f"step{tens}" for tens in range(half // 10))]
    pytest_configs = {
        "warm": ([], TRIVIAL_STEPS),
        f"warm, {half} steps": (half_select, half),
        "no-preload": (["--cursus-no-preload"], TRIVIAL_STEPS),
        f"no-preload, {half} steps": (["--cursus-no-preload", *half_select], half),
        "deselected": (["-m", "not cursus_step"], 0),
    }

    def pytest_run(label: str, rep: int) -> tuple[Run, set[str]]:
        extra, expected = pytest_configs[label]
        report = root / f"trivial-{rep}.json"
        run = run_pytest(label, [*base, *extra, *(["--cursus-json", str(report)] if expected else [])], root, env)
        check_ok(run, expect_rc=0 if expected else 5)
        kinds = set()
        if expected:
            records = step_records(report)
            if len(records) != expected:
                raise SystemExit(f"pytest {label}: expected {expected} steps run, found {len(records)}")
            kinds = {record["metrics"]["executor"] for record in records}
        return run, kinds

    progress("trivial: warm-up (not timed) ...")
    engine_run("warm")
    engine_run("fresh")
    for label in pytest_configs:
        pytest_run(label, 0)
    engine_times: dict[str, list[float]] = {"warm": [], "fresh": [], "bare": []}
    parent_start: list[float] = []
    engine_kinds: dict[str, set[str]] = {"warm": set(), "fresh": set()}
    engine_mains: list[float] = []
    pytest_walls: dict[str, list[float]] = {label: [] for label in pytest_configs}
    pytest_noise: dict[str, list[float]] = {label: [] for label in pytest_configs}
    pytest_kinds: dict[str, set[str]] = {label: set() for label in pytest_configs}
    per_step: dict[str, list[float]] = {"warm": [], "no-preload": []}  # (N steps - none) / N
    marginal: dict[str, list[float]] = {"warm": [], "no-preload": []}  # (N steps - N/2 steps) / (N/2)
    loads = []
    for rep in range(1, args.repeat + 1):
        wait_until_idle(args.wait_idle, args.max_wait)
        loads.append(os.getloadavg()[0])
        engine_order = ["warm", "fresh", "bare"] if rep % 2 else ["bare", "fresh", "warm"]
        for kind in engine_order:
            if kind == "bare":
                engine_times["bare"] += bare_run()
                continue
            times, first, kinds, main_median = engine_run(kind)
            engine_times[kind] += times
            engine_kinds[kind] |= kinds
            engine_mains.append(main_median)
            if first is not None:
                parent_start.append(first)
        pytest_order = list(pytest_configs) if rep % 2 else list(reversed(pytest_configs))
        this: dict[str, float] = {}
        for label in pytest_order:
            run, kinds = pytest_run(label, rep)
            this[label] = run.seconds
            pytest_walls[label].append(run.seconds)
            pytest_noise[label].append(run.foreign_share)
            pytest_kinds[label] |= kinds
        for label in per_step:
            per_step[label].append(1000 * (this[label] - this["deselected"]) / TRIVIAL_STEPS)
            marginal[label].append(1000 * (this[label] - this[f"{label}, {half} steps"]) / (TRIVIAL_STEPS - half))
        progress(
            f"trivial rep {rep}/{args.repeat}: engine median warm "
            f"{1000 * median(engine_times['warm'][-TRIVIAL_STEPS + 1 :]):.1f} ms, "
            f"fresh {1000 * median(engine_times['fresh'][-TRIVIAL_STEPS:]):.1f} ms, bare "
            f"{1000 * median(engine_times['bare'][-TRIVIAL_STEPS:]):.1f} ms; "
            f"pytest per step warm {per_step['warm'][-1]:.1f} ms (marginal {marginal['warm'][-1]:.1f}), "
            f"no-preload {per_step['no-preload'][-1]:.1f} ms (marginal {marginal['no-preload'][-1]:.1f})  load "
            f"{loads[-1]:.1f}"
        )

    def quartiles(values: list[float]) -> str:
        q1, q2, q3 = statistics.quantiles(values, n=4)
        return f"{1000 * q2:.1f} ({1000 * q1:.1f}-{1000 * q3:.1f})"

    def each(values: list[float]) -> str:
        return f"{median(values):.1f} (" + ", ".join(f"{x:.1f}" for x in values) + ")"

    warm_engine = 1000 * median(engine_times["warm"])
    warm_pytest = median(per_step["warm"])
    engine_table = md_table(
        ["launcher", "per-step wall ms: median (quartiles)", "steps measured", "executor reported"],
        [
            [
                "warm (`WarmForkLauncher`)",
                quartiles(engine_times["warm"]),
                len(engine_times["warm"]),
                ", ".join(sorted(engine_kinds["warm"])),
            ],
            [
                "fresh (`FreshInterpreterLauncher`, as --cursus-no-preload)",
                quartiles(engine_times["fresh"]),
                len(engine_times["fresh"]),
                ", ".join(sorted(engine_kinds["fresh"])),
            ],
            [
                "bare `python -c` calling main() (no plugin; reference)",
                quartiles(engine_times["bare"]),
                len(engine_times["bare"]),
                "-",
            ],
        ],
    )
    pytest_table = md_table(
        ["pytest run", "steps run", "median wall s", "others' CPU use (median)", "executor reported"],
        [
            [
                label,
                expected,
                fmt_s(median(pytest_walls[label])),
                f"{median(pytest_noise[label]):.0%}",
                ", ".join(sorted(pytest_kinds[label])) or "-",
            ]
            for label, (_, expected) in pytest_configs.items()
        ],
    )
    overhead_table = md_table(
        [
            "launcher",
            f"(run of {TRIVIAL_STEPS} - deselected) / {TRIVIAL_STEPS}, ms: median (each repetition)",
            f"({TRIVIAL_STEPS} steps - {half} steps) / {TRIVIAL_STEPS - half}, ms: median (each repetition)",
        ],
        [[label, each(per_step[label]), each(marginal[label])] for label in per_step],
    )
    engine_ok, pytest_ok = warm_engine <= TRIVIAL_TARGET_MS, warm_pytest <= TRIVIAL_TARGET_MS
    summary = md_table(
        ["target", "measured", "measured / target", "result"],
        [
            [
                f"trivial step: the engine's per-step cost <= {TRIVIAL_TARGET_MS:g} ms (median)",
                f"**{warm_engine:.1f} ms**",
                f"{warm_engine / TRIVIAL_TARGET_MS:.2f}",
                verdict(engine_ok),
            ],
            [
                f"trivial step: a pytest run's per-step overhead <= {TRIVIAL_TARGET_MS:g} ms (median)",
                f"**{warm_pytest:.1f} ms** (marginal: {median(marginal['warm']):.1f} ms)",
                f"{warm_pytest / TRIVIAL_TARGET_MS:.2f}",
                verdict(pytest_ok),
            ],
        ],
    )
    text = (
        f"{summary}\n\nIn the engine (`StepRunner.run`, timed around each call):\n\n{engine_table}\n\n"
        f"The warm parent's start (the first warm step of each repetition, not in the medians above): "
        f"{', '.join(f'{1000 * x:.0f}' for x in parent_start)} ms. `main()` itself: {1000 * median(engine_mains):.2f} "
        "ms (median).\n\n"
        f"Whole pytest runs (cold step cache):\n\n{pytest_table}\n\nPer-step overhead of a pytest "
        f"run:\n\n{overhead_table}\n\n"
        f"Load average (1 min) at the start of each repetition: {', '.join(f'{x:.1f}' for x in loads)}.\n"
    )
    profile = None
    if args.profile:
        progress("profiling one warm pytest run of the trivial steps ...")
        profile = profile_pytest(base, root, env, root / "trivial.prof")
    return text, engine_ok and pytest_ok, profile


def preload_names_of(root: Path, env: dict[str, str]) -> list[str]:
    """What the measured plugin's warm parent preloads for the chain's scripts, in order."""
    code = (
        "import json, sys; from pathlib import Path; from pytest_cursus.execution.preload import preload_candidates; "
        "names = {}; [names.setdefault(n) for s in sys.argv[1:] for n in preload_candidates(Path(s), None, [])]; "
        "print(json.dumps(list(names)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *(str(root / "scripts" / f"{name}.py") for name in CHAIN)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main() -> int:
    args = parse_args(
        __doc__.splitlines()[0],
        default_repeat=5,
        quick_repeat=2,
        extra=[
            (("--only",), {"choices": ["chain", "trivial"], "help": "run one of the two parts"}),
            (
                ("--profile",),
                {"action": "store_true", "help": "also cProfile one warm pytest run of the trivial steps"},
            ),
        ],
    )
    env = child_env(args.plugin_src, pyc=not args.no_pyc)
    if args.only != "trivial":
        missing = [
            name
            for name in BENCH_MODULES
            if subprocess.run(
                [sys.executable, "-c", f"import {name}"], env=env, capture_output=True, check=False
            ).returncode
        ]
        if missing:
            raise SystemExit(f"bench_warm.py needs {', '.join(missing)}: {INSTALL_HINT}")
    sections = [
        "## Warm executor (bench_warm.py)",
        "",
        f"Rerun: `{INSTALL_HINT.split('  ')[0]}` once, then `python benchmarks/bench_warm.py`"
        f" ({args.repeat} repetitions here)",
        "",
        machine_report(env),
        "",
    ]
    verdicts = []
    if args.only in (None, "chain"):
        with project_dir("cursus-bench-warm-chain-", args.keep) as root:
            text, ok = chain(root, args, env)
            sections += ["### A 7-step data-science chain, cold, by hand vs the plugin", "", text]
            verdicts.append(ok)
    if args.only in (None, "trivial"):
        with project_dir("cursus-bench-warm-trivial-", args.keep) as root:
            text, ok, profile = trivial(root, args, env)
            sections += [f"### Per-step overhead of a trivial step ({TRIVIAL_STEPS} independent steps)", "", text]
            if profile:
                sections += [
                    "#### cProfile of one warm pytest run of the trivial steps (pytest process only)",
                    "",
                    profile,
                    "",
                ]
            verdicts.append(ok)
    print("\n".join(sections))
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
