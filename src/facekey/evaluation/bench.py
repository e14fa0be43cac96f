"""``facekey bench``: per-stage latency and throughput of the pipeline, with a yardstick.

Everything is measured in one run on the same images, for each engine: facekey's stages in
this process, the embedding of one face alone, and the throughput with 1 and 2 worker
processes; then the face_recognition library's pipeline (HOG upsample 1, 5-point landmarks,
dlib's ResNet) in a worker process of its own, the yardstick for dlib-resnet-v1 (the same
network).
"""

from __future__ import annotations

import io
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facekey.config import Settings
from facekey.evaluation.bench_report import render_benchmarks_page
from facekey.evaluation.datasets import image_files
from facekey.evaluation.machine import machine_info
from facekey.imaging import decode_image
from facekey.pipeline import STAGES, FacePipeline, StageTimer
from facekey.workers import process_pool

WARMUP = 5
#: dlib-resnet-v1 is the same network as face_recognition's: the yardstick compares it.
YARDSTICK_ENGINE = "dlib-resnet-v1"
ENGINES = (YARDSTICK_ENGINE, "face-reid-0095")


class _Worker:
    """Per-process state of a benchmark worker."""

    pipeline: FacePipeline | None = None


def run_bench(
    *,
    images: Path,
    out_dir: Path,
    limit: int = 200,
    docs: Path | None = None,
    yardstick: bool = True,
    settings: Settings | None = None,
    engines: Sequence[str] = ENGINES,
) -> dict[str, Any]:
    """Run the benchmark, write ``bench.json`` (and the docs page); return the results."""
    settings = settings or Settings()
    paths = sample_images(images, limit)
    payloads = [p.read_bytes() for p in paths]
    result: dict[str, Any] = {"images": len(paths), "image_folder": str(images)}
    result["engines"] = {
        name: _engine(payloads, settings.model_copy(update={"engine": name})) for name in engines
    }
    if yardstick and YARDSTICK_ENGINE in engines:
        ours = result["engines"][YARDSTICK_ENGINE]["end_to_end_ms_p50"]
        result |= _yardstick(payloads, ours)
    result["machine"] = machine_info()
    result["settings"] = {
        "detectors": list(settings.detectors),
        "dlib_backend": settings.dlib_backend,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if docs is not None:
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(render_benchmarks_page(result), encoding="utf-8")
    return result


def sample_images(folder: Path, limit: int) -> list[Path]:
    """Up to ``limit`` images spread evenly over the sorted listing (not the first few people)."""
    paths = image_files(folder)
    if len(paths) <= limit:
        return paths
    step = len(paths) / limit
    return [paths[int(i * step)] for i in range(limit)]


def _p50(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


def _engine(payloads: list[bytes], settings: Settings) -> dict[str, Any]:
    """One engine's latency per stage, per embedded face, and throughput."""
    result = _stage_latency(payloads, settings)
    result["embed_ms_per_face"] = _embedding_alone(payloads, settings)
    result["images_per_s"] = {str(n): _throughput(payloads, settings, n) for n in (1, 2)}
    result["scaling_2_vs_1"] = round(result["images_per_s"]["2"] / result["images_per_s"]["1"], 2)
    return result


def _embedding_alone(payloads: list[bytes], settings: Settings) -> float:
    """Median milliseconds to embed one aligned chip, a chip per call."""
    pipeline = FacePipeline.from_settings(settings)
    chips = []
    for data in payloads:
        image = decode_image(data, pipeline.limits)
        for detection in pipeline.detector.detect(image)[:1]:
            points = pipeline.landmarker.locate(image, detection)
            chips.append(pipeline.engine.align(image, points, detection))
    for chip in chips[:WARMUP]:
        pipeline.engine.embed(chip[np.newaxis])
    timings = []
    for chip in chips:
        start = time.perf_counter()
        pipeline.engine.embed(chip[np.newaxis])
        timings.append((time.perf_counter() - start) * 1000.0)
    return _p50(timings)


def _stage_latency(payloads: list[bytes], settings: Settings) -> dict[str, Any]:
    """Median per-stage and end-to-end milliseconds on one core, in this process."""
    pipeline = FacePipeline.from_settings(settings)
    for data in payloads[:WARMUP]:
        pipeline.faces_in_bytes(data)
    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    totals, misses = [], 0
    for data in payloads:
        timer = StageTimer()
        start = time.perf_counter()
        faces = pipeline.faces_in_bytes(data, timer)
        totals.append((time.perf_counter() - start) * 1000.0)
        misses += not faces
        for stage in STAGES:
            per_stage[stage].append(timer.ms[stage])
    return {
        "stages_ms_p50": {stage: _p50(per_stage[stage]) for stage in STAGES},
        "end_to_end_ms_p50": _p50(totals),
        "end_to_end_ms_p90": round(statistics.quantiles(totals, n=10)[-1], 3),
        "no_face_images": misses,
    }


def _throughput(payloads: list[bytes], settings: Settings, workers: int) -> float:
    """Images per second through ``workers`` processes (pool start-up and warm-up excluded)."""
    with process_pool(workers, _init_worker, (settings.model_dump_json(),)) as pool:
        list(pool.map(_count_faces, payloads[: WARMUP * workers], chunksize=1))
        start = time.perf_counter()
        list(pool.map(_count_faces, payloads, chunksize=4))
        elapsed = time.perf_counter() - start
    return round(len(payloads) / elapsed, 2)


def _init_worker(settings_json: str) -> None:
    _Worker.pipeline = FacePipeline.from_settings(Settings.model_validate_json(settings_json))


def _count_faces(data: bytes) -> int:
    pipeline = _Worker.pipeline
    if pipeline is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker pipeline not initialised")
    return len(pipeline.faces_in_bytes(data))


def _yardstick(payloads: list[bytes], ours_ms: float) -> dict[str, Any]:
    """face_recognition's median ms per image, measured in a process of its own."""
    with process_pool(1, _noop) as pool:
        timings = pool.submit(_time_face_recognition, payloads).result()
    theirs = _p50(timings)
    return {
        "face_recognition_ms_p50": theirs,
        "speedup_vs_face_recognition": round(theirs / ours_ms, 2),
    }


def _noop() -> None:
    return None


def _time_face_recognition(payloads: list[bytes]) -> list[float]:
    """face_recognition's documented pipeline: load, locate (HOG), encode."""
    import face_recognition  # the yardstick: installed by `make` without its dependencies

    for data in payloads[:WARMUP]:
        _face_recognition_once(face_recognition, data)
    timings = []
    for data in payloads:
        start = time.perf_counter()
        _face_recognition_once(face_recognition, data)
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def _face_recognition_once(library: Any, data: bytes) -> int:
    image = library.load_image_file(io.BytesIO(data))
    locations = library.face_locations(image)
    return len(library.face_encodings(image, locations))
