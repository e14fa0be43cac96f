"""``facekey calibrate``: an engine's score → FMR tables from every pair of a labelled set.

The unmasked table comes from all cross pairs of the images. With ``synthetic_masks`` every
image is embedded a second time under a drawn mask, and two more tables come from the same
people: a masked face against the unmasked ones (``mask/no-mask``) and masked faces among
themselves (``mask/mask``). Tables are written next to ``out`` (the masked ones with the
condition in their names) and, with ``install``, pinned into the data directory where the
server reads them before the packaged ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facekey.calibration import (
    UNMASKED,
    Calibrations,
    CalibrationTable,
    Condition,
    calibration_name,
)
from facekey.config import Settings
from facekey.engines.base import EngineInfo
from facekey.engines.registry import load_engine
from facekey.evaluation.datasets import labelled_images
from facekey.evaluation.embedding import Embedded, embed_files
from facekey.evaluation.metrics import (
    build_calibration,
    eer,
    genuine_scores_all_pairs,
    impostor_scores_all_pairs,
)
from facekey.evaluation.progress import progress_bar
from facekey.integrity import sha256_file

_Vectors = npt.NDArray[np.float32]
_BLOCK = 1024


def run_calibration(
    *,
    images: Path,
    out: Path,
    settings: Settings,
    workers: int = 1,
    synthetic_masks: bool = False,
    install: bool = False,
) -> dict[str, Any]:
    """Embed a folder-per-person set, score all pairs, write the tables; return a summary."""
    started = time.perf_counter()
    info = load_engine(settings.engine, settings).info
    paths, labels = labelled_images(images)
    plain = _embed(paths, labels, settings, workers, masked=False)
    scores = {UNMASKED: _all_pairs(plain, plain)}
    if synthetic_masks:
        masked = _embed(paths, labels, settings, workers, masked=True)
        scores["mask/no-mask"] = _all_pairs(masked, plain)
        scores["mask/mask"] = _all_pairs(masked, masked)
    tables = {c: _table(info, c, genuine, impostor) for c, (genuine, impostor) in scores.items()}
    written = [_write(table, out) for table in tables.values()]
    if install:
        calibrations = Calibrations(settings.data_dir / "calibrations")
        for path in written:
            calibrations.install(path, sha256=sha256_file(path))
    return {
        "engine": info.id,
        "engine_version": info.version,
        "images": len(paths),
        "failed_images": len(paths) - len(plain),
        "tables": {
            c: _summary(t, *scores[c]) | {"out": str(p)}
            for (c, t), p in zip(tables.items(), written, strict=True)
        },
        "installed": install,
        "seconds": round(time.perf_counter() - started, 1),
    }


@dataclass(frozen=True)
class _Embeddings:
    """Unit vectors of the images whose face was found, their person and their image index."""

    vectors: _Vectors
    labels: npt.NDArray[np.str_]
    images: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.vectors)


def _embed(
    paths: list[Path], labels: list[str], settings: Settings, workers: int, *, masked: bool
) -> _Embeddings:
    title = "embedding under synthetic masks" if masked else "embedding"
    with progress_bar(title, len(paths)) as advance:
        embedded = embed_files(
            paths, settings, workers=workers, progress=advance, synthetic_masks=masked
        )
    found = [i for i, e in enumerate(embedded) if e.template is not None]
    return _Embeddings(
        np.stack([_vector(embedded[i]) for i in found]),
        np.array([labels[i] for i in found]),
        np.array(found, dtype=np.int64),
    )


def _vector(embedded: Embedded) -> _Vectors:
    assert embedded.template is not None  # filtered by the caller
    return embedded.template.vector


def _all_pairs(first: _Embeddings, second: _Embeddings) -> tuple[_Vectors, _Vectors]:
    """(genuine, impostor) scores of every pair: within one set each pair once; across two
    sets every (first, second) pair, except an image with its own other version (the same
    photo masked and unmasked is not two captures of a face)."""
    if first is second:
        return (
            genuine_scores_all_pairs(first.vectors, first.labels),
            impostor_scores_all_pairs(first.vectors, first.labels),
        )
    genuine: list[_Vectors] = []
    impostor: list[_Vectors] = []
    for start in range(0, len(first), _BLOCK):
        rows = slice(start, start + _BLOCK)
        block = first.vectors[rows] @ second.vectors.T
        same = first.labels[rows, None] == second.labels[None, :]
        own = first.images[rows, None] == second.images[None, :]
        genuine.append(block[same & ~own])
        impostor.append(block[~same])
    return np.concatenate(genuine), np.concatenate(impostor)


def _table(
    info: EngineInfo, condition: Condition, genuine: _Vectors, impostor: _Vectors
) -> CalibrationTable:
    return build_calibration(
        genuine, impostor, engine=info.id, engine_version=info.version, condition=condition
    )


def _write(table: CalibrationTable, out: Path) -> Path:
    name = calibration_name(table.engine, table.engine_version, table.condition)
    suffix = name.removeprefix(f"{table.engine}-{table.engine_version}")
    path = out if table.condition == UNMASKED else out.with_name(out.stem + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table.to_json() + "\n", encoding="utf-8")
    return path


def _summary(table: CalibrationTable, genuine: _Vectors, impostor: _Vectors) -> dict[str, Any]:
    return {
        "genuine_pairs": int(genuine.size),
        "impostor_pairs": int(impostor.size),
        "eer": eer(genuine, impostor),
        "min_fmr": table.min_fmr,
    }
