"""Assertions on the evaluate step's outputs, as DataFrames and files."""

import json


def test_every_test_row_gets_a_probability(evaluation):
    predictions = evaluation.outputs["eval_output"].read()

    assert predictions["id"].is_unique
    assert predictions["prob_class_1"].between(0, 1).all()
    assert (predictions["prob_class_0"] + predictions["prob_class_1"]).round(6).eq(1).all()


def test_metrics_are_written_for_the_test_split(evaluation):
    metrics = json.loads((evaluation.outputs["metrics_output"] / "metrics.json").read_text())

    assert 0 <= metrics["auc_roc"] <= 1
    assert evaluation.upstream["train"].passed
