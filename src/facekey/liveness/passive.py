"""Passive (single-frame) liveness scorers: a narrow protocol and the MiniFASNet pair.

A passive scorer answers the probability that one face in one RGB frame is a live person. It is
one piece of evidence: no liveness decision rests on a single frame (see
:mod:`facekey.liveness.fusion`).

MiniFASNet (Minivision, Apache-2.0) is two 80×80 CNNs that look at wide crops around the face
box (2.7 and 4.0 times the box), where paper edges, fingers and screen bezels show. Each crop is
the box scaled about its centre, the scale shrunk when the scaled box would not fit in the
image, and the box shifted back inside the image where it crosses an edge; it is resized to
80×80 and fed as BGR 0..255, channels first. After a softmax, index 1 is "live"; the pair's
score is the sigmoid of the two models' mean live log-odds (version 2; version 1 averaged the
probabilities). Averaging log-odds lets a model that is sure an attack is an attack outvote one
that is merely fairly sure it is live: on the development sources, leave-one-source-out, it
rejects fewer live faces at the same attack acceptance (``docs/liveness.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import as_file, files
from types import MappingProxyType
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from facekey.engines.onnx_runtime import single_thread_session
from facekey.errors import ModelNotFound
from facekey.integrity import verify_sha256
from facekey.vision.types import Box, FloatArray, ImageArray

INPUT_SIZE: Final = 80
LIVE_INDEX: Final = 1
#: Log-odds are clipped here: beyond it one frame's certainty says nothing more.
LOG_ODDS_CLIP: Final = 8.0


@runtime_checkable
class PassiveScorer(Protocol):
    """Scores one face in one frame: the probability (0..1) that it is a live person."""

    name: str
    version: str

    def score(self, image: ImageArray, box: Box) -> float:
        """Live probability of the face in ``box`` of the RGB uint8 ``image``."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """One packaged MiniFASNet model: file name, crop scale and pinned sha256."""

    file: str
    scale: float
    sha256: str


MINIFASNET_MODELS: Final[tuple[ModelSpec, ...]] = (
    ModelSpec(
        "2.7_80x80_MiniFASNetV2.onnx",
        2.7,
        "c7439a70953d627c7882366481ee06602c17fc2ccc90e51598fd64d954ab2268",
    ),
    ModelSpec(
        "4_0_0_80x80_MiniFASNetV1SE.onnx",
        4.0,
        "32d6d77fd2bb91f016115b7597a38d27b0eecfc177ce533714ef617b7bc6dff3",
    ),
)
PINNED_SHA256: Final[Mapping[str, str]] = MappingProxyType(
    {spec.file: spec.sha256 for spec in MINIFASNET_MODELS}
)


def crop_box(box: Box, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The crop ``(left, top, right, bottom)``, inclusive pixel bounds, of ``box`` × ``scale``.

    The scale shrinks until the scaled box fits in the ``width`` × ``height`` image, and the box
    is shifted back inside the image where it crosses an edge (Silent-Face's recipe).
    """
    box_w, box_h = max(box.width, 1.0), max(box.height, 1.0)
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = box.center
    left, right = _shift_inside(cx - new_w / 2, cx + new_w / 2, width - 1)
    top, bottom = _shift_inside(cy - new_h / 2, cy + new_h / 2, height - 1)
    return int(left), int(top), int(right), int(bottom)


def _shift_inside(low: float, high: float, limit: float) -> tuple[float, float]:
    if low < 0:
        high, low = high - low, 0.0
    if high > limit:
        low, high = low - (high - limit), limit
    return max(low, 0.0), high


def crop_tensor(image: ImageArray, box: Box, scale: float) -> FloatArray:
    """The model input for one crop: 3×80×80 float32, BGR, values 0..255."""
    height, width = image.shape[:2]
    left, top, right, bottom = crop_box(box, scale, width, height)
    resized = resize_bilinear(image[top : bottom + 1, left : right + 1], INPUT_SIZE)
    return np.ascontiguousarray(resized[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)


def resize_bilinear(patch: ImageArray, size: int) -> FloatArray:
    """``patch`` resized to size×size by plain bilinear interpolation (pixel centres aligned,
    no anti-aliasing), as OpenCV's ``INTER_LINEAR`` does, which the models were trained with."""
    rows = _sample_positions(patch.shape[0], size)
    cols = _sample_positions(patch.shape[1], size)
    (r0, r1, rw), (c0, c1, cw) = rows, cols
    data = patch.astype(np.float32)
    top = data[r0][:, c0] * (1 - cw)[None, :, None] + data[r0][:, c1] * cw[None, :, None]
    bottom = data[r1][:, c0] * (1 - cw)[None, :, None] + data[r1][:, c1] * cw[None, :, None]
    return (top * (1 - rw)[:, None, None] + bottom * rw[:, None, None]).astype(np.float32)


def _sample_positions(
    length: int, size: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]:
    """Lower and upper source indices and the upper weight for each of ``size`` outputs."""
    position = (np.arange(size, dtype=np.float32) + 0.5) * (length / size) - 0.5
    position = np.clip(position, 0.0, length - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, length - 1)
    return low, high, (position - low).astype(np.float32)


def live_probability(logits: FloatArray) -> float:
    """Softmax probability of the live class (index 1) of one row of logits."""
    shifted = logits.astype(np.float64) - float(np.max(logits))
    exp = np.exp(shifted)
    return float(exp[LIVE_INDEX] / exp.sum())


def log_odds(probability: float) -> float:
    """``log(p / (1 - p))``, clipped to ±:data:`LOG_ODDS_CLIP`."""
    p = min(max(probability, 1e-9), 1 - 1e-9)
    return float(np.clip(math.log(p / (1 - p)), -LOG_ODDS_CLIP, LOG_ODDS_CLIP))


def sigmoid(value: float) -> float:
    """The inverse of :func:`log_odds`."""
    return 1.0 / (1.0 + math.exp(-float(np.clip(value, -50.0, 50.0))))


class MiniFasNetPair:
    """The two packaged MiniFASNet models, averaged: a :class:`PassiveScorer`.

    The ONNX sessions (one thread each) are created, after the sha256 check, on the first
    :meth:`score`; an instance is safe to share between threads once loaded, but build one per
    process. ``models`` and ``package`` exist for tests (a tampered copy must be refused).
    """

    name = "minifasnet-pair"
    version = "2"

    def __init__(
        self,
        models: tuple[ModelSpec, ...] = MINIFASNET_MODELS,
        package: str = "facekey",
        folder: tuple[str, ...] = ("models", "minifasnet"),
    ) -> None:
        self._specs = models
        self._package = package
        self._folder = folder
        self._sessions: tuple[Any, ...] | None = None

    def load(self) -> tuple[Any, ...]:
        """Check the files' sha256 and open the sessions now (otherwise on first use)."""
        if self._sessions is None:
            self._sessions = tuple(self._open(spec) for spec in self._specs)
        return self._sessions

    def _open(self, spec: ModelSpec) -> Any:
        resource = files(self._package).joinpath(*self._folder, spec.file)
        if not resource.is_file():
            raise ModelNotFound(f"packaged model file {spec.file!r} is missing")
        with as_file(resource) as path:
            verify_sha256(path, spec.sha256)
            return single_thread_session(path.read_bytes())

    def score(self, image: ImageArray, box: Box) -> float:
        """The pair's live probability for the face in ``box`` (see the module docstring)."""
        return self.score_many([(image, box)])[0]

    def score_many(self, faces: Sequence[tuple[ImageArray, Box]]) -> list[float]:
        """:meth:`score` of several faces, each model run once on all of them (a batch)."""
        if not faces:
            return []
        odds = np.zeros(len(faces))
        for spec, session in zip(self._specs, self.load(), strict=True):
            batch = np.stack([crop_tensor(image, box, spec.scale) for image, box in faces])
            (logits,) = session.run(None, {session.get_inputs()[0].name: batch})
            rows = np.asarray(logits, dtype=np.float32)
            odds += [log_odds(live_probability(row)) for row in rows]
        return [sigmoid(value / len(self._specs)) for value in odds]
