"""BlazeFace face detection (Google MediaPipe's short- and full-range models) on LiteRT.

The pre- and post-processing follow MediaPipe's face detection graphs: the image is
letterboxed into the model's square input (values in [-1, 1]), SSD anchors are laid out on the
model's feature maps, box centres and the six keypoints are offsets from their anchor in input
pixels, scores are sigmoids, and overlapping boxes are merged by weighted non-maximum
suppression (weights = scores, the merged box keeps the best score).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
from PIL import Image

from facekey.vision.litert import LiteModel
from facekey.vision.types import Box, Detection, FloatArray, ImageArray

ModelKind = Literal["short", "full"]

#: IoU above which two candidate boxes are merged (MediaPipe: min_suppression_threshold).
NMS_IOU_THRESHOLD: Final = 0.3
#: Raw logits are clipped to this magnitude before the sigmoid, as in MediaPipe.
SCORE_CLIP: Final = 100.0
NUM_KEYPOINTS: Final = 6


@dataclass(frozen=True)
class _Spec:
    """One BlazeFace variant: model file, square input size and SSD anchor layout."""

    model_file: str
    input_size: int
    layout: tuple[tuple[int, int], ...]  # (stride, anchors per feature-map cell)


_SPECS: Final[Mapping[str, _Spec]] = MappingProxyType(
    {
        "short": _Spec("face_detection_short_range.tflite", 128, ((8, 2), (16, 6))),
        "full": _Spec("face_detection_full_range.tflite", 192, ((4, 1),)),
    }
)


@dataclass(frozen=True)
class Letterbox:
    """How an image was put into the model input: input px = image px × scale + pad."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_image(self, points: FloatArray) -> FloatArray:
        """Points (…×2, x then y) in model-input pixels mapped to image pixels."""
        scale = np.array([self.scale_x, self.scale_y], dtype=np.float32)
        pad = np.array([self.pad_x, self.pad_y], dtype=np.float32)
        return ((points - pad) / scale).astype(np.float32)


def ssd_anchors(input_size: int, layout: tuple[tuple[int, int], ...]) -> FloatArray:
    """Anchor centres (N×2, x then y) in model-input pixels, in the model's output order.

    ``layout`` lists ``(stride, anchors_per_cell)``; cells run row by row, and the anchors of a
    cell are consecutive (MediaPipe's SsdAnchorsCalculator with fixed anchor size).
    """
    parts = []
    for stride, per_cell in layout:
        cells = input_size // stride
        centres = (np.arange(cells, dtype=np.float32) + 0.5) * (input_size / cells)
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        parts.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(parts).astype(np.float32)


def letterbox(image: ImageArray, size: int) -> tuple[FloatArray, Letterbox]:
    """The image scaled to fit ``size``×``size`` (aspect kept, black borders), in [-1, 1]."""
    height, width = image.shape[:2]
    factor = size / max(height, width)
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.zeros((size, size, 3), dtype=np.float32)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = np.asarray(resized, dtype=np.float32)
    tensor = (canvas / np.float32(127.5) - np.float32(1.0)).astype(np.float32)
    return tensor, Letterbox(new_w / width, new_h / height, float(pad_x), float(pad_y))


def sigmoid(logits: FloatArray) -> FloatArray:
    """The logistic function of clipped logits."""
    clipped = np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    return (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)


def decode(raw: FloatArray, anchors: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Boxes (N×4: left, top, right, bottom) and keypoints (N×6×2) in model-input pixels."""
    centres = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([centres - half, centres + half], axis=1)
    keypoints = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    return boxes.astype(np.float32), keypoints.astype(np.float32)


def box_iou(box: FloatArray, boxes: FloatArray) -> FloatArray:
    """IoU of one box (4,) with each of ``boxes`` (N×4), all as left, top, right, bottom."""
    low = np.maximum(box[:2], boxes[:, :2])
    high = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=1)
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = np.prod(box[2:] - box[:2]) + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def weighted_nms(
    boxes: FloatArray,
    keypoints: FloatArray,
    scores: FloatArray,
    threshold: float = NMS_IOU_THRESHOLD,
) -> list[tuple[FloatArray, FloatArray, float]]:
    """MediaPipe's weighted NMS: each cluster around the best remaining box is averaged.

    Returns ``(box, keypoints, score)`` per cluster, best first; ``score`` is the cluster's best.
    """
    remaining = np.argsort(-scores, kind="stable")
    merged: list[tuple[FloatArray, FloatArray, float]] = []
    while remaining.size:
        best = remaining[0]
        overlap = box_iou(boxes[best], boxes[remaining]) > threshold
        overlap[0] = True
        cluster = remaining[overlap]
        weights = scores[cluster] / scores[cluster].sum()
        box = np.tensordot(weights, boxes[cluster], axes=1).astype(np.float32)
        points = np.tensordot(weights, keypoints[cluster], axes=1).astype(np.float32)
        merged.append((box, points, float(scores[best])))
        remaining = remaining[~overlap]
    return merged


class BlazeFaceDetector:
    """MediaPipe BlazeFace: ``"short"`` range (128 px input, faces within ~2 m) or ``"full"``.

    Implements the :class:`~facekey.vision.detectors.Detector` protocol. Each instance owns its
    LiteRT interpreter (loaded on the first :meth:`detect`), so use one instance per thread.
    Boxes are not clipped to the image; keypoints are, in the subject's terms: right eye, left
    eye, nose tip, mouth centre, right ear tragion, left ear tragion (the subject's right eye is
    on the image's left in an unmirrored photo).
    """

    def __init__(self, model: ModelKind = "short", min_score: float = 0.5) -> None:
        if model not in _SPECS:
            raise ValueError(f"model must be 'short' or 'full', not {model!r}")
        self._spec = _SPECS[model]
        self.name = f"blazeface-{model}"
        self.min_score = min_score
        self._anchors = ssd_anchors(self._spec.input_size, self._spec.layout)
        self._model = LiteModel(self._spec.model_file)

    def detect(self, image: ImageArray) -> list[Detection]:
        """All faces scoring at least ``min_score``, best first."""
        _check_image(image)
        tensor, frame = letterbox(image, self._spec.input_size)
        outputs = self._model.run(tensor[np.newaxis])
        raw_boxes, raw_scores = sorted(outputs, key=lambda out: -out.shape[-1])
        boxes, keypoints = decode(raw_boxes.reshape(-1, raw_boxes.shape[-1]), self._anchors)
        scores = sigmoid(raw_scores.reshape(-1))
        keep = (scores >= self.min_score) & np.all(boxes[:, 2:] > boxes[:, :2], axis=1)
        clusters = weighted_nms(boxes[keep], keypoints[keep], scores[keep])
        return [self._to_detection(box, points, score, frame) for box, points, score in clusters]

    def _to_detection(
        self, box: FloatArray, points: FloatArray, score: float, frame: Letterbox
    ) -> Detection:
        corners = frame.to_image(box.reshape(2, 2))
        left, top, right, bottom = (float(v) for v in corners.ravel())
        return Detection(Box(left, top, right, bottom), score, self.name, frame.to_image(points))


def _check_image(image: ImageArray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.shape} {image.dtype}")
