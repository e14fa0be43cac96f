"""Faces from request images: the checks every flow applies before it trusts a face."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facekey.errors import LowQuality, MultipleFaces, NoFace
from facekey.flows.platform import Platform
from facekey.pipeline import Face, main_face
from facekey.security.transform import TemplateTransform
from facekey.vision.types import FloatArray


def probe_face(platform: Platform, data: bytes) -> Face:
    """The main face of a probe image (identification, verification)."""
    shape, faces = platform.reader.faces(data)
    return main_face(faces, shape)


def enrolment_faces(platform: Platform, images: Sequence[bytes]) -> list[Face]:
    """Exactly one good face per enrolment image; else a precise 422 reason."""
    faces = []
    for number, data in enumerate(images, start=1):
        _, found = platform.reader.faces(data)
        if not found:
            raise NoFace(f"image {number}: no face was found")
        if len(found) > 1:
            raise MultipleFaces(f"image {number}: {len(found)} faces; enrol one person at a time")
        problems = platform.quality_policy.problems(found[0].quality)
        if problems:
            raise LowQuality(f"image {number}: {', '.join(problems)}")
        faces.append(found[0])
    return faces


def protected(transform: TemplateTransform, face: Face) -> FloatArray:
    """The face's template vector as stored and searched: through the network's transform."""
    return np.asarray(transform.apply(face.template.vector), dtype=np.float32)
