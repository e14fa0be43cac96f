"""``facekey calibrate``: an engine's score → FMR table from every pair of a labelled set."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from facekey.config import Settings
from facekey.engines.registry import load_engine
from facekey.evaluation.datasets import labelled_images
from facekey.evaluation.embedding import embed_files
from facekey.evaluation.metrics import (
    build_calibration,
    eer,
    genuine_scores_all_pairs,
    impostor_scores_all_pairs,
)
from facekey.evaluation.progress import progress_bar


def run_calibration(
    *, images: Path, out: Path, settings: Settings, workers: int = 1
) -> dict[str, Any]:
    """Embed a folder-per-person set, score all pairs, write the table to ``out``."""
    started = time.perf_counter()
    paths, labels = labelled_images(images)
    with progress_bar("embedding", len(paths)) as advance:
        embedded = embed_files(paths, settings, workers=workers, progress=advance)
    kept = [(e, label) for e, label in zip(embedded, labels, strict=True) if e.template]
    vectors = np.stack([e.template.vector for e, _ in kept if e.template is not None])
    names = np.array([label for _, label in kept])
    genuine = genuine_scores_all_pairs(vectors, names)
    impostor = impostor_scores_all_pairs(vectors, names)
    info = load_engine(settings.engine, settings).info
    table = build_calibration(genuine, impostor, engine=info.id, engine_version=info.version)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table.to_json() + "\n", encoding="utf-8")
    return {
        "engine": info.id,
        "images": len(paths),
        "failed_images": len(paths) - len(kept),
        "genuine_pairs": int(genuine.size),
        "impostor_pairs": int(impostor.size),
        "eer": eer(genuine, impostor),
        "min_fmr": table.min_fmr,
        "seconds": round(time.perf_counter() - started, 1),
        "out": str(out),
    }
