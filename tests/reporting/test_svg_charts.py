"""The report's pictures: the DAG laid out in layers, memory and trend charts, sparklines."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from pytest_cursus.reporting.svg_charts import (
    DagNode,
    dag_svg,
    layers,
    memory_chart_svg,
    sparkline,
    trend_chart_svg,
)


def _diamond() -> dict[str, DagNode]:
    return {
        "load": DagNode("load", "passed"),
        "left": DagNode("left", "passed", ("load",)),
        "right": DagNode("right", "failed", ("load",)),
        "join": DagNode("join", "skipped", ("left", "right")),
    }


def test_steps_are_placed_in_columns_by_longest_path_from_a_root() -> None:
    assert layers(_diamond()) == [["load"], ["left", "right"], ["join"]]


def test_a_long_chain_is_laid_out_without_recursion_limits() -> None:
    chain = {f"s{i}": DagNode(f"s{i}", "passed", (f"s{i - 1}",) if i else ()) for i in range(3000)}
    assert len(layers(chain)) == 3000


def test_dag_svg_is_valid_xml_with_a_coloured_node_per_step_and_an_edge_per_dependency() -> None:
    svg = dag_svg(_diamond())
    root = ElementTree.fromstring(svg)
    nodes = root.findall(".//{http://www.w3.org/2000/svg}g")
    assert {(n.get("data-step"), n.get("data-outcome")) for n in nodes} == {
        ("load", "passed"),
        ("left", "passed"),
        ("right", "failed"),
        ("join", "skipped"),
    }
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path[@class='cursus-edge']")) == 4
    assert 'fill="#ffcdd2"' in svg, "the failed step is drawn red"


def test_step_names_are_escaped() -> None:
    svg = dag_svg({"<b>&": DagNode("<b>&", "passed")})
    ElementTree.fromstring(svg)
    assert "&lt;b&gt;&amp;" in svg


def test_memory_chart_draws_the_series_and_the_limit_line() -> None:
    svg = memory_chart_svg(
        [(0.0, 10 * 2**20), (1.0, 90 * 2**20)],
        title="train",
        wall_seconds=1.0,
        peak_bytes=90 * 2**20,
        limit_bytes=100 * 2**20,
    )
    root = ElementTree.fromstring(svg)
    assert root.find(".//{http://www.w3.org/2000/svg}polyline") is not None
    assert root.find(".//{http://www.w3.org/2000/svg}line") is not None
    assert "peak 90.0 MB" in svg


def test_memory_chart_labels_the_steps_peak_also_above_its_samples() -> None:
    """The samples can miss what the step held as main() returned, which its peak counts."""
    svg = memory_chart_svg([(0.0, 10 * 2**20), (0.02, 20 * 2**20)], title="load", wall_seconds=0.03, peak_bytes=2**27)
    assert "peak 128.0 MB" in svg and "peak 20.0 MB" not in svg
    assert ">128 MB</text>" in svg, "the scale reaches the peak"


def test_memory_chart_of_an_unsampled_step_says_so_and_still_gives_its_peak() -> None:
    svg = memory_chart_svg([], title="tiny", wall_seconds=0.01, peak_bytes=15 * 2**20)
    assert "no samples" in svg and "peak 15.0 MB" in svg


def test_trend_chart_has_a_line_per_step_and_panel() -> None:
    svg = trend_chart_svg(
        ["r1", "r2", "r3"], [("wall", {"a": [1.0, 2.0, 3.0], "b": [1.0, None, 1.5]}), ("mem", {"a": [5.0, 5.0, 6.0]})]
    )
    ElementTree.fromstring(svg)
    assert len(re.findall("<polyline", svg)) == 3


def test_sparkline_scales_between_min_and_max_and_leaves_gaps() -> None:
    assert sparkline([1, 2, 3, 4]) == "▁▃▆█"
    assert sparkline([2, None, 2]) == "▁ ▁"
    assert sparkline([]) == ""
