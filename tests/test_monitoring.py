"""Each step's whole process tree is measured: CPU, memory over time, bytes read and written,
and every output's files, bytes and rows."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pytest_cursus.execution.launcher import DirectChild
from pytest_cursus.execution.step_runner import list_files
from pytest_cursus.execution.supervisor import MemorySeries, ProcessSupervisor


def _launch(code: str) -> DirectChild:
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], start_new_session=True)
    process.returncode = 0  # reaped by the supervisor with wait4, as the launcher arranges
    return DirectChild(process.pid, time.monotonic())


def test_cpu_time_counts_busy_children_of_the_step() -> None:
    pid = _launch(
        """
        import multiprocessing, time
        def spin(_):
            end = time.process_time() + 0.6
            while time.process_time() < end:
                pass
        if __name__ == "__main__":
            with multiprocessing.get_context("fork").Pool(2) as pool:
                pool.map(spin, range(2))
        """
    )
    outcome = ProcessSupervisor().supervise(pid, timeout=60, max_memory_bytes=None)
    assert outcome.exit_status == 0
    assert outcome.cpu_seconds >= 1.1, "both workers' CPU time is the step's"


def test_bytes_written_and_read_by_a_child_that_already_exited_still_count(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    pid = _launch(
        f"""
        import subprocess, sys, time
        writer = "open({str(target)!r}, 'wb').write(b'x' * 30_000_000); open({str(target)!r}, 'rb').read()"
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3); " + writer], check=True)
        time.sleep(0.3)  # the child is gone for several samples before the step ends
        """
    )
    outcome = ProcessSupervisor().supervise(pid, timeout=60, max_memory_bytes=None)
    assert outcome.write_bytes >= 30_000_000
    assert outcome.read_bytes >= 30_000_000


def test_memory_series_follows_an_allocation_and_records_the_peak() -> None:
    pid = _launch(
        """
        import time
        time.sleep(0.3)
        blob = bytearray(200 * 2**20)
        for i in range(0, len(blob), 4096):
            blob[i] = 1
        time.sleep(0.5)
        """
    )
    outcome = ProcessSupervisor().supervise(pid, timeout=60, max_memory_bytes=None)
    assert outcome.peak_rss_bytes >= 200 * 2**20
    early = [rss for t, rss in outcome.memory_series if t < 0.2]
    peak_time, peak = max(outcome.memory_series, key=lambda point: point[1])
    assert early and max(early) < 100 * 2**20, "before the allocation"
    assert peak >= 200 * 2**20 and peak_time > 0.3, "the series shows the allocation when it happened"


def test_peak_memory_is_the_step_s_own_not_the_forking_parent_s() -> None:
    # Linux carries a forking parent's high-water RSS into the child's ru_maxrss: the pytest
    # process here is far bigger than a python -c that does nothing.
    pid = _launch("import time; time.sleep(0.2)")
    outcome = ProcessSupervisor().supervise(pid, timeout=60, max_memory_bytes=None)
    assert 0 < outcome.peak_rss_bytes < 60 * 2**20


def test_memory_series_of_a_long_run_is_bounded_and_keeps_its_peak() -> None:
    series = MemorySeries(limit=50, width=0.05)
    for index in range(10_000):  # 500 s of samples at 50 ms
        series.add(index * 0.05, 5_000_000 if index == 7_777 else 1_000_000)
    points = series.points()
    assert len(points) <= 50
    assert max(rss for _, rss in points) == 5_000_000
    assert [t for t, _ in points] == sorted(t for t, _ in points)


def test_output_listing_counts_rows_of_csv_gzip_and_parquet_and_not_of_other_files(tmp_path: Path) -> None:
    import gzip

    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "part.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    with gzip.open(tmp_path / "train" / "part-00001.csv.gz", "wt") as handle:
        handle.write("a,b\n7,8\n")
    pq.write_table(pa.table({"a": list(range(1234))}), tmp_path / "table.parquet")
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04N.")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    files = {f.path: f for f in list_files(tmp_path)}
    assert files["train/part.csv"].rows == 3
    assert files["train/part-00001.csv.gz"].rows == 1
    assert files["table.parquet"].rows == 1234
    assert files["model.pkl"].rows is None and files["model.pkl"].bytes == 4
    assert files["broken.parquet"].rows is None, "an unreadable table is listed, not fatal"


def test_what_the_step_writes_just_before_exiting_is_counted() -> None:
    # no sample can fall between the write and the exit: the final sweep reads the zombie
    pid = _launch("import os; os.write(os.open(os.devnull, os.O_WRONLY), b'x' * 7_000_000)")
    outcome = ProcessSupervisor().supervise(pid, timeout=60, max_memory_bytes=None)
    assert outcome.write_bytes >= 7_000_000
