"""Development sources for liveness: NUAA and ``pad-dev`` as one folder tree, for per-source
evaluation and leave-one-source-out (LOSO) fitting.

A *source* is one capture setting: one camera, one set of real faces and the attacks filmed
with it (NUAA; each ``pad-dev`` video pair; each ``pad-dev`` frame set). Real faces and
attacks of one source share the camera, so a cue that only tells cameras apart shows up as an
error in LOSO, not as a gain. :func:`build_sources` writes::

    ROOT/<source>/live/<frames>            ROOT/<source>/<attack type>/<frames>

Video frames are decoded with PyAV (the ``eval`` extra) and scaled so that the longer side is
at most :data:`MAX_SIDE` pixels, as a checkout terminal would send them. With ``sessions``,
every live and attack folder holds session subfolders instead (:func:`session_windows`):
:data:`SESSION_FRAMES` frames taken every :data:`SESSION_STEP`-th frame, a new window every
:data:`SESSION_STRIDE` frames, i.e. bursts of about 0.7 s from 30 fps video.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image

from facekey.errors import DatasetError, MissingExtra
from facekey.evaluation.datasets import image_files
from facekey.evaluation.liveness_sessions import nuaa_runs

log = logging.getLogger(__name__)

MAX_SIDE: Final = 640
SESSION_FRAMES: Final = 10
SESSION_STEP: Final = 2
SESSION_STRIDE: Final = 10
#: pad-dev sources: folder → attack type (see ``pad-dev/README.md``).
PAD_DEV_TYPES: Final = {
    "videos/zalo": "screen-fullframe",
    "videos/zubair": "screen-phone",
    "videos/wolf": "screen-monitor",
    "videos/tranvanluyt": "screen-closeup",
    "videos/apfol": "screen-phone",
    "videos/lestari": "screen-phone",
    "frames/coders": "screen-phone",
    "frames/sudipto": "screen-phone",
}
NUAA_TYPE: Final = "print"


@dataclass(frozen=True)
class Source:
    """One capture setting: its live frames and its attack frames (one attack type)."""

    name: str
    attack_type: str
    live: tuple[Path, ...]
    attack: tuple[Path, ...]


def read_video(path: Path, max_side: int = MAX_SIDE) -> Iterator[np.ndarray[Any, Any]]:
    """The frames of a video file (RGB uint8), scaled so the longer side is ≤ ``max_side``."""
    try:
        import av
    except ImportError as exc:
        raise MissingExtra("reading videos needs PyAV: install facekey[eval]") from exc
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = Image.fromarray(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
            scale = max_side / max(image.size)
            if scale < 1:
                size = (round(image.width * scale), round(image.height * scale))
                image = image.resize(size, Image.Resampling.BILINEAR)
            yield np.asarray(image.convert("RGB"))


def extract_video(path: Path, out: Path) -> tuple[Path, ...]:
    """Write a video's frames as JPEGs (quality 95) once; the frame paths in order."""
    if not out.is_dir():
        tmp = out.with_name(out.name + ".partial")
        tmp.mkdir(parents=True, exist_ok=True)
        for index, frame in enumerate(read_video(path)):
            Image.fromarray(frame).save(tmp / f"frame-{index:04d}.jpg", quality=95)
        tmp.rename(out)
    return tuple(image_files(out))


def pad_dev_sources(pad_dev: Path, cache: Path) -> list[Source]:
    """The eight pad-dev sources; video frames are extracted under ``cache`` once."""
    sources = []
    for folder, attack_type in PAD_DEV_TYPES.items():
        base = pad_dev / folder
        name = base.name
        if folder.startswith("videos/"):
            live, attack = (
                _video_in(base, stem, cache / name / stem) for stem in ("live", "attack")
            )
        else:
            live, attack = tuple(image_files(base / "live")), tuple(image_files(base / "attack"))
        sources.append(Source(name, attack_type, live, attack))
    return sources


def _video_in(folder: Path, stem: str, out: Path) -> tuple[Path, ...]:
    found = sorted(p for p in folder.iterdir() if p.stem == stem)
    if not found:
        raise DatasetError(f"{folder} has no {stem} video")
    return extract_video(found[0], out)


def nuaa_source(nuaa: Path) -> Source:
    """NUAA as one source (one webcam; printed photos)."""
    return Source(
        "nuaa", NUAA_TYPE, tuple(image_files(nuaa / "live")), tuple(image_files(nuaa / "attack"))
    )


def dev_sources(data: Path, cache: Path) -> list[Source]:
    """NUAA and the pad-dev sources of ``data`` (``../shared/data``)."""
    return [nuaa_source(data / "nuaa-dev"), *pad_dev_sources(data / "pad-dev", cache)]


def session_windows(
    frames: Sequence[Path],
    length: int = SESSION_FRAMES,
    step: int = SESSION_STEP,
    stride: int = SESSION_STRIDE,
) -> list[list[Path]]:
    """Windows of ``length`` frames taken every ``step``-th frame, one starting every
    ``stride`` frames (consecutive windows overlap when ``stride < length × step``)."""
    span = (length - 1) * step + 1
    return [
        list(frames[start : start + span : step])
        for start in range(0, len(frames) - span + 1, stride)
    ]


def source_sessions(source: Source, frames: Sequence[Path]) -> list[list[Path]]:
    """Sessions of one side of a source: NUAA by capture (its frames are ~15 apart), others
    by :func:`session_windows`."""
    if source.name == "nuaa":
        folder = frames[0].parents[1] if frames else Path()
        return [paths for _, paths in nuaa_runs(folder)]
    return session_windows(frames)


def build_sources(data: Path, out: Path, *, sessions: bool = False) -> dict[str, dict[str, int]]:
    """Write ROOT/<source>/{live,<attack type>} (frames or session folders); counts."""
    counts: dict[str, dict[str, int]] = {}
    for source in dev_sources(data, out / ".frames"):
        counts[source.name] = {}
        for side, frames in (("live", source.live), (source.attack_type, source.attack)):
            target = out / source.name / side
            if sessions:
                windows = source_sessions(source, frames)
                for index, window in enumerate(windows):
                    _link_all(window, target / f"s{index:03d}")
                counts[source.name][side] = len(windows)
            else:
                _link_all(frames, target)
                counts[source.name][side] = len(frames)
        log.info("source %s: %s", source.name, counts[source.name])
    return counts


def _link_all(paths: Sequence[Path], folder: Path) -> None:
    """Symbolic links to ``paths`` (no copies of the data), named in their order."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(paths):
        link = folder / f"{index:04d}-{path.name}"
        if not link.exists():
            link.symlink_to(path.resolve())
