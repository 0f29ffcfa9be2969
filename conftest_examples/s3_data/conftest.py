# Use this when a scenario reads s3:// data and you want to test it end to end without AWS: the plugin's
# cursus_s3_endpoint fixture is a local S3 server.
"""A bucket on the local S3 server (moto, started by the plugin's ``cursus_s3_endpoint``
fixture) holding the raw export the scenario's ``s3:`` variant points at. Needs
``pip install 'moto[server]' boto3``; without moto the tests using it are skipped with a message
saying so.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator

import pytest

BUCKET = "cursus-example"
PREFIX = "raw/transactions/"  # the s3: URI of transactions_on_s3.yaml


@pytest.fixture
def transactions_in_s3(cursus_s3_endpoint: str) -> Iterator[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=cursus_s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    rows = random.Random(1)
    for shard in range(2):
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["id", "amount", "country", "created", "note", "is_online", "label"])
        for index in range(150):
            writer.writerow(
                [
                    shard * 150 + index,
                    round(rows.uniform(1, 5000), 2),
                    rows.choice(["US", "GB"]),
                    "2024-05-01",
                    "",
                    rows.choice([True, False]),
                    int(rows.random() < 0.2),
                ]
            )
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}part-{shard:05d}.csv", Body=text.getvalue().encode())
    yield f"s3://{BUCKET}/{PREFIX}"
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)
