"""Probes from terminals: an image, or a template computed on the device by the same engine."""

from __future__ import annotations

from facekey.errors import EngineMismatch, InvalidRequest, TemplateFormatError
from facekey.flows.faces import probe_face, protected
from facekey.flows.platform import Platform
from facekey.security.transform import TemplateTransform
from facekey.store.tables import Network
from facekey.templates import Template
from facekey.vision.types import FloatArray


def probe_vector(
    platform: Platform, network: Network, image: bytes | None, template: bytes | None
) -> FloatArray:
    """The protected search vector of a probe image or an edge template."""
    transform = platform.vault.transform(network, platform.reader.info)
    if image is not None:
        return protected(transform, probe_face(platform, image))
    if template is None:
        raise InvalidRequest("send an image or a template")
    return protected_template(platform, transform, template)


def protected_template(platform: Platform, transform: TemplateTransform, data: bytes) -> FloatArray:
    """An edge template, checked to come from this server's engine and version."""
    try:
        parsed = Template.from_bytes(data)
    except TemplateFormatError as exc:
        raise InvalidRequest(f"template: {exc}") from exc
    info = platform.reader.info
    if (parsed.engine_id, parsed.engine_version, parsed.dimension) != (
        info.id,
        info.version,
        info.dimension,
    ):
        raise EngineMismatch(
            f"the template was made by {parsed.engine_id} {parsed.engine_version}; this server "
            f"runs {info.id} {info.version}"
        )
    return transform.apply(parsed.vector)
