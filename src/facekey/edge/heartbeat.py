"""Heartbeats: every period the device reports what it runs and how it is, and receives the
release the fleet wants it to run (kept in its configuration folder when it changes).

A missed heartbeat is not retried or queued: the next one says everything again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from facekey.client import ApiError
from facekey.edge.config import DeviceConfig, load_config, save_release
from facekey.edge.inventory import installed_models, model_drift, software_version
from facekey.edge.transport import DeviceClient
from facekey.errors import ServerUnreachable

log = logging.getLogger(__name__)

HEARTBEAT_PATH = "/v1/fleet/heartbeat"


@dataclass(frozen=True)
class Beat:
    """One heartbeat's outcome: delivered or not, the release, the next period."""

    delivered: bool
    heartbeat_s: float
    release_id: str | None
    release_changed: bool
    error: str | None = None


class Heartbeater:
    """Sends a device's heartbeats from its configuration folder."""

    def __init__(
        self,
        folder: Path,
        client: DeviceClient,
        *,
        camera: Callable[[], str] = lambda: "none",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._folder = folder
        self._client = client
        self._camera = camera
        self._clock = clock
        self._started = clock()
        self.last_error: str | None = None

    def report(self, config: DeviceConfig) -> dict[str, Any]:
        """The heartbeat's body."""
        return {
            "software_version": software_version(),
            "models": [asdict(m) for m in installed_models()],
            "uptime_s": int(self._clock() - self._started),
            "camera": self._camera(),
            "last_error": self.last_error,
            "release_id": config.release_id,
        }

    def beat(self) -> Beat:
        """Send one heartbeat and apply the release it answers."""
        config = load_config(self._folder)
        period = config.setting("heartbeat_s", 60)
        try:
            answer = self._client.post_json(HEARTBEAT_PATH, self.report(config))
        except (ServerUnreachable, ApiError) as exc:
            log.warning("heartbeat not delivered: %s", exc)
            return Beat(False, period, config.release_id, False, str(exc))
        release = answer.get("release")
        changed = save_release(self._folder, release)
        self.last_error = self._check(release)
        return Beat(
            True,
            float(answer.get("heartbeat_s") or period),
            None if release is None else str(release["release_id"]),
            changed,
        )

    def _check(self, release: dict[str, Any] | None) -> str | None:
        """What the device cannot do of the release (reported in the next heartbeat)."""
        if release is None:
            return None
        problems = []
        if release.get("software_version") != software_version():
            problems.append(
                f"software {release.get('software_version')} wanted, {software_version()} installed"
            )
        missing = model_drift(release.get("models") or [])
        if missing:
            problems.append("models not installed: " + ", ".join(missing))
        for problem in problems:
            log.warning("release %s: %s", release.get("release_id"), problem)
        return "; ".join(problems) or None

    def run(self, *, beats: int | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        """Beat every period (``beats`` times, or for ever)."""
        count = 0
        while beats is None or count < beats:
            beat = self.beat()
            count += 1
            if beats is None or count < beats:
                sleep(beat.heartbeat_s)


def client_for(config: DeviceConfig, **options: Any) -> DeviceClient:
    """The signed client of a configured device."""
    return DeviceClient(
        config.server,
        device_id=config.device_id,
        secret=config.secret,
        api_key=config.api_key,
        **options,
    )
