"""Prometheus gauges of the fleet, read from the database at each scrape (so every worker
reports the same numbers): devices online by software version, and devices registered."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from facekey.flows.fleet import fleet_gauges
from facekey.flows.platform import Platform


class FleetCollector(Collector):
    """``facekey_devices_online{network, version}`` and ``facekey_devices{network, state}``."""

    def __init__(self, platform: Callable[[], Platform | None]) -> None:
        self._platform = platform

    def collect(self) -> Iterator[GaugeMetricFamily]:
        platform = self._platform()
        if platform is None:  # scraped before the lifespan built the platform
            return
        gauges = fleet_gauges(platform.database)
        online = GaugeMetricFamily(
            "facekey_devices_online",
            "Enabled devices heard from within the offline window, by software version",
            labels=["network", "version"],
        )
        for network, version, count in gauges.online:
            online.add_metric([network, version], count)
        registered = GaugeMetricFamily(
            "facekey_devices", "Registered devices by state", labels=["network", "state"]
        )
        for network, enabled, count in gauges.registered:
            registered.add_metric([network, "enabled" if enabled else "disabled"], count)
        yield online
        yield registered
