"""Probes from terminals: an image, or a template computed on the device by one of the
network's engines."""

from __future__ import annotations

import numpy as np

from facekey.calibration import UNMASKED
from facekey.errors import EngineMismatch, InvalidRequest, TemplateFormatError
from facekey.flows.faces import Probe, probe_face
from facekey.flows.platform import Platform
from facekey.flows.search import SearchProbe
from facekey.store.tables import Network
from facekey.templates import Template


def probe_of(
    platform: Platform, network: Network, image: bytes | None, template: bytes | None
) -> tuple[SearchProbe, Probe | None]:
    """The search probe of an image (every engine of the network) or an edge template; and
    the image's faces, which a migrating network re-templates from."""
    if image is not None:
        faces = probe_face(platform, network, image)
        return SearchProbe.of(platform, network, faces), faces
    if template is None:
        raise InvalidRequest("send an image or a template")
    return edge_probe(platform, network, template), None


def edge_probe(platform: Platform, network: Network, data: bytes) -> SearchProbe:
    """An edge template, checked to come from one of the network's engines and versions.

    It searches that engine's gallery only; a terminal of a network that migrates between
    engines sends images, or templates of the engine the network moves to, until it ends.
    """
    try:
        parsed = Template.from_bytes(data)
    except TemplateFormatError as exc:
        raise InvalidRequest(f"template: {exc}") from exc
    for reader in platform.readers_of(network):
        info = reader.info
        if (parsed.engine_id, parsed.engine_version, parsed.dimension) == (
            info.id,
            info.version,
            info.dimension,
        ):
            transform = platform.vault.transform(network, info)
            vector = transform.apply(parsed.vector)[np.newaxis]
            return SearchProbe({reader.engine_key: vector}, UNMASKED)
    engines = ", ".join(r.engine_key for r in platform.readers_of(network))
    raise EngineMismatch(
        f"the template was made by {parsed.engine_id} {parsed.engine_version}; this network "
        f"searches {engines}"
    )
