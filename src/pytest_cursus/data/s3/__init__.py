"""Reading ``s3:`` data sources and production execution outputs from S3, one module per job.

From the bottom up (a module imports only the ones above it in this list):

* ``errors``: :class:`S3Error` and :class:`S3NotFound`, worded for the user.
* ``uri``: the ``s3://bucket/key`` model and the limits of what to take.
* ``client``: botocore's S3 client (created on first use), retries of dropped connections and
  the translation of botocore's errors into messages that name the URI.
* ``listing``: one paginated LIST, and the plan of which files to take under the limits.
* ``download_cache``: objects (and samples) kept by bucket, key and ETag, capped by size.
* ``progress``: the status line of a transfer that lasts.
* ``transfer``: whole and ranged GETs by a thread pool, into the cache or the target.
* ``sampling``: the first rows of table files, read by ranged GETs.
* ``access``: :class:`S3Access` and :class:`S3Settings`, what the rest of the package uses.

Nothing here imports botocore at import time: the option table imports this package at every
pytest start, and a session that reads no S3 data never pays for botocore.
"""
