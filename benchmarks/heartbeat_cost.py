"""The server's CPU per heartbeat, in process and by part (no HTTP, no event loop).

    .venv/bin/python benchmarks/heartbeat_cost.py --devices 500 --calls 2000

Provisions ``--devices`` devices as ``fleet_load.py`` does (SQLite in a temporary data
directory, or ``--database-url``), then sends each a round of heartbeats straight into the
flows a ``POST /v1/fleet/heartbeat`` runs: the API key (:func:`authenticate`), the signature
check (:func:`verify_terminal_call`: device, secret, nonce) and the heartbeat itself
(:func:`facekey.flows.fleet.heartbeat`). Prints the CPU time of this process per call for
each part (mean over ``--calls``, after one warm-up round); ``--profile N`` adds cProfile's
N most expensive functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facekey.config import Settings
from facekey.edge.inventory import installed_models
from facekey.flows import fleet
from facekey.flows.auth import authenticate
from facekey.flows.devices import verify_terminal_call
from facekey.flows.platform import Platform
from facekey.security.signing import signed_headers
from fleet_load import SimDevice, provision

PATH = "/v1/fleet/heartbeat"
#: What fleet_load.py's devices send: their version, model files, uptime and camera.
BODY = json.dumps(
    {
        "software_version": "0.1.0",
        "models": [
            {"name": m.name, "version": m.version, "sha256": m.sha256} for m in installed_models()
        ],
        "uptime_s": 3600,
        "camera": "ok",
    }
).encode()


def one_heartbeat(
    platform: Platform, releases: fleet.ReleaseCache, device: SimDevice, cpu: dict[str, float]
) -> None:
    """One heartbeat through the three parts, adding each part's CPU seconds to ``cpu``."""
    headers = signed_headers(
        device_id=device.device_id, secret=device.secret, method="POST", path=PATH, body=BODY
    )
    report = fleet.HeartbeatReport.parse(json.loads(BODY))
    principal = _timed(cpu, "api_key", lambda: authenticate(platform, device.api_key))
    identity = _timed(
        cpu,
        "signature",
        lambda: verify_terminal_call(
            platform.database,
            platform.vault,
            principal,
            headers=headers,
            method="POST",
            path=PATH,
            body=BODY,
        ),
    )
    _timed(cpu, "heartbeat", lambda: fleet.heartbeat(platform.database, identity, report, releases))


def _timed(cpu: dict[str, float], part: str, call: Callable[[], Any]) -> Any:
    start = time.process_time()
    result = call()
    cpu[part] = cpu.get(part, 0.0) + time.process_time() - start
    return result


def run(platform: Platform, devices: list[SimDevice], calls: int, profile: int) -> dict[str, Any]:
    releases = fleet.ReleaseCache()
    for device in devices:  # warm-up: every device once (caches, statements, pages)
        one_heartbeat(platform, releases, device, {})
    cpu: dict[str, float] = {}
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    for index in range(calls):
        one_heartbeat(platform, releases, devices[index % len(devices)], cpu)
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
    per_call = {part: round(1000 * seconds / calls, 3) for part, seconds in cpu.items()}
    return {
        "calls": calls,
        "cpu_ms_per_call": per_call | {"total": round(sum(per_call.values()), 3)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--database-url", help="default: SQLite in a temporary data directory")
    parser.add_argument("--profile", type=int, default=0, help="cProfile's top N functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heartbeat-cost-") as tmp:
        if args.database_url:
            os.environ["FACEKEY_DATABASE_URL"] = args.database_url
        data_dir = Path(tmp)
        _network, devices = provision(data_dir, args.devices)
        platform = Platform.open(Settings(data_dir=data_dir))
        try:
            result = run(platform, devices, args.calls, args.profile)
        finally:
            platform.database.dispose()
    result |= {"devices": args.devices, "backend": platform.database.dialect}
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
