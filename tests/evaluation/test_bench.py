"""`facekey bench` end to end on a few fixture images (figures are not asserted: speed is
measured by the benchmark itself, on a quiet machine)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import run_json
from facekey.config import Settings
from facekey.evaluation.bench import run_bench, sample_images


def test_bench_writes_every_figure(lfw: Path, tmp_path: Path, settings: Settings) -> None:
    docs = tmp_path / "benchmarks.md"
    result = run_bench(images=lfw, out_dir=tmp_path / "out", limit=4, docs=docs, settings=settings)
    saved = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert saved["images"] == 4
    assert set(saved["engines"]) == {"dlib-resnet-v1", "face-reid-0095"}
    for engine in saved["engines"].values():
        assert set(engine["stages_ms_p50"]) == {
            "decode",
            "detect",
            "landmarks",
            "align",
            "embed",
            "quality",
        }
        assert set(engine["images_per_s"]) == {"1", "2"}
        assert engine["embed_ms_per_face"] > 0
    assert saved["face_recognition_ms_p50"] > 0
    assert saved["speedup_vs_face_recognition"] > 0
    assert saved["machine"]["versions"]["facekey"]
    assert result["engines"] == saved["engines"]
    page = docs.read_text()
    assert "face_recognition" in page and "face-reid-0095" in page


def test_sample_spreads_over_the_folder(lfw: Path) -> None:
    picked = sample_images(lfw, 3)
    assert len(picked) == 3
    assert len({p.stem.rsplit("_", 1)[0] for p in picked}) == 3


def test_bench_command_prints_each_engines_summary(lfw: Path, tmp_path: Path) -> None:
    summary = run_json(
        "bench",
        *("--images", str(lfw), "--out", str(tmp_path / "out"), "--limit", "2"),
        *("--docs", str(tmp_path / "benchmarks.md"), "--no-yardstick"),
    )
    assert summary["images"] == 2
    engines = summary["engines"]
    assert isinstance(engines, dict)
    assert set(engines) == {"dlib-resnet-v1", "face-reid-0095"}
    for engine in engines.values():
        assert engine["end_to_end_ms_p50"] > 0
        assert set(engine["images_per_s"]) == {"1", "2"}
