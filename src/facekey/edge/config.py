"""A device's configuration folder: who it is, how it reaches the server, what it runs.

``device.json`` holds the server URL and the device's ids (no secret); ``credentials.json``
holds its HMAC secret and API key and must be readable by its owner only (0600: a folder
copied with looser modes is refused, as ssh refuses a private key); ``release.json`` is the
release the fleet last asked for. Nothing else is ever written here.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from facekey.errors import InvalidRequest
from facekey.security.signing import decode_secret

DEVICE_FILE: Final = "device.json"
CREDENTIALS_FILE: Final = "credentials.json"
RELEASE_FILE: Final = "release.json"


@dataclass(frozen=True)
class DeviceConfig:
    """A provisioned device: server, ids, secret and API key, and its applied release."""

    server: str
    device_id: str
    network_id: str
    store_id: str
    merchant_id: str
    api_key: str = field(repr=False)
    secret: bytes = field(repr=False)
    release: dict[str, Any] | None = None

    def setting(self, name: str, default: float) -> float:
        """A setting of the applied release, else ``default``."""
        settings = (self.release or {}).get("settings") or {}
        value = settings.get(name, default)
        return float(value) if isinstance(value, int | float) else default

    @property
    def release_id(self) -> str | None:
        """The applied release's id."""
        return None if self.release is None else str(self.release.get("release_id"))


def save_enrolment(folder: Path, server: str, enrolment: dict[str, Any]) -> DeviceConfig:
    """Write what enrolment returned; the credentials file is created 0600 from the start."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    device = {
        "server": server.rstrip("/"),
        "device_id": enrolment["device_id"],
        "network_id": enrolment["network_id"],
        "store_id": enrolment["store_id"],
        "merchant_id": enrolment["merchant_id"],
    }
    credentials = {"api_key": enrolment["api_key"], "secret": enrolment["secret"]}
    _write_private(folder / CREDENTIALS_FILE, credentials)
    _write_private(folder / DEVICE_FILE, device)
    return load_config(folder)


def load_config(folder: Path) -> DeviceConfig:
    """The device configuration in ``folder``; InvalidRequest when it is missing or unsafe."""
    device = _read(folder / DEVICE_FILE)
    path = folder / CREDENTIALS_FILE
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0
    if mode & 0o077:
        raise InvalidRequest(f"{path} must be readable by its owner only (chmod 600)")
    credentials = _read(path)
    release_path = folder / RELEASE_FILE
    release = _read(release_path) if release_path.exists() else None
    try:
        return DeviceConfig(
            server=str(device["server"]),
            device_id=str(device["device_id"]),
            network_id=str(device["network_id"]),
            store_id=str(device["store_id"]),
            merchant_id=str(device["merchant_id"]),
            api_key=str(credentials["api_key"]),
            secret=decode_secret(str(credentials["secret"])),
            release=release,
        )
    except (KeyError, ValueError) as exc:
        raise InvalidRequest(f"the device configuration in {folder} is incomplete: {exc}") from exc


def save_release(folder: Path, release: dict[str, Any] | None) -> bool:
    """Keep the release the fleet asks for; True when it changed (written only then)."""
    path = folder / RELEASE_FILE
    current = _read(path) if path.exists() else None
    if current == release:
        return False
    if release is None:
        path.unlink(missing_ok=True)
    else:
        _write_private(path, release)
    return True


def _read(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidRequest(f"{path} is missing: enrol the device first") from exc
    except ValueError as exc:
        raise InvalidRequest(f"{path} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"{path} must hold a JSON object")
    return value


def _write_private(path: Path, value: dict[str, Any]) -> None:
    """Replace ``path`` atomically with a 0600 file (never briefly readable by others)."""
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)  # a leftover could carry looser modes
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
    os.replace(temporary, path)
