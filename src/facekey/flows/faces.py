"""Faces from request images: the checks every flow applies before it trusts a face.

A network searches with its engine and, while it migrates, with the engine it moves to as
well; a :class:`Probe` is the main face of one image as each of those engines sees it (the
image is decoded once, every engine detects the same face).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facekey.calibration import Condition, condition_of
from facekey.errors import LowQuality, MultipleFaces, NoFace
from facekey.flows.platform import FaceReader, Platform
from facekey.imaging import decode_image
from facekey.pipeline import Face, main_face
from facekey.security.transform import TemplateTransform
from facekey.store.tables import Network
from facekey.vision.types import FloatArray, ImageArray

#: A second face at least this large (eye distance, relative to the main face) makes an
#: enrolment image ambiguous; smaller faces are bystanders in the background.
AMBIGUOUS_FACE_RATIO = 0.6


@dataclass(frozen=True)
class EngineFace:
    """One engine's view of a face: the reader (engine) and the face with its template."""

    reader: FaceReader
    face: Face


@dataclass(frozen=True)
class Probe:
    """The main face of one image under each of a network's engines, its own engine first."""

    views: tuple[EngineFace, ...]

    @property
    def face(self) -> Face:
        """The face under the network's own engine (quality, mask and geometry)."""
        return self.views[0].face

    @property
    def condition(self) -> Condition:
        """The calibration condition of comparing it with the (always unmasked) gallery."""
        return condition_of(self.face.quality.masked, False)


def probe_face(platform: Platform, network: Network, data: bytes) -> Probe:
    """The main face of a probe image (identification, verification, checkout)."""
    image = decode_image(data, platform.settings.images)
    return probe_of_image(platform, network, image)


def probe_of_image(
    platform: Platform,
    network: Network,
    image: ImageArray,
    primary: Face | None = None,
    engines: Sequence[str] | None = None,
) -> Probe:
    """The main face of a decoded image under each of the network's engines (or of
    ``engines``); ``primary``: the main face under the first, when the caller has it."""
    readers = [platform.readers.get(e) for e in engines or network.engines]
    first = primary or main_face(readers[0].faces_in(image), image.shape)
    others = (EngineFace(r, main_face(r.faces_in(image), image.shape)) for r in readers[1:])
    return Probe((EngineFace(readers[0], first), *others))


def enrolment_faces(
    platform: Platform,
    network: Network,
    images: Sequence[bytes],
    engines: Sequence[str] | None = None,
) -> list[Probe]:
    """One good, unmasked face per enrolment image (small background faces are ignored);
    else a precise 422 reason. ``engines``: only these of the network's engines."""
    chosen = tuple(engines or network.engines)
    probes = []
    for number, data in enumerate(images, start=1):
        image = decode_image(data, platform.settings.images)
        found = platform.readers.get(chosen[0]).faces_in(image)
        if not found:
            raise NoFace(f"image {number}: no face was found")
        face = main_face(found, image.shape)
        if _ambiguous(face, found):
            raise MultipleFaces(f"image {number}: {len(found)} faces; enrol one person at a time")
        problems = platform.quality_policy.problems(face.quality)
        if problems:
            raise LowQuality(f"image {number}: {', '.join(problems)}")
        probes.append(probe_of_image(platform, network, image, face, chosen))
    return probes


def _ambiguous(main: Face, found: Sequence[Face]) -> bool:
    """Whether another face is large enough that the image may be of them."""
    size = main.quality.eye_distance_px
    return any(
        f is not main and f.quality.eye_distance_px >= AMBIGUOUS_FACE_RATIO * size for f in found
    )


def protected(transform: TemplateTransform, face: Face) -> FloatArray:
    """The face's template vector as stored and searched: through the network's transform."""
    return np.asarray(transform.apply(face.template.vector), dtype=np.float32)
