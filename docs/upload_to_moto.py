"""Upload a local directory under an S3 prefix, creating the bucket: docs/s3.md, "Trying it locally".

    python docs/upload_to_moto.py http://127.0.0.1:5000 LOCAL_DIR s3://BUCKET/PREFIX/

Waits up to 30 s for the endpoint to answer first: the moto server was started in the background
a moment before. Credentials come from the environment, as for the plugin.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import boto3
from botocore.exceptions import EndpointConnectionError


def main(endpoint: str, local: Path, uri: str) -> None:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=endpoint)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.list_buckets()
            break
        except EndpointConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    if bucket not in {entry["Name"] for entry in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=bucket)
    files = sorted(path for path in local.rglob("*") if path.is_file())
    if not files:
        sys.exit(f"nothing to upload: expected files under {local}, found none")
    for path in files:
        client.upload_file(str(path), bucket, prefix + path.relative_to(local).as_posix())
    print(f"uploaded {len(files)} file(s) to s3://{bucket}/{prefix}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} ENDPOINT LOCAL_DIR s3://BUCKET/PREFIX/")
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3])
