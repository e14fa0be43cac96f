"""The ``facekey`` command line: thin wrappers over the library, JSON on stdout.

The commands live by audience: :mod:`~facekey.cli.tools` (engines, evaluation, calibration,
benchmarks, simulations on local files), :mod:`~facekey.cli.admin` (the server and its data
directory), :mod:`~facekey.cli.client` (calls to a running server), the device software
:mod:`~facekey.cli.edge` and the fleet's admin commands :mod:`~facekey.cli.fleet`. What a
command lets escape ends it in one place, :class:`~facekey.cli.common.FacekeyCommands`.
"""

from __future__ import annotations

import logging

from facekey.cli import admin, client, edge, fleet, tools
from facekey.cli.common import app

__all__ = ["admin", "app", "client", "edge", "fleet", "main", "tools"]


def main() -> None:
    """Console entry point (an error is one line and an exit status: ``facekey --help``)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
