"""What a device runs: its software version and the model files it ships, with their sha256
read from the files themselves (what is installed, not what was meant to be)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import as_file, files
from typing import Final

from facekey import __version__
from facekey.integrity import sha256_file

#: (reported name, version, path under the package's models folder).
SHIPPED_MODELS: Final = (
    ("face-reid-0095", "1", ("face-reid-0095", "face-reidentification-retail-0095.onnx")),
    ("minifasnet-v2-2.7", "2", ("minifasnet", "2.7_80x80_MiniFASNetV2.onnx")),
    ("minifasnet-v1se-4.0", "2", ("minifasnet", "4_0_0_80x80_MiniFASNetV1SE.onnx")),
    ("blazeface-short", "1", ("mediapipe", "face_detection_short_range.tflite")),
    ("blazeface-full", "1", ("mediapipe", "face_detection_full_range.tflite")),
    ("face-mesh", "1", ("mediapipe", "face_landmark.tflite")),
)


@dataclass(frozen=True)
class InstalledModel:
    """A model file on the device."""

    name: str
    version: str
    sha256: str


@cache
def installed_models() -> tuple[InstalledModel, ...]:
    """The shipped model files and their sha256 (read once per process)."""
    found = []
    for name, version, parts in SHIPPED_MODELS:
        resource = files("facekey").joinpath("models", *parts)
        if resource.is_file():
            with as_file(resource) as path:
                found.append(InstalledModel(name, version, sha256_file(path)))
    return tuple(found)


def software_version() -> str:
    """The facekey version this device runs."""
    return __version__


def model_drift(desired: list[dict[str, str]]) -> list[str]:
    """The desired models this device does not have at that version and sha256."""
    have = {(m.name, m.version, m.sha256) for m in installed_models()}
    return [
        f"{m.get('name')} {m.get('version')}"
        for m in desired
        if (m.get("name"), m.get("version"), m.get("sha256")) not in have
    ]
