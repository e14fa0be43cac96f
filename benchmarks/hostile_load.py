"""Ordinary traffic with and without one hostile large image per second (loopback, bounded).

    .venv/bin/python benchmarks/hostile_load.py [--seconds 40] [--rate 6] [--workers 2]

Writes docs/hostile-load.md and .json. A server (``facekey serve --workers 2``) on loopback
holds real LFW people enrolled through the enrolment flow. Three phases of ``--seconds`` each
send ordinary requests at a fixed rate (open loop: a request starts at its scheduled time
whether or not earlier ones have finished): identify (half), verify and signed checkout with an
image (a quarter each), all 250×250 JPEGs. In the middle phase one hostile image a second goes
to identify besides: the review's 6000×6000 JPEG of half a megabyte, a 12-megapixel progressive
JPEG, a 2048×2048 PNG (the largest accepted of each kind), and three that must be refused
quickly (a 48-megapixel JPEG, a PNG declaring 900 megapixels, a JPEG with 100 scans).

Reported: the ordinary requests' p50/p99 per phase, the hostile requests' statuses and times,
and the workers' resident memory (sampled every 0.2 s) before, at its peak during, and after
the hostile phase. The hostile image must not move the ordinary p99 nor leave the workers
larger than they were.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import struct
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from facekey.config import Settings
from facekey.errors import FaceError
from facekey.evaluation.datasets import labelled_images
from facekey.evaluation.machine import machine_info
from facekey.flows.auth import Principal
from facekey.flows.consent import ConsentRequest
from facekey.flows.enrol import EnrolRequest, enrol
from facekey.flows.platform import Platform
from facekey.flows.tenancy import create_network
from facekey.security.api_keys import Scope, parse_token
from server_identify import Server, checkout_once, make_terminal, percentiles

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/lfw-view1/images"
CONSENT = ConsentRequest(purposes=["payment"], terms_version="bench", channel="bench")


def hostile_images(face: Path) -> list[tuple[str, bytes]]:
    """Named hostile images, the accepted ones first (largest of their kind), then refused."""
    image = Image.open(face).convert("RGB")

    def encode(size: tuple[int, int], fmt: str, **kwargs: Any) -> bytes:
        buffer = io.BytesIO()
        image.resize(size, Image.Resampling.BILINEAR).save(buffer, fmt, **kwargs)
        return buffer.getvalue()

    jpeg = encode((400, 400), "JPEG", quality=80, progressive=True)
    comment = b"\xff\xda" * 100
    scans = jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]
    return [
        ("jpeg 6000×6000 q40 (accepted)", encode((6000, 6000), "JPEG", quality=40)),
        (
            "progressive jpeg 4000×3000 (accepted)",
            encode((4000, 3000), "JPEG", quality=90, progressive=True),
        ),
        ("png 2048×2048 (accepted)", encode((2048, 2048), "PNG")),
        ("jpeg 8000×6000 (refused)", encode((8000, 6000), "JPEG", quality=30)),
        ("png declaring 30000×30000 (refused)", _png_declaring(30000, 30000)),
        ("jpeg with 100 scans (refused)", scans),
    ]


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


@dataclass
class People:
    subjects: list[str]
    probes: list[bytes]  # second photos, same order as subjects


def enrol_people(platform: Platform, admin: Principal, images: Path, count: int) -> People:
    paths, labels = labelled_images(images)
    by_person: dict[str, list[Path]] = {}
    for path, label in zip(paths, labels, strict=True):
        by_person.setdefault(label, []).append(path)
    subjects: list[str] = []
    probes: list[bytes] = []
    for photos in [p for p in by_person.values() if len(p) >= 2]:
        if len(subjects) == count:
            break
        try:
            result = enrol(
                platform, admin, EnrolRequest(consent=CONSENT, images=[photos[0].read_bytes()])
            )
        except FaceError:
            continue
        subjects.append(result.subject_id)
        probes.append(photos[1].read_bytes())
    return People(subjects, probes)


@dataclass
class Memory:
    """Resident memory of the server's worker processes, sampled in the background."""

    server_pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def workers_mb(self) -> int:
        return sum(_rss_kb(pid) for pid in _children(self.server_pid)) // 1024

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.samples.append((time.monotonic(), self.workers_mb()))

    def peak_between(self, start: float, end: float) -> int:
        return max((mb for t, mb in self.samples if start <= t <= end), default=0)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Load:
    """Sends the ordinary mix at a fixed rate; each call's latency is kept by kind."""

    def __init__(self, server: Server, key: str, terminal: dict[str, str], people: People):
        self.server, self.key, self.terminal, self.people = server, key, terminal, people
        self.rng = random.Random(7)
        self.number = 0
        self.lock = threading.Lock()

    def run(self, seconds: float, rate: float) -> dict[str, list[float]]:
        latencies: dict[str, list[float]] = {"identify": [], "verify": [], "checkout": []}
        errors: Counter[str] = Counter()
        start = time.perf_counter()
        total = int(seconds * rate)
        with (
            httpx.Client(base_url=self.server.url, timeout=60) as client,
            ThreadPoolExecutor(16) as pool,
        ):
            futures = []
            for i in range(total):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(self._one, client, latencies, errors))
            [f.result() for f in futures]
        if errors:
            raise RuntimeError(f"ordinary requests failed: {dict(errors)}")
        return latencies

    def _one(
        self, client: httpx.Client, latencies: dict[str, list[float]], errors: Counter[str]
    ) -> None:
        with self.lock:
            self.number += 1
            number = self.number
            pick = self.rng.random()
            who = self.rng.randrange(len(self.people.subjects))
        probe = self.people.probes[who]
        auth = {"Authorization": f"Bearer {self.key}"}
        files = {"image": ("p.jpg", probe, "image/jpeg")}
        t0 = time.perf_counter()
        try:
            if pick < 0.5:
                kind = "identify"
                response = client.post(
                    "/v1/identify", headers=auth, files=files, data={"purpose": "payment"}
                )
                response.raise_for_status()
            elif pick < 0.75:
                kind = "verify"
                subject = self.people.subjects[who]
                response = client.post(
                    f"/v1/subjects/{subject}/verify",
                    headers=auth,
                    files=files,
                    data={"purpose": "payment"},
                )
                response.raise_for_status()
            else:
                kind = "checkout"
                checkout_once(client, self.key, self.terminal, number, probe, None)
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
            return
        latencies[kind].append((time.perf_counter() - t0) * 1000)


def hostile(
    server: Server, key: str, images: list[tuple[str, bytes]], stop: threading.Event
) -> list[dict[str, Any]]:
    """One hostile image a second to identify, round robin, until ``stop``."""
    sent = []
    with httpx.Client(base_url=server.url, timeout=120) as client:
        number = 0
        while not stop.is_set():
            name, data = images[number % len(images)]
            number += 1
            t0 = time.perf_counter()
            response = client.post(
                "/v1/identify",
                headers={"Authorization": f"Bearer {key}"},
                files={"image": ("h.img", data, "application/octet-stream")},
                data={"purpose": "payment"},
            )
            elapsed = time.perf_counter() - t0
            sent.append({"image": name, "status": response.status_code, "ms": elapsed * 1000})
            stop.wait(max(0.0, 1.0 - elapsed))
    return sent


def summarise(latencies: dict[str, list[float]]) -> dict[str, Any]:
    every = [v for values in latencies.values() for v in values]
    return {"all": percentiles(every), "count": len(every)} | {
        kind: percentiles(values) for kind, values in latencies.items() if len(values) > 1
    }


def run_phases(
    server: Server,
    terminal_key: str,
    terminal: dict[str, str],
    people: People,
    images: list[tuple[str, bytes]],
    args: argparse.Namespace,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, int], list[float]]:
    """The three phases against a started server: their samples, the hostile attempts, the
    workers' memory (after warming up, before and at the peak of the attack, after) and the
    machine's load average at the start and the end."""
    memory = Memory(server.process.pid)
    try:
        load = Load(server, terminal_key, terminal, people)
        load.run(5, args.rate)  # warm every worker's pipeline and gallery
        memory.start()
        start_mb = memory.workers_mb()
        load_before = os.getloadavg()[0]
        quiet = load.run(args.seconds, args.rate)
        before_mb = memory.workers_mb()
        stop = threading.Event()
        with ThreadPoolExecutor(1) as side:
            started = time.monotonic()
            attacks = side.submit(hostile, server, terminal_key, images, stop)
            under_attack = load.run(args.seconds, args.rate)
            stop.set()
            sent = attacks.result()
            ended = time.monotonic()
        peak_mb = memory.peak_between(started, ended)
        after = load.run(args.seconds, args.rate)
        after_mb = memory.workers_mb()
    finally:
        memory.stop()
        server.stop()
    phases = {"quiet": quiet, "hostile": under_attack, "after": after}
    rss = {"start": start_mb, "before": before_mb, "peak_under_attack": peak_mb, "after": after_mb}
    return phases, sent, rss, [round(load_before, 2), round(os.getloadavg()[0], 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=6.0, help="ordinary requests per second")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--enrolled", type=int, default=40, help="real people enrolled")
    parser.add_argument("--images", type=Path, default=LFW, help="LFW-style image folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="report folder")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="facekey-hostile-"))
    platform = Platform.open(Settings(data_dir=data_dir))
    created = create_network(
        platform.database, platform.vault, "hostile", engine=platform.settings.engine
    )
    keys = created.api_keys
    admin = Principal(parse_token(keys["admin"]).key_id, created.network_id, Scope.ADMIN)
    people = enrol_people(platform, admin, args.images, args.enrolled)
    terminal = make_terminal(platform, created.network_id)
    platform.close()
    images = hostile_images(next(args.images.glob("*/*.jpg")))

    server = Server(data_dir, args.workers)
    phases, sent, rss, load_average = run_phases(
        server, keys["terminal"], terminal, people, images, args
    )

    by_image: dict[str, dict[str, Any]] = {}
    for attempt in sent:
        entry = by_image.setdefault(attempt["image"], {"statuses": Counter(), "ms": []})
        entry["statuses"][attempt["status"]] += 1
        entry["ms"].append(attempt["ms"])
    result = {
        "machine": machine_info(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "benchmarks/hostile_load.py "
        f"--seconds {args.seconds:g} --rate {args.rate:g} --workers {args.workers}",
        "enrolled": len(people.subjects),
        "phases": {name: summarise(phase) for name, phase in phases.items()},
        "hostile_images": {
            name: {"statuses": dict(e["statuses"]), "ms_max": round(max(e["ms"]), 1)}
            for name, e in by_image.items()
        },
        "load_average": load_average,
        "workers_rss_mb": rss,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hostile-load.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "hostile-load.md").write_text(report(result))
    print(json.dumps(result["phases"], indent=2))


def report(result: dict[str, Any]) -> str:
    machine = result["machine"]
    phases = result["phases"]
    rss = result["workers_rss_mb"]
    lines = [
        "# Ordinary requests beside hostile large images",
        "",
        f"- date: {result['date']}; command: `{result['command']}`",
        f"- machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; "
        f"loopback, client and server on the same cores; {result['enrolled']} people enrolled; "
        f"the machine's load average {result['load_average'][0]} at the start and "
        f"{result['load_average'][1]} at the end (other work on it moves the latencies)",
        "- ordinary mix: identify ½, verify ¼, signed checkout with an image ¼ (250×250 JPEGs), "
        "open loop at a fixed rate; hostile phase: one image a second to identify besides",
        "",
        "| phase | requests | p50 ms | p99 ms | identify p99 | verify p99 | checkout p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, phase in phases.items():
        every = phase["all"]
        lines.append(
            f"| {name} | {phase['count']} | {every['p50']:.0f} | {every['p99']:.0f} | "
            + " | ".join(
                f"{phase[k]['p99']:.0f}" if k in phase else "–"
                for k in ("identify", "verify", "checkout")
            )
            + " |"
        )
    lines += [
        "",
        "| hostile image | answers | slowest answer ms |",
        "|---|---|---|",
    ]
    for name, entry in result["hostile_images"].items():
        statuses = ", ".join(f"{n}× {s}" for s, n in sorted(entry["statuses"].items()))
        lines.append(f"| {name} | {statuses} | {entry['ms_max']:.0f} |")
    lines += [
        "",
        f"Workers' resident memory (all workers together): {rss['start']} MB after warming up, "
        f"{rss['before']} MB after the quiet phase (ordinary traffic alone: "
        f"{rss['before'] - rss['start']:+} MB), {rss['peak_under_attack']} MB at its peak "
        f"during the hostile phase, {rss['after']} MB after the last phase "
        f"({rss['after'] - rss['before']:+} MB over two more phases; target: at most 200 MB "
        "more per image being decoded, and no lasting growth from the hostile images).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
