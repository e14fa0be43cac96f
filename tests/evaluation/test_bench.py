"""`facekey bench` end to end on a few fixture images (figures are not asserted: speed is
measured by the benchmark itself, on a quiet machine)."""

from __future__ import annotations

import json
from pathlib import Path

from facekey.config import Settings
from facekey.evaluation.bench import run_bench, sample_images


def test_bench_writes_every_figure(lfw: Path, tmp_path: Path, settings: Settings) -> None:
    docs = tmp_path / "benchmarks.md"
    result = run_bench(images=lfw, out_dir=tmp_path / "out", limit=4, docs=docs, settings=settings)
    saved = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert saved["images"] == 4
    assert set(saved["stages_ms_p50"]) == {"decode", "detect", "landmarks", "align", "embed"}
    assert set(saved["images_per_s"]) == {"1", "2"}
    assert saved["face_recognition_ms_p50"] > 0
    assert saved["speedup_vs_face_recognition"] > 0
    assert saved["machine"]["versions"]["facekey"]
    assert result["end_to_end_ms_p50"] == saved["end_to_end_ms_p50"]
    assert "face_recognition" in docs.read_text()


def test_sample_spreads_over_the_folder(lfw: Path) -> None:
    picked = sample_images(lfw, 3)
    assert len(picked) == 3
    assert len({p.stem.rsplit("_", 1)[0] for p in picked}) == 3
