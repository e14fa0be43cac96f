"""Frames for the device: a camera (an index such as ``0`` or a device path such as
``/dev/video0``), a video file, or a folder of image files (for tests and demos).

A source yields :class:`Frame` objects, RGB uint8 arrays in memory with their capture time;
nothing is written anywhere. Cameras and video files are read with OpenCV's ``VideoCapture``
(the ``edge`` extra); folders need nothing more than facekey itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from facekey.errors import InvalidRequest, MissingExtra
from facekey.imaging import read_image_file
from facekey.vision.types import ImageArray

IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".webp"})
#: A folder of frames is played at this rate (its files carry no capture times).
FOLDER_FPS: Final = 5.0
_CAMERA_PATH = re.compile(r"/dev/video[0-9]+")


@dataclass(frozen=True, eq=False)
class Frame:
    """One RGB frame and when it was captured (milliseconds, increasing)."""

    image: ImageArray
    timestamp_ms: int


class FrameSource(Protocol):
    """Anything that yields frames in capture order, for as long as it has them."""

    def frames(self) -> Iterator[Frame]:
        """The frames, in capture order."""
        ...


class FolderSource:
    """The image files of a folder in name order, as if captured at :data:`FOLDER_FPS`."""

    def __init__(self, folder: Path, fps: float = FOLDER_FPS) -> None:
        self._paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._paths:
            raise InvalidRequest(f"no image files in {folder}")
        self._step_ms = 1000.0 / fps

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self._paths):
            yield Frame(read_image_file(path), round(index * self._step_ms))


class CaptureSource:
    """A camera or a video file through OpenCV; frames are converted to RGB."""

    def __init__(self, target: int | str) -> None:
        self._target = target

    def frames(self) -> Iterator[Frame]:
        cv2 = _cv2()
        capture = cv2.VideoCapture(self._target)
        if not capture.isOpened():
            raise InvalidRequest(f"cannot open the camera or video {self._target!r}")
        started = time.monotonic()
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                yield Frame(_rgb(cv2, bgr), self._timestamp(cv2, capture, started))
        finally:
            capture.release()

    def _timestamp(self, cv2: Any, capture: Any, started: float) -> int:
        """A video file's own position; a camera's wall clock since opening."""
        if isinstance(self._target, str) and not _CAMERA_PATH.fullmatch(self._target):
            return round(float(capture.get(cv2.CAP_PROP_POS_MSEC)))
        return round((time.monotonic() - started) * 1000)


def _rgb(cv2: Any, bgr: Any) -> ImageArray:
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise MissingExtra(
            "cameras and video files need OpenCV: pip install 'facekey[edge]'"
        ) from exc
    return cv2


def open_source(spec: str) -> FrameSource:
    """A frame source from its command-line form: a camera index, a ``/dev/video*`` path, a
    folder of images, or a video file."""
    if spec.isdigit():
        return CaptureSource(int(spec))
    if _CAMERA_PATH.fullmatch(spec):
        return CaptureSource(spec)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        return CaptureSource(str(path))
    raise InvalidRequest(f"{spec!r} is not a camera index, a camera device, a folder or a video")


def camera_status(spec: str | None) -> str:
    """``ok`` when the camera opens and gives a frame, ``missing`` when it does not open,
    ``error`` when it opens but gives nothing, ``none`` when the device has no camera."""
    if spec is None:
        return "none"
    try:
        first = take(open_source(spec).frames(), 1)
    except InvalidRequest:
        return "missing"
    except MissingExtra:
        return "error"
    return "ok" if first else "error"


def take(frames: Iterator[Frame], count: int) -> list[Frame]:
    """The next ``count`` frames of a stream (fewer if it ends)."""
    taken: list[Frame] = []
    for frame in frames:
        taken.append(frame)
        if len(taken) >= count:
            break
    return taken
