"""Reading and writing the tabular files the churn steps exchange."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

READABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".tsv.gz")


def list_data_files(root: str | Path) -> list[Path]:
    """Every data file under ``root`` (or ``root`` itself), sorted, skipping markers like _SUCCESS."""
    root = Path(root)
    if root.is_file():
        return [root]
    files = sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and not path.name.startswith((".", "_")) and path.name.endswith(READABLE_SUFFIXES)
    )
    if not files:
        raise FileNotFoundError(f"No parquet/csv/tsv files under {root}")
    return files


def read_table(root: str | Path) -> pd.DataFrame:
    frames = []
    for path in list_data_files(root):
        if path.name.endswith(".parquet"):
            frames.append(pd.read_parquet(path))
        else:
            frames.append(pd.read_csv(path, sep="\t" if ".tsv" in path.name else ","))
    return pd.concat(frames, ignore_index=True)


def write_table(df: pd.DataFrame, directory: str | Path, stem: str, fmt: str) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fmt = fmt.lower()
    if fmt == "parquet":
        target = directory / f"{stem}.parquet"
        df.to_parquet(target, index=False)
    elif fmt == "tsv":
        target = directory / f"{stem}.tsv"
        df.to_csv(target, sep="\t", index=False)
    elif fmt == "csv":
        target = directory / f"{stem}.csv"
        df.to_csv(target, index=False)
    else:
        raise ValueError(f"OUTPUT_FORMAT must be parquet, csv or tsv, got {fmt!r}")
    return target
