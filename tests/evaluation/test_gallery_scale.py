"""`facekey bench gallery` end to end on a small gallery (figures are not asserted beyond their
meaning: speed is measured by the benchmark itself, with the load average beside it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run_json
from facekey.evaluation.gallery_scale import (
    DEFAULT_DIMENSION,
    Gaussian,
    RealSet,
    exact_top1,
    make_data,
)

REQUIRED = (
    "size",
    "search_ms_p50",
    "search_ms_p99",
    "recall_at_1",
    "cold_start_s",
    "cold_start_rebuild_s",
    "rss_mb_per_worker",
    "machine",
)


def test_bench_gallery_writes_every_figure(tmp_path: Path) -> None:
    summary = run_json("bench", "gallery", "--size", "3000", "--out", str(tmp_path))
    report = json.loads((tmp_path / "gallery.json").read_text())
    for key in REQUIRED:
        assert key in report, key
    assert summary["size"] == report["size"] == 3000
    assert report["dimension"] == DEFAULT_DIMENSION
    assert report["probes"]["genuine"] == 1000 and report["probes"]["strangers"] == 1000
    assert 0.9 <= report["recall_at_1"] <= 1.0  # exact below the HNSW threshold
    assert report["cold_start_rebuild_s"] > 0 and report["cold_start_s"] > 0
    assert report["shared_index_mb_per_machine"] > 0
    assert report["bytes_per_template"] >= 4 * DEFAULT_DIMENSION  # float32 vectors, at least
    assert report["machine"]["versions"]["numpy"]
    assert not (tmp_path / "work").exists()  # cleaned up unless --keep


def test_make_data_puts_real_mates_first() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((60, 8)).astype(np.float32)
    labels = [f"p{i // 3}" for i in range(45)] + [f"single{i}" for i in range(15)]
    real = RealSet(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), labels)
    data = make_data(500, 8, real, strangers=10)
    assert data.gallery.shape == (500, 8) and data.genuine == 15
    assert np.allclose(data.gallery[:15], real.vectors[0:45:3])
    assert np.allclose(data.probes[:15], real.vectors[1:45:3])
    assert len(data.probes) == 25
    assert np.allclose(np.linalg.norm(data.gallery, axis=1), 1.0, atol=1e-5)
    assert list(exact_top1(data.gallery, data.gallery[:5])) == [0, 1, 2, 3, 4]


def test_the_shipped_fits_and_only_them() -> None:
    for dimension in (128, 256):
        fitted = Gaussian.shipped(dimension)
        assert fitted.covariance.shape == (dimension, dimension)
    with pytest.raises(ValueError, match="no fitted embedding model"):
        Gaussian.shipped(100)
