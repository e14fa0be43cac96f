"""Embed the main face of many image files, in worker processes, with a progress bar.

With ``synthetic_masks`` each face is first covered by a drawn mask
(:mod:`facekey.evaluation.synthetic_masks`), its style chosen from the file name, and the
masked image goes through the pipeline again, as a masked probe would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from facekey.config import Settings
from facekey.errors import FacekeyError
from facekey.evaluation.synthetic_masks import draw_mask, style_for
from facekey.imaging import read_image_file
from facekey.pipeline import FacePipeline, main_face
from facekey.templates import Template
from facekey.workers import process_pool

log = logging.getLogger(__name__)

_CHUNK = 16


@dataclass(frozen=True)
class Embedded:
    """The main face's template of one file (and whether it is masked), or why there is none."""

    path: Path
    template: Template | None
    error: str | None = None
    masked: bool = False


class _Worker:
    """Per-process state: one pipeline, built once."""

    pipeline: FacePipeline | None = None


def embed_files(
    paths: Sequence[Path],
    settings: Settings,
    *,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    synthetic_masks: bool = False,
) -> list[Embedded]:
    """Embed every file's main face, in order. ``progress`` is called with each batch size."""
    chunks = [(list(paths[i : i + _CHUNK]), synthetic_masks) for i in range(0, len(paths), _CHUNK)]
    results: list[Embedded] = []
    for batch in _map_chunks(chunks, settings, workers):
        results.extend(batch)
        if progress:
            progress(len(batch))
    return results


_Chunk = tuple[list[Path], bool]


def _map_chunks(chunks: list[_Chunk], settings: Settings, workers: int) -> Iterator[list[Embedded]]:
    if workers <= 1:
        pipeline = FacePipeline.from_settings(settings)
        yield from ([_embed_one(pipeline, p, masked) for p in chunk] for chunk, masked in chunks)
        return
    with process_pool(workers, _init_worker, (settings.model_dump_json(),)) as pool:
        yield from pool.map(_embed_chunk, chunks)


def _init_worker(settings_json: str) -> None:
    _Worker.pipeline = FacePipeline.from_settings(Settings.model_validate_json(settings_json))


def _embed_chunk(chunk: _Chunk) -> list[Embedded]:
    pipeline = _Worker.pipeline
    if pipeline is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker pipeline not initialised")
    paths, masked = chunk
    return [_embed_one(pipeline, path, masked) for path in paths]


def _embed_one(pipeline: FacePipeline, path: Path, masked: bool = False) -> Embedded:
    try:
        image = read_image_file(path, pipeline.limits)
        face = main_face(pipeline.faces(image), image.shape)
        if masked:
            style = style_for(path.name)
            image = draw_mask(image, face.landmarks, face.detection, style)
            face = main_face(pipeline.faces(image), image.shape)
    except FacekeyError as exc:
        log.debug("%s: %s", path, exc)
        return Embedded(path, None, f"{type(exc).__name__}: {exc}")
    return Embedded(path, face.template, masked=face.quality.masked)
