"""The scenario on its S3 data, run from a test function with the plugin's fixtures."""

from pathlib import Path

SCENARIO = Path(__file__).with_name("transactions_on_s3.yaml")


def test_preprocess_reads_every_shard_from_s3(cursus_run, cursus_s3_endpoint, transactions_in_s3):
    result = cursus_run(SCENARIO, "preprocess", source="s3", s3_endpoint=cursus_s3_endpoint)

    assert result.passed, result
    splits = result.outputs["processed_data"].read()
    assert len(splits) == 300  # both shards, every row labelled
    assert set(splits["country"]) == {"US", "GB"}
