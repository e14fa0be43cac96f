"""The screening kiosk's loop: frame pairs in, a decision shown per person, and nothing but
aggregate counts per UTC hour sent to the server.

One person standing in front of the kiosk gives many frames; they count once. A
**presentation** starts when a frame is screened (a warm face: ``pass``, ``refer`` or
``remeasure``) and ends after :data:`LEAVE_FRAMES` frames in a row with nobody to screen. It
counts as *screened* (and *referred*) by its first conclusive reading, or as *failed* when it
ends without one. The counts of an hour are sent when the hour is over (and when the kiosk
stops); a kiosk that cannot reach the server drops them: they are statistics, not records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from facekey.client import ApiError
from facekey.edge.screening import Screener, ScreeningResult
from facekey.edge.thermal import registered
from facekey.edge.transport import DeviceClient
from facekey.errors import ServerUnreachable
from facekey.vision.types import FloatArray, ImageArray

log = logging.getLogger(__name__)

LEAVE_FRAMES = 5
COUNTS_PATH = "/v1/fleet/screening-counts"


@dataclass(frozen=True)
class HourCounts:
    """The totals of one UTC hour."""

    hour: datetime
    screened: int = 0
    referred: int = 0
    failed: int = 0

    def body(self) -> dict[str, object]:
        """The JSON the server receives: the hour and three counts, nothing else."""
        return {
            "hour": self.hour.isoformat(),
            "screened": self.screened,
            "referred": self.referred,
            "failed": self.failed,
        }


def hour_of(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class Presentations:
    """Turns per-frame decisions into one outcome per person, counted per hour."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._counts = HourCounts(hour_of(now()))
        self._active = False
        self._conclusive = False
        self._absent = 0

    @property
    def counts(self) -> HourCounts:
        """The current hour's totals so far."""
        return self._counts

    def observe(self, result: ScreeningResult) -> HourCounts | None:
        """Count a frame's decision; the previous hour's totals when an hour just ended."""
        finished = self._roll_hour()
        if result.decision == "not_screened":
            self._absent += 1
            if self._active and self._absent >= LEAVE_FRAMES:
                self._end()
            return finished
        self._absent = 0
        if not self._active:
            self._active, self._conclusive = True, False
        if result.decision in ("pass", "refer") and not self._conclusive:
            self._conclusive = True
            referred = int(result.decision == "refer")
            self._add(screened=1, referred=referred)
        return finished

    def close(self) -> HourCounts:
        """End the presentation under way; the current hour's totals."""
        if self._active:
            self._end()
        return self._counts

    def _end(self) -> None:
        if not self._conclusive:
            self._add(failed=1)
        self._active = self._conclusive = False
        self._absent = 0

    def _add(self, *, screened: int = 0, referred: int = 0, failed: int = 0) -> None:
        c = self._counts
        self._counts = HourCounts(
            c.hour, c.screened + screened, c.referred + referred, c.failed + failed
        )

    def _roll_hour(self) -> HourCounts | None:
        hour = hour_of(self._now())
        if hour == self._counts.hour:
            return None
        finished, self._counts = self._counts, HourCounts(hour)
        return finished


def send_counts(client: DeviceClient, counts: HourCounts) -> bool:
    """Send an hour's totals; False (and dropped) when the server cannot take them."""
    try:
        client.post_json(COUNTS_PATH, counts.body())
    except (ServerUnreachable, ApiError) as exc:
        log.warning("screening counts of %s dropped: %s", counts.hour.isoformat(), exc)
        return False
    return True


def run_kiosk(
    screener: Screener,
    pairs: Iterable[tuple[ImageArray, FloatArray]],
    client: DeviceClient | None,
    *,
    show: Callable[[ScreeningResult], None] = lambda result: None,
    presentations: Presentations | None = None,
) -> HourCounts:
    """Screen every frame pair, show each decision, send each finished hour's counts (when a
    client is given); the last hour's totals, sent too."""
    tally = presentations or Presentations()
    for rgb, thermal in pairs:
        result = screener.screen(rgb, registered(thermal, rgb.shape))
        show(result)
        finished = tally.observe(result)
        if finished is not None and client is not None:
            send_counts(client, finished)
    last = tally.close()
    if client is not None and (last.screened or last.failed):
        send_counts(client, last)
    return last
