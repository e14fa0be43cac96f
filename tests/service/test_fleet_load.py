"""benchmarks/fleet_load.py runs end to end on a small fleet: its own server, signed calls of
every kind, and the report's fields."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "fleet_load.py"


def test_a_small_fleet_run_writes_its_report(tmp_path: Path) -> None:
    command = [
        sys.executable, str(SCRIPT), "--devices", "40", "--seconds", "8",
        "--heartbeat-s", "4", "--checkout-rate", "2", "--enrolments", "2", "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "fleet.json").read_text())
    assert report["errors"] == 0, report["statuses"]
    assert {"heartbeat", "checkout"} <= set(report["kinds"])
    assert report["kinds"]["heartbeat"]["count"] >= 40  # every device beat at least once
    for kind in report["kinds"].values():
        assert kind["p50_ms"] <= kind["p99_ms"]
    assert report["server"]["rss_mb_start"] > 0 and report["server"]["rss_mb_end"] > 0
    assert report["requests"] == sum(k["count"] for k in report["kinds"].values())
    assert report["enrol_ms"]["count"] == 2
