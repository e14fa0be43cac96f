"""Faces from request images: the checks every flow applies before it trusts a face."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facekey.errors import LowQuality, MultipleFaces, NoFace
from facekey.flows.platform import Platform
from facekey.pipeline import Face, main_face
from facekey.security.transform import TemplateTransform
from facekey.vision.types import FloatArray

#: A second face at least this large (eye distance, relative to the main face) makes an
#: enrolment image ambiguous; smaller faces are bystanders in the background.
AMBIGUOUS_FACE_RATIO = 0.6


def probe_face(platform: Platform, data: bytes) -> Face:
    """The main face of a probe image (identification, verification)."""
    shape, faces = platform.reader.faces(data)
    return main_face(faces, shape)


def enrolment_faces(platform: Platform, images: Sequence[bytes]) -> list[Face]:
    """One good face per enrolment image (small background faces are ignored); else a
    precise 422 reason."""
    faces = []
    for number, data in enumerate(images, start=1):
        shape, found = platform.reader.faces(data)
        if not found:
            raise NoFace(f"image {number}: no face was found")
        face = main_face(found, shape)
        if _ambiguous(face, found):
            raise MultipleFaces(f"image {number}: {len(found)} faces; enrol one person at a time")
        problems = platform.quality_policy.problems(face.quality)
        if problems:
            raise LowQuality(f"image {number}: {', '.join(problems)}")
        faces.append(face)
    return faces


def _ambiguous(main: Face, found: Sequence[Face]) -> bool:
    """Whether another face is large enough that the image may be of them."""
    size = main.quality.eye_distance_px
    return any(
        f is not main and f.quality.eye_distance_px >= AMBIGUOUS_FACE_RATIO * size for f in found
    )


def protected(transform: TemplateTransform, face: Face) -> FloatArray:
    """The face's template vector as stored and searched: through the network's transform."""
    return np.asarray(transform.apply(face.template.vector), dtype=np.float32)
