"""facekey: open, vendor-neutral face authentication, private by construction.

The public API is small::

    import facekey

    pipeline = facekey.FacePipeline.from_settings(facekey.Settings())
    faces = pipeline.faces_in_bytes(jpeg_bytes)
    score = faces[0].template.similarity(other_template)

Importing facekey loads no model and imports no heavy dependency: names are resolved on first
use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from facekey.errors import FacekeyError

__version__ = "0.1.0"

_LAZY = {
    "Face": "facekey.pipeline",
    "FacePipeline": "facekey.pipeline",
    "Settings": "facekey.config",
    "Template": "facekey.templates",
    "available_engines": "facekey.engines.registry",
    "decode_image": "facekey.imaging",
    "load_engine": "facekey.engines.registry",
    "main_face": "facekey.pipeline",
}

__all__ = [
    "Face",
    "FacePipeline",
    "FacekeyError",
    "Settings",
    "Template",
    "__version__",
    "available_engines",
    "decode_image",
    "load_engine",
    "main_face",
]

if TYPE_CHECKING:
    from facekey.config import Settings
    from facekey.engines.registry import available_engines, load_engine
    from facekey.imaging import decode_image
    from facekey.pipeline import Face, FacePipeline, main_face
    from facekey.templates import Template


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'facekey' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
