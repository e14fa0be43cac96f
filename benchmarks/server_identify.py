"""Identification at a 100k gallery: search + re-check, whole requests, 1 vs 2 workers.

    .venv/bin/python benchmarks/server_identify.py [--size 100000] [--enrolled 300]

Writes docs/server.md. The gallery holds ``--enrolled`` real LFW people enrolled through the
enrolment flow (first photo) plus generated subjects: real dlib templates of *other* LFW people
with within-person noise (cosine about 0.95 to their base), sealed and stored like real ones.
Probes are the enrolled people's second photos (250×250 JPEGs). One machine runs the server and
the load-generating client, so the client's own CPU use (small next to the face pipeline) is
included in the throughput figures.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from facekey.config import Settings
from facekey.errors import FaceError
from facekey.evaluation.datasets import labelled_images
from facekey.evaluation.embedding import embed_files
from facekey.evaluation.machine import machine_info
from facekey.flows.auth import Principal
from facekey.flows.consent import ConsentRequest
from facekey.flows.devices import add_device, add_merchant, add_store
from facekey.flows.enrol import EnrolRequest, enrol
from facekey.flows.faces import probe_face, protected
from facekey.flows.platform import Platform
from facekey.flows.protection import seal_vector
from facekey.flows.search import network_of, recheck_hits
from facekey.flows.tenancy import create_network
from facekey.security.api_keys import Scope, parse_token
from facekey.security.signing import decode_secret, signed_headers
from facekey.store.tables import Consent, GalleryChange, Subject, Template, new_id

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/lfw-view1/images"
CONSENT = ConsentRequest(purposes=["payment"], terms_version="bench", channel="bench")


def pick_people(images: Path, enrolled: int) -> tuple[list[list[Path]], list[Path]]:
    """People with ≥ 2 photos to enrol, and every photo of the others (distractor bases)."""
    paths, labels = labelled_images(images)
    by_person: dict[str, list[Path]] = {}
    for path, label in zip(paths, labels, strict=True):
        by_person.setdefault(label, []).append(path)
    multi = [p for p in by_person.values() if len(p) >= 2]
    chosen = multi[:: max(1, len(multi) // enrolled)][:enrolled]
    chosen_set = {p[0].parent for p in chosen}
    others = [p for ps in by_person.values() if ps[0].parent not in chosen_set for p in ps]
    return chosen, others


def enrol_real(
    platform: Platform, principal: Principal, people: list[list[Path]]
) -> list[list[Path]]:
    """Enrol each person's first photo; returns those the quality gate accepted."""
    accepted = []
    for photos in people:
        request = EnrolRequest(consent=CONSENT, images=[photos[0].read_bytes()])
        try:
            enrol(platform, principal, request)
        except FaceError:
            continue
        accepted.append(photos)
    return accepted


def distractors(platform: Platform, bases: list[Path], count: int, seed: int = 7) -> np.ndarray:
    embedded = embed_files(bases, platform.settings, workers=2)
    vectors = np.stack([e.template.vector for e in embedded if e.template is not None])
    rng = np.random.default_rng(seed)
    picked = vectors[rng.integers(0, len(vectors), count)]
    noise = rng.standard_normal(picked.shape).astype(np.float32) * (0.32 / np.sqrt(picked.shape[1]))
    out = picked + noise
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def store_generated(platform: Platform, network_id: str, vectors: np.ndarray) -> None:
    """Bulk-insert generated subjects, sealed like real ones (one transaction per chunk)."""
    network = network_of(platform, network_id)
    reader = platform.readers.get(network.engine)
    transform = platform.vault.transform(network, reader.info)
    info, key_name = reader.info, reader.engine_key
    for start in range(0, len(vectors), 5000):
        chunk = transform.apply(vectors[start : start + 5000])
        with platform.database.session() as session:
            rows = []
            for vector in chunk:
                subject_id = new_id()
                key, wrapped = platform.vault.new_subject_key(subject_id)
                subject = Subject(
                    id=subject_id,
                    network_id=network_id,
                    wrapped_data_key=wrapped,
                    kek_id=platform.vault.kek.key_id,
                )
                consent = Consent(
                    subject_id=subject_id,
                    purpose="payment",
                    terms_version="bench",
                    channel="bench",
                    granted_at=subject.created_at or None,
                )
                template = Template(
                    subject_id=subject_id,
                    network_id=network_id,
                    engine_id=info.id,
                    engine_version=info.version,
                    sealed_vector=seal_vector(
                        key, vector, subject_id=subject_id, engine_key=key_name
                    ),
                    quality=0.9,
                    source="enrolment",
                )
                rows.append((subject, consent, template))
            session.add_all([s for s, _, _ in rows])
            session.flush()
            session.add_all([c for _, c, _ in rows] + [t for _, _, t in rows])
            session.flush()
            session.add_all(
                GalleryChange(
                    network_id=network_id,
                    engine_key=key_name,
                    kind="add",
                    subject_id=t.subject_id,
                    template_id=t.id,
                )
                for _, _, t in rows
            )


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100)
    return {"p50": round(statistics.median(values), 3), "p99": round(cuts[98], 3)}


def search_latency(
    platform: Platform, network_id: str, probes: list[bytes]
) -> tuple[dict[str, float], float]:
    """In-process search + database re-check per probe (pipeline excluded)."""
    network = network_of(platform, network_id)
    reader = platform.readers.get(network.engine)
    transform = platform.vault.transform(network, reader.info)
    vectors = [protected(transform, probe_face(platform, network, p).face) for p in probes]
    gallery = platform.galleries.get(network_id, reader.engine_key)
    start = time.perf_counter()
    gallery.refresh()
    warm = time.perf_counter() - start
    timings = []
    for vector in vectors * 3:
        t0 = time.perf_counter()
        gallery.search(
            vector,
            5,
            accept=lambda hits: recheck_hits(platform, network_id, hits, purposes=("payment",)),
        )
        timings.append((time.perf_counter() - t0) * 1000)
    return percentiles(timings), warm


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, workers: int, cores: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FACEKEY_DATA_DIR": str(data_dir)}
        pin = ["taskset", "-c", cores] if cores else []
        self.process = subprocess.Popen(
            [
                *pin,
                sys.executable,
                "-m",
                "facekey.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.started = time.perf_counter()
        self._wait_ready(workers)

    def _wait_ready(self, workers: int) -> None:
        """Every worker warms its gallery before it takes traffic: wait until each answers."""
        deadline = time.monotonic() + 900
        seen: set[int] = set()
        while len(seen) < workers and time.monotonic() < deadline:
            try:
                with httpx.Client(base_url=self.url, timeout=5) as client:  # new connections
                    response = client.get("/readyz")
                if response.status_code == 200:
                    seen.add(int(response.json()["worker"]))
            except httpx.HTTPError:
                time.sleep(0.5)
            time.sleep(0.05)
        self.ready_after = time.perf_counter() - self.started

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def identify_once(client: httpx.Client, key: str, data: bytes) -> float:
    t0 = time.perf_counter()
    response = client.post(
        "/v1/identify",
        headers={"Authorization": f"Bearer {key}"},
        files={"image": ("p.jpg", data, "image/jpeg")},
        data={"purpose": "payment"},
    )
    response.raise_for_status()
    return (time.perf_counter() - t0) * 1000


def request_latency(server: Server, key: str, probes: list[bytes]) -> dict[str, float]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for data in probes[:5]:
            identify_once(client, key, data)
        return percentiles([identify_once(client, key, d) for d in probes])


def throughput(server: Server, key: str, probes: list[bytes], clients: int) -> float:
    lock = threading.Lock()
    queue = list(probes)

    def worker() -> int:
        done = 0
        # A new connection per request, so the kernel spreads them over the workers (a kept-
        # alive connection would stay with one worker, as behind no load balancer).
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=server.url, timeout=60, limits=fresh) as client:
            while True:
                with lock:
                    if not queue:
                        return done
                    data = queue.pop()
                identify_once(client, key, data)
                done += 1

    with ThreadPoolExecutor(clients) as pool:
        warm = [
            pool.submit(identify_once, httpx.Client(base_url=server.url), key, probes[0])
            for _ in range(clients)
        ]
        [w.result() for w in warm]
        start = time.perf_counter()
        total = sum(f.result() for f in [pool.submit(worker) for _ in range(clients)])
    return round(total / (time.perf_counter() - start), 2)


def make_terminal(platform: Platform, network_id: str) -> dict[str, str]:
    merchant = add_merchant(platform.database, network_id, "bench").merchant_id
    store = add_store(platform.database, network_id, merchant, "bench").store_id
    device = add_device(platform.database, platform.vault, network_id, store)
    return {
        "merchant_id": merchant,
        "store_id": store,
        "device_id": device.device_id,
        "secret": device.secret,
    }


def edge_templates(platform: Platform, probes: list[bytes]) -> list[str]:
    """What a terminal computes on the device: the probe's template, base64."""
    return [base64.b64encode(probe_face(platform, p).template.to_bytes()).decode() for p in probes]


def checkout_once(
    client: httpx.Client,
    key: str,
    terminal: dict[str, str],
    number: int,
    image: bytes | None,
    template: str | None,
) -> float:
    fields = {
        "amount": "1250",
        "currency": "EUR",
        "merchant_id": terminal["merchant_id"],
        "store_id": terminal["store_id"],
        "idempotency_key": f"bench-{number}",
    }
    files = []
    if image is not None:
        # A new capture for every call (the same bytes twice would be declined as a replay).
        files.append(("image", ("p.jpg", image + f"{number}".encode(), "image/jpeg")))
    if template is not None:
        fields["template"] = template
    request = client.build_request("POST", "/v1/checkout", data=fields, files=files or None)
    body = request.read()
    headers = signed_headers(
        device_id=terminal["device_id"],
        secret=decode_secret(terminal["secret"]),
        method="POST",
        path="/v1/checkout",
        body=body,
    )
    request.headers.update(headers | {"Authorization": f"Bearer {key}"})
    t0 = time.perf_counter()
    response = client.send(request)
    response.raise_for_status()
    return (time.perf_counter() - t0) * 1000


def checkout_latency(
    server: Server,
    key: str,
    terminal: dict[str, str],
    probes: list[bytes],
    templates: list[str],
) -> dict[str, dict[str, float]]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        count = 0

        def run(images: list[bytes | None], tmpl: list[str | None]) -> list[float]:
            nonlocal count
            out = []
            for image, template in zip(images, tmpl, strict=True):
                count += 1
                out.append(checkout_once(client, key, terminal, count, image, template))
            return out

        n = len(probes)
        run(probes[:5], [None] * 5)
        with_image = run(list(probes), [None] * n)
        with_template = run([None] * len(templates), list(templates))
    return {"image": percentiles(with_image), "edge_template": percentiles(with_template)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--enrolled", type=int, default=300)
    parser.add_argument("--images", type=Path, default=LFW)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="facekey-bench-"))
    settings = Settings(data_dir=data_dir)
    platform = Platform.open(settings)
    created = create_network(
        platform.database, platform.vault, "bench", engine=platform.settings.engine
    )
    keys = created.api_keys
    admin = Principal(parse_token(keys["admin"]).key_id, created.network_id, Scope.ADMIN)
    people, others = pick_people(args.images, args.enrolled)
    t0 = time.perf_counter()
    people = enrol_real(platform, admin, people)
    enrol_s = time.perf_counter() - t0
    store_generated(
        platform, created.network_id, distractors(platform, others, args.size - len(people))
    )
    probes = [p[1].read_bytes() for p in people]
    probes = (probes * (args.requests // len(probes) + 1))[: args.requests]
    search, warm_s = search_latency(platform, created.network_id, probes[: len(people)])
    terminal = make_terminal(platform, created.network_id)
    templates = edge_templates(platform, probes)
    platform.close()
    result: dict[str, Any] = {
        "gallery": args.size,
        "enrolled_real": len(people),
        "enrol_ms_mean": round(1000 * enrol_s / len(people), 1),
        "gallery_load_s": round(warm_s, 1),
        "search_and_recheck_ms": search,
    }
    one = Server(data_dir, 1)
    result["server_ready_s_1_worker"] = round(one.ready_after, 1)
    result["request_ms_1_worker"] = request_latency(one, keys["terminal"], probes)
    result["checkout_ms_1_worker"] = checkout_latency(
        one, keys["terminal"], terminal, probes, templates
    )
    result["requests_per_s_1_worker_unpinned"] = throughput(one, keys["terminal"], probes, 2)
    one.stop()
    # One worker is one core's worth of serving: pin it (its thread pool otherwise overlaps
    # database and HTTP work with the pipeline on the second core), and the client to the other.
    one = Server(data_dir, 1, cores="0")
    os.sched_setaffinity(0, {1})
    result["requests_per_s"] = {"1": throughput(one, keys["terminal"], probes, 2)}
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    one.stop()
    two = Server(data_dir, 2)
    result["requests_per_s"]["2"] = throughput(two, keys["terminal"], probes, 4)
    two.stop()
    result["scaling_2_vs_1"] = round(
        result["requests_per_s"]["2"] / result["requests_per_s"]["1"], 2
    )
    result["machine"] = machine_info()
    (ROOT / "docs/server.md").write_text(render(result), encoding="utf-8")
    print(json.dumps(result, indent=2))


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    return "\n".join(
        [
            "# Identification and checkout at a 100k gallery",
            "",
            f"- date: {m['date']}; command: `{m['command']}`",
            f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; SQLite",
            f"- gallery: {r['gallery']:,} templates ({r['enrolled_real']} real LFW enrolments,"
            " the rest generated from real templates of other people plus noise); FAISS HNSW"
            " above 50k",
            f"- enrolment through the flow: {r['enrol_ms_mean']} ms per person (mean, incl."
            " duplicate search); loading the gallery (decrypt + index build): "
            f"{r['gallery_load_s']} s",
            "",
            "| measure | p50 | p99 | target |",
            "|---|---|---|---|",
            f"| search + database re-check (ms) | {r['search_and_recheck_ms']['p50']} | "
            f"{r['search_and_recheck_ms']['p99']} | p99 ≤ 5 |",
            f"| whole `POST /v1/identify`, 250×250 JPEG, 1 worker (ms) | "
            f"{r['request_ms_1_worker']['p50']} | {r['request_ms_1_worker']['p99']} | p50 ≤ 200 |",
            f"| whole `POST /v1/checkout` with an image, 1 worker (ms) | "
            f"{r['checkout_ms_1_worker']['image']['p50']} | "
            f"{r['checkout_ms_1_worker']['image']['p99']} | p50 ≤ 250 |",
            f"| whole `POST /v1/checkout` with an edge template, 1 worker (ms) | "
            f"{r['checkout_ms_1_worker']['edge_template']['p50']} | "
            f"{r['checkout_ms_1_worker']['edge_template']['p99']} | p50 ≤ 30 |",
            "",
            "Checkout calls are signed; at this gallery size the policy answers step_up"
            " (face-only approval is out of reach at 100k, see docs/risk-policy.md), so the time"
            " is that of the first call of a checkout.",
            "",
            "| workers | identify requests/s |",
            "|---|---|",
            *(f"| {n} | {v} |" for n, v in r["requests_per_s"].items()),
            "",
            f"One worker on one core (the client on the other): {r['requests_per_s']['1']}"
            " requests/s; unpinned, one worker's thread pool spreads over both cores:"
            f" {r['requests_per_s_1_worker_unpinned']} requests/s.",
            "",
            f"Two workers give {r['scaling_2_vs_1']}× one (target ≥ 1.8×). The client that makes "
            "the load runs on the same two cores.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
