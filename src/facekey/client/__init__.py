"""The facekey HTTP client, for scripts and the CLI: the API's calls and the bulk import.

:class:`FacekeyClient` (:mod:`facekey.client.api`) calls one server with one key; what goes
wrong is a :class:`ClientError`. :func:`~facekey.client.bulk.import_people` enrols a
folder-per-person set through it, with retries and a summary that is always complete.
"""

from __future__ import annotations

from facekey.client.api import ApiError, ClientError, Device, FacekeyClient, ServerUnavailable

__all__ = ["ApiError", "ClientError", "Device", "FacekeyClient", "ServerUnavailable"]
