"""Engines found by name through the ``facekey.engines`` entry-point group, loaded lazily.

An entry point names a factory ``create(settings) -> Engine``. Nothing is imported until an
engine is asked for by name, so ``import facekey`` stays cheap and loads no model.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

from facekey.config import Settings
from facekey.engines.base import Engine
from facekey.errors import UnknownEngine

GROUP = "facekey.engines"
log = logging.getLogger(__name__)


def available_engines() -> list[str]:
    """Names of the installed engines, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def check_engine_name(name: str) -> str:
    """``name`` if an engine of that name is installed; else :class:`UnknownEngine`."""
    _entry_point(name)
    return name


def load_engine(name: str, settings: Settings | None = None) -> Engine:
    """Build the engine registered as ``name``; raise :class:`UnknownEngine` if there is none."""
    factory = _entry_point(name).load()
    log.debug("loading engine %s", name)
    engine: Engine = factory(settings or Settings())
    return engine


def _entry_point(name: str) -> EntryPoint:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        installed = ", ".join(available_engines()) or "none"
        raise UnknownEngine(f"no engine named {name!r}; installed engines: {installed}")
    return matches[0]
