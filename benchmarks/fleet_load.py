"""A fleet of simulated devices against one ``facekey serve --workers 2``.

    .venv/bin/python benchmarks/fleet_load.py --devices 20000 --seconds 600 --out out/fleet

Starts its own server on a temporary data directory, provisions the devices (ids, secrets and
API keys of their own, written straight into the database: enrolment is measured separately by
``--enrolments``), enrols a few real faces (tests/fixtures/lfw), then runs every device in one
asyncio process with real signed HTTP on loopback, each call on a new connection as a device
that wakes once a minute would make it:

* **heartbeat**: every device every ``--heartbeat-s`` (60 s), phases spread evenly;
* **checkout**: terminals send on-device templates (the ``template`` probe: the server's cost
  without liveness, see docs/fleet.md) at the day's rate with peaks: 600,000 checkouts over
  the 12 opening hours is 13.9/s, and every ``--peak-every`` seconds a ``--peak-s`` stretch
  runs at ``--peak-factor`` × that;
* **screening**: kiosks send their hourly counts (the 400,000 screenings a day never reach
  the server otherwise): one per kiosk per hour, 5,000 kiosks = 1.39/s;
* **enrol**: ``--enrolments`` devices provisioned with one-time tokens during the run;
* **admin**: a Prometheus scrape of ``/metrics`` every 15 s and a page of device health every
  60 s.

Writes DIR/fleet.json: requests, errors, per kind count / requests per second / p50 / p99,
server CPU and RSS sampled every 5 s, the rates, machine and load average.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from facekey.config import Settings
from facekey.edge.inventory import installed_models
from facekey.evaluation.machine import machine_info
from facekey.flows.devices import register_device
from facekey.flows.fleet import issue_device_key
from facekey.flows.platform import open_storage
from facekey.flows.tenancy import CreatedNetwork, create_network
from facekey.security.signing import decode_secret, signed_headers
from facekey.store import tenants

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT / "tests" / "fixtures" / "lfw"
DAY_CHECKOUTS = 600_000
DAY_SCREENINGS = 400_000
OPEN_HOURS = 12
DEVICES_PER_STORE = 8
KIOSK_SHARE = 0.25
BOUNDARY = "fleetloadboundary"
WINDOW_S = 5.0


@dataclass(frozen=True)
class SimDevice:
    """One simulated device: its ids, secret and API key."""

    device_id: str
    store_id: str
    merchant_id: str
    secret: bytes
    api_key: str
    kiosk: bool


@dataclass
class Tally:
    """Latencies and errors per kind, and answered calls per 5-second window."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Per 5-second window since the start: answered calls by kind, and errors.
    windows: dict[int, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    started: float = field(default_factory=time.monotonic)

    def record(self, kind: str, ms: float, ok: bool, status: str) -> None:
        self.latencies[kind].append(ms)
        self.statuses[f"{kind} {status}"] += 1
        window = self.windows[int((time.monotonic() - self.started) // WINDOW_S)]
        window[kind] += 1
        if not ok:
            self.errors[kind] += 1
            window["errors"] += 1


# ---------------------------------------------------------------------- setup


def provision(data_dir: Path, devices: int) -> tuple[CreatedNetwork, list[SimDevice]]:
    """A network, stores of 8 devices (a quarter of them kiosks), written to the database in
    transactions of a thousand devices."""
    settings = Settings(data_dir=data_dir)
    database, vault = open_storage(settings)
    network = create_network(database, vault, "fleet-load", engine=settings.engine)
    network_id = network.network_id
    with database.session() as session:
        merchant_id = tenants.create_merchant(session, network_id=network_id, name="m").id
    made: list[SimDevice] = []
    store_id = ""
    for start in range(0, devices, 1000):
        with database.session() as session:
            for index in range(start, min(devices, start + 1000)):
                if index % DEVICES_PER_STORE == 0:
                    store_id = tenants.create_store(session, merchant_id=merchant_id, name="s").id
                kiosk = index % DEVICES_PER_STORE < DEVICES_PER_STORE * KIOSK_SHARE
                made.append(_device(session, vault, network_id, merchant_id, store_id, kiosk))
    database.dispose()
    return network, made


def _device(
    session: Any, vault: Any, network_id: str, merchant_id: str, store_id: str, kiosk: bool
) -> SimDevice:
    """A device with its own secret and terminal key, as enrolment makes them."""
    device = register_device(session, vault, network_id=network_id, store_id=store_id, name=None)
    key = issue_device_key(session, network_id, device.device_id)
    secret = decode_secret(device.secret)
    return SimDevice(device.device_id, store_id, merchant_id, secret, key, kiosk)


def edge_templates() -> tuple[list[Path], list[str]]:
    """Faces to enrol, and the templates terminals compute on the device (base64)."""
    from facekey.pipeline import FacePipeline

    pipeline = FacePipeline.from_settings(Settings())
    enrol = sorted(LFW.glob("*_0001.jpg"))[:4]
    probes = sorted(LFW.glob("*.jpg"))
    templates = [
        base64.b64encode(pipeline.faces_in_bytes(p.read_bytes())[0].template.to_bytes()).decode()
        for p in probes
    ]
    return enrol, templates


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(data_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FACEKEY_DATA_DIR": str(data_dir)}
    command = [
        sys.executable,
        "-m",
        "facekey.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------- HTTP


async def http(
    port: int, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a new connection; (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


JSON = "application/json"


def _problem_type(answer: bytes) -> str:
    """The last segment of a problem+json answer's type, or "?"."""
    try:
        return str(json.loads(answer).get("type", "?")).rsplit("/", 1)[-1]
    except (ValueError, AttributeError):
        return "?"


def signed(
    device: SimDevice, method: str, path: str, body: bytes, content_type: str
) -> dict[str, str]:
    headers = signed_headers(
        device_id=device.device_id, secret=device.secret, method=method, path=path, body=body
    )
    return headers | {"Authorization": f"Bearer {device.api_key}", "Content-Type": content_type}


def multipart(fields: dict[str, str]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


class Load:
    """The simulated fleet."""

    def __init__(
        self,
        port: int,
        devices: list[SimDevice],
        templates: list[str],
        admin: str,
        args: argparse.Namespace,
    ) -> None:
        self.port = port
        self.devices = devices
        self.terminals = [d for d in devices if not d.kiosk]
        self.kiosks = [d for d in devices if d.kiosk]
        self.templates = templates
        self.admin = admin
        self.args = args
        self.tally = Tally()
        self.gate = asyncio.Semaphore(args.concurrency)
        self.tasks: set[asyncio.Task[None]] = set()
        self.sequence = 0
        models = [
            {"name": m.name, "version": m.version, "sha256": m.sha256} for m in installed_models()
        ]
        self.beat = {"software_version": "0.1.0", "models": models, "camera": "ok"}

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        body: bytes,
        headers: Callable[[], dict[str, str]],
    ) -> None:
        """One call as a device makes it: timed from the moment the device wants to send
        (waiting for one of the simulator's connection slots included), signed when it is
        sent (as a device signs), given up after ``--timeout`` seconds in all. A failure is
        labelled by its status and problem type (or the exception)."""
        t0 = time.perf_counter()
        timeout = self.args.timeout
        try:
            async with asyncio.timeout(timeout):
                async with self.gate:
                    status, answer = await http(self.port, method, path, body, headers())
            ok, label = 200 <= status < 300, str(status)
            if not ok:
                label += " " + _problem_type(answer)
        except TimeoutError:
            ok, label = False, f"gave up after {timeout:g} s"
        except OSError as exc:
            ok, label = False, type(exc).__name__
        self.tally.record(kind, (time.perf_counter() - t0) * 1000, ok, label)

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def heartbeat(self, device: SimDevice) -> None:
        body = json.dumps(self.beat | {"uptime_s": int(time.monotonic())}).encode()
        path = "/v1/fleet/heartbeat"
        await self.call(
            "heartbeat", "POST", path, body, lambda: signed(device, "POST", path, body, JSON)
        )

    async def checkout(self, device: SimDevice) -> None:
        self.sequence += 1
        fields = {
            "amount": str(random.randint(100, 9_000)),
            "currency": "EUR",
            "merchant_id": device.merchant_id,
            "store_id": device.store_id,
            "idempotency_key": f"load-{self.sequence}",
            "template": random.choice(self.templates),
        }
        body = multipart(fields)
        form = f"multipart/form-data; boundary={BOUNDARY}"
        await self.call(
            "checkout",
            "POST",
            "/v1/checkout",
            body,
            lambda: signed(device, "POST", "/v1/checkout", body, form),
        )

    async def screening(self, device: SimDevice) -> None:
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        screened = random.randint(0, 20)
        counts = {
            "hour": hour.isoformat(),
            "screened": screened,
            "referred": screened // 15,
            "failed": 1,
        }
        body = json.dumps(counts).encode()
        path = "/v1/fleet/screening-counts"
        await self.call(
            "screening", "POST", path, body, lambda: signed(device, "POST", path, body, JSON)
        )

    async def admin_call(self, kind: str, path: str) -> None:
        headers = {"Authorization": f"Bearer {self.admin}"} if kind != "metrics" else {}
        await self.call(kind, "GET", path, b"", lambda: headers)

    async def every(self, period: float, phase: float, make: Any, until: float) -> None:
        """Run ``make()`` every ``period`` s from ``phase`` until the monotonic time ``until``."""
        next_at = time.monotonic() + phase
        while True:
            await asyncio.sleep(max(0.0, min(next_at, until) - time.monotonic()))
            if next_at >= until:
                return
            self.spawn(make())
            next_at += period

    def checkout_rate(self, elapsed: float) -> float:
        peak = elapsed % self.args.peak_every < self.args.peak_s
        return self.args.checkout_rate * (self.args.peak_factor if peak else 1.0)

    async def checkouts(self, until: float) -> None:
        start = time.monotonic()
        while time.monotonic() < until:
            rate = self.checkout_rate(time.monotonic() - start)
            self.spawn(self.checkout(random.choice(self.terminals)))
            gap = random.expovariate(rate)  # at a low rate, often past the end: stop there
            await asyncio.sleep(min(gap, max(0.0, until - time.monotonic())))

    async def run(self) -> None:
        args = self.args
        until = time.monotonic() + args.seconds
        period = args.heartbeat_s
        loops = [
            self.every(period, period * i / len(self.devices), lambda d=d: self.heartbeat(d), until)
            for i, d in enumerate(self.devices)
        ]
        screening_period = 3600 / max(1e-9, args.screening_rate)
        loops.append(
            self.every(
                screening_period, 0.5, lambda: self.screening(random.choice(self.kiosks)), until
            )
        )
        loops.append(self.every(15, 1, lambda: self.admin_call("metrics", "/metrics"), until))
        loops.append(
            self.every(
                60, 2, lambda: self.admin_call("devices", "/v1/fleet/devices?limit=100"), until
            )
        )
        loops.append(self.checkouts(until))
        await asyncio.gather(*loops)
        while self.tasks:
            await asyncio.sleep(0.1)


# ---------------------------------------------------------------------- server sampling


class Sampler:
    """CPU (percent of one core, summed over the server's processes) and RSS every 5 s."""

    def __init__(self, pid: int, started: float) -> None:
        self.root = psutil.Process(pid)
        self.samples: list[dict[str, float]] = []
        self.started = started

    def processes(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def rss_mb(self) -> float:
        return sum(p.memory_info().rss for p in self.processes()) / 2**20

    async def run(self, stop: asyncio.Event) -> None:
        last = {p.pid: p.cpu_times() for p in self.processes()}
        last_t = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(WINDOW_S - (time.monotonic() - self.started) % WINDOW_S)
            now_t, cpu = time.monotonic(), 0.0
            for p in self.processes():
                times = p.cpu_times()
                before = last.get(p.pid)
                if before is not None:
                    cpu += (times.user + times.system) - (before.user + before.system)
                last[p.pid] = times
            self.samples.append(
                {
                    "t_s": round(now_t - self.started, 1),
                    "window": round((now_t - self.started) / WINDOW_S) - 1,
                    "cpu_s": round(cpu, 3),
                    "cpu_percent": round(100 * cpu / (now_t - last_t), 1),
                    "rss_mb": round(self.rss_mb(), 1),
                    "load1": os.getloadavg()[0],
                }
            )
            last_t = now_t


# ---------------------------------------------------------------------- main


def summary(load: Load, seconds: float) -> dict[str, Any]:
    kinds = {}
    for kind, values in sorted(load.tally.latencies.items()):
        cuts = statistics.quantiles(values, n=100) if len(values) > 1 else [values[0]] * 99
        kinds[kind] = {
            "count": len(values),
            "errors": load.tally.errors.get(kind, 0),
            "per_second": round(len(values) / seconds, 2),
            "p50_ms": round(statistics.median(values), 1),
            "p99_ms": round(cuts[98], 1),
        }
    return kinds


async def measure(
    port: int,
    pid: int,
    devices: list[SimDevice],
    templates: list[str],
    admin: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    load = Load(port, devices, templates, admin, args)
    sampler = Sampler(pid, load.tally.started)
    stop = asyncio.Event()
    rss_start = sampler.rss_mb()
    sampling = asyncio.create_task(sampler.run(stop))
    started = time.monotonic()
    await load.run()
    elapsed = time.monotonic() - started
    stop.set()
    await sampling
    kinds = summary(load, elapsed)
    cpu_s = sum(sample["cpu_s"] for sample in sampler.samples)
    answered = sum(kind["count"] for kind in kinds.values())
    return {
        "requests": sum(k["count"] for k in kinds.values()),
        "errors": sum(k["errors"] for k in kinds.values()),
        "seconds": round(elapsed, 1),
        "kinds": kinds,
        "statuses": dict(sorted(load.tally.statuses.items())),
        "server": {
            "rss_mb_start": round(rss_start, 1),
            "rss_mb_end": round(sampler.rss_mb(), 1),
            "samples": sampler.samples,
        },
        "windows_5s": [{"window": w, **c} for w, c in sorted(load.tally.windows.items())],
        # Per request of the mix (the kinds' shares are in "kinds"): run one kind alone to
        # price it (docs/fleet.md does).
        "server_cpu_s": round(cpu_s, 1),
        "server_cpu_ms_per_request": round(1000 * cpu_s / max(1, answered), 2),
    }


def enrol_faces(port: int, keys: dict[str, str], faces: list[Path]) -> None:
    import httpx

    consent = json.dumps({"purposes": ["payment"], "terms_version": "load", "channel": "bench"})
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        for face in faces:
            answer = client.post(
                "/v1/subjects",
                headers={"Authorization": f"Bearer {keys['enrol']}"},
                data={"consent": consent},
                files=[("images", (face.name, face.read_bytes(), "image/jpeg"))],
            )
            if answer.is_error:
                print(f"{face.name} not enrolled: {answer.json().get('detail')}", file=sys.stderr)


def enrol_devices(port: int, keys: dict[str, str], store_id: str, count: int) -> list[float]:
    """Provision ``count`` devices with one-time tokens, as a device does; ms each."""
    import httpx

    timings = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for _ in range(count):
            token = client.post(
                "/v1/fleet/enrolment-tokens",
                headers={"Authorization": f"Bearer {keys['admin']}"},
                json={"store_id": store_id},
            ).json()["token"]
            t0 = time.perf_counter()
            client.post("/v1/fleet/enrol", json={"token": token}).raise_for_status()
            timings.append((time.perf_counter() - t0) * 1000)
    return timings


def wait_ready(port: int, workers: int) -> None:
    import httpx

    seen: set[int] = set()
    deadline = time.monotonic() + 600
    while len(seen) < workers and time.monotonic() < deadline:
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                answer = client.get("/readyz")
            if answer.status_code == 200:
                seen.add(int(answer.json()["worker"]))
        except httpx.HTTPError:
            time.sleep(0.5)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--heartbeat-s", type=float, default=60)
    parser.add_argument("--checkout-rate", type=float, default=DAY_CHECKOUTS / (OPEN_HOURS * 3600))
    parser.add_argument("--peak-factor", type=float, default=3.0)
    parser.add_argument("--peak-every", type=float, default=120)
    parser.add_argument("--peak-s", type=float, default=30)
    parser.add_argument("--screening-rate", type=float, default=None, help="Count posts per hour.")
    parser.add_argument("--enrolments", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--timeout", type=float, default=15, help="A device gives up after.")
    return parser.parse_args()


def main() -> None:
    args = parse()
    args.out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fleet-load-") as folder:
        data_dir = Path(folder)
        t0 = time.perf_counter()
        network, devices = provision(data_dir, args.devices)
        provision_s = time.perf_counter() - t0
        kiosks = sum(d.kiosk for d in devices)
        if args.screening_rate is None:
            args.screening_rate = float(kiosks)  # each kiosk once an hour
        enrol, templates = edge_templates()
        port = free_port()
        server = start_server(data_dir, port, args.workers)
        try:
            wait_ready(port, args.workers)
            enrol_faces(port, network.api_keys, enrol)
            enrolments = enrol_devices(port, network.api_keys, devices[0].store_id, args.enrolments)
            result = asyncio.run(
                measure(port, server.pid, devices, templates, network.api_keys["admin"], args)
            )
        finally:
            server.terminate()
            server.wait(timeout=60)
    result |= {
        "machine": machine_info(),
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "devices": args.devices,
        "terminals": args.devices - kiosks,
        "kiosks": kiosks,
        "workers": args.workers,
        "provision_s": round(provision_s, 1),
        "enrol_ms": {"count": len(enrolments), "p50": round(statistics.median(enrolments), 1)}
        if enrolments
        else None,
        "rates": {
            "heartbeat_per_s": round(args.devices / args.heartbeat_s, 1),
            "checkout_per_s": round(args.checkout_rate, 2),
            "checkout_peak_per_s": round(args.checkout_rate * args.peak_factor, 2),
            "peak": f"{args.peak_s:.0f} s of every {args.peak_every:.0f} s",
            "screening_counts_per_s": round(args.screening_rate / 3600, 3),
        },
    }
    (args.out / "fleet.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("requests", "errors", "seconds", "kinds")}, indent=2))


if __name__ == "__main__":
    main()
