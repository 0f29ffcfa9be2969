"""Feature definitions shared by the churn steps (and by the online scoring service)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Upper bounds (months, inclusive) of the tenure buckets, in report order.
TENURE_BUCKETS = {"0-6m": 6, "7-12m": 12, "13-24m": 24, "25-48m": 48, "49m+": 10_000}
TENURE_BUCKET_ORDER = list(TENURE_BUCKETS)

FEATURE_COLUMNS = [
    "tenure_months",
    "tenure_bucket",
    "contract",
    "payment_method",
    "monthly_charges",
    "total_charges",
    "charges_ratio",
    "tickets_per_year",
    "account_age_days",
    "is_paperless",
]


def tenure_bucket(tenure_months: pd.Series) -> pd.Series:
    edges = [-1, *TENURE_BUCKETS.values()]
    buckets = pd.cut(tenure_months, bins=edges, labels=TENURE_BUCKET_ORDER)
    return buckets.astype("str")


def encode_target(values: pd.Series, positive_label: str) -> pd.Series:
    """1 for the positive label, 0 otherwise; works for "yes"/"no" strings and for 0/1 ints."""
    return (values.astype("str").str.strip().str.lower() == positive_label.lower()).astype("int64")


def add_customer_features(df: pd.DataFrame, reference_date: pd.Timestamp) -> pd.DataFrame:
    """Derived features; every input column is kept as it is except the ones it repairs."""
    out = df.copy()
    tenure = pd.to_numeric(out["tenure_months"], errors="coerce").fillna(0).clip(lower=0)
    monthly = pd.to_numeric(out["monthly_charges"], errors="coerce")

    # total_charges is missing for brand-new accounts in the billing export: rebuild it.
    total = pd.to_numeric(out["total_charges"], errors="coerce")
    out["total_charges"] = total.fillna(monthly * tenure).round(2)

    out["tenure_bucket"] = tenure_bucket(tenure)
    expected_total = (monthly * tenure.clip(lower=1)).replace(0, np.nan)
    out["charges_ratio"] = (out["total_charges"] / expected_total).fillna(1.0).round(4)
    out["tickets_per_year"] = (out["support_tickets"] / (tenure.clip(lower=1) / 12.0)).round(3)

    signup = pd.to_datetime(out["signup_date"], errors="coerce")
    out["account_age_days"] = (reference_date - signup).dt.days.astype("float64")

    out["is_paperless"] = out["paperless_billing"].astype("str").str.lower().isin(["true", "1"]).astype("int64")
    return out
