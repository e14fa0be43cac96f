"""The ``facekey`` command line: thin wrappers over the library, JSON on stdout.

The commands live by audience: :mod:`~facekey.cli.tools` (engines, evaluation, calibration,
benchmarks, simulations on local files), :mod:`~facekey.cli.admin` (the server and its data
directory) and :mod:`~facekey.cli.client` (calls to a running server); the device software is
:mod:`~facekey.cli.edge` and the fleet's admin commands :mod:`~facekey.cli.fleet`.
"""

from __future__ import annotations

import logging

import typer

from facekey.cli import admin, client, edge, fleet, tools
from facekey.cli.common import app
from facekey.errors import FacekeyError

__all__ = ["admin", "app", "client", "edge", "fleet", "main", "tools"]


def main() -> None:
    """Console entry point: facekey errors become a one-line message and exit status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except FacekeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
