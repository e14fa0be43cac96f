"""The gallery at 100k and 1M templates: docs/scale.md.

    .venv/bin/python benchmarks/gallery_scale.py            # everything, then docs/scale.md
    .venv/bin/python benchmarks/gallery_scale.py --only run-1000000-256 --only render

Steps (each writes out/scale/<step>/…; ``render`` writes docs/scale.md from whatever is there):

* ``run-N-D``: ``facekey bench gallery`` at N templates of D dimensions, with real LFW
  embeddings as the enrolled mates and probes (benchmarks/lfw_embeddings.py: dlib for 128-d,
  face-reid-0095 run with onnxruntime for 256-d) and hard distractors (a full-covariance
  Gaussian fitted to them); the database and the snapshot are kept for the next steps;
* ``sweep-N-D[-S]``: recall@1 and latency of the kept snapshot's index at several efSearch
  values, and of the same templates split into S shards (default 2; 1: none) searched in
  parallel threads and merged (compare at equal recall);
* ``milvus-N-D``: the same gallery and probes in milvus-lite (HNSW), beside FAISS;
* ``identify-N``: whole ``POST /v1/identify`` with a 250×250 JPEG on ``facekey serve`` (dlib,
  128-d: the engine this tree ships), the gallery loaded through the bulk path.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import faiss
import numpy as np

from facekey.config import Settings
from facekey.evaluation.gallery_scale import (
    BenchConfig,
    RealSet,
    exact_top1,
    make_data,
    people_rows,
)
from facekey.evaluation.gallery_scale import run_gallery_bench as run_bench
from facekey.evaluation.machine import machine_info
from facekey.gallery.frozen import BaseSpec, FrozenGallery
from facekey.gallery.index import limit_faiss_threads
from lfw_embeddings import load_or_make

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out/scale"
EMBEDDINGS = ROOT / "out/embeddings"
DOCS = ROOT / "docs/scale.md"
LFW = ROOT.parent / "shared/data/lfw-view1/images"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def step_run(size: int, dimension: int) -> dict[str, Any]:
    real = RealSet.load(load_or_make(dimension, EMBEDDINGS))
    config = BenchConfig(size, OUT / f"run-{size}-{dimension}", dimension, real=real, keep=True)
    before = load_average()
    result = run_bench(config)
    result["load_average"] = {"before": before, "after": load_average()}
    (config.out_dir / "gallery.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def step_workers(size: int, dimension: int) -> dict[str, Any]:
    """Start the two workers again on a kept run (starts, search, memory); its bulk-load and
    rebuild figures stay as they were measured."""
    import shutil

    from sqlalchemy import select

    from facekey.evaluation.gallery_scale import measure_workers
    from facekey.flows.platform import open_storage
    from facekey.store.tables import Network, Template

    data = make_data(size, dimension, RealSet.load(load_or_make(dimension, EMBEDDINGS)))
    truth = exact_top1(data.gallery, data.probes)
    run = OUT / f"run-{size}-{dimension}"
    shm = Path("/dev/shm") / f"facekey-bench-{os.getpid()}"
    shm.mkdir(mode=0o700)
    settings = Settings(data_dir=run / "work/data", shared_index_dir=shm, snapshot_interval_s=0)
    database, _ = open_storage(settings)
    with database.session() as session:
        network_id = session.scalars(select(Network.id)).one()
        owners = np.array(list(session.scalars(select(Template.subject_id).order_by(Template.id))))
    database.dispose()
    before = load_average()
    try:
        measured = measure_workers(
            settings, network_id, f"bench-{dimension}:1", data, truth, owners, work=run / "work"
        )
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    result = json.loads((run / "gallery.json").read_text())
    result.pop("private_mb_per_worker", None)
    result |= measured
    result["workers_measured"] = {
        "date": machine_info()["date"],
        "load_average": {"before": before, "after": load_average()},
    }
    (run / "gallery.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def kept_gallery(size: int, dimension: int) -> tuple[FrozenGallery, Any, np.ndarray]:
    """The kept snapshot's index (opened privately), the transform and the subjects by row."""
    from facekey.flows.galleries import snapshot_store
    from facekey.flows.platform import open_storage
    from facekey.store.tables import Network

    work = OUT / f"run-{size}-{dimension}" / "work"
    settings = Settings(data_dir=work / "data", shared_index_dir=None)
    database, vault = open_storage(settings)
    with database.session() as session:
        network = session.query(Network).one()
        session.expunge(network)
    key = f"bench-{dimension}:1"
    store = snapshot_store(settings, database, vault, dimension)
    assert store is not None
    restored = store.restore(network_id=network.id, engine_key=key)
    assert restored is not None, "run the run step first (it keeps the snapshot)"
    transform = vault.transform_for(network, key, dimension)
    database.dispose()
    return restored[1], transform, restored[1].subject_ids


def timed(
    search: Callable[[np.ndarray], int], probes: np.ndarray
) -> tuple[np.ndarray, list[float]]:
    top = np.empty(len(probes), dtype=np.int64)
    times = []
    for row, probe in enumerate(probes):
        start = time.perf_counter()
        top[row] = search(probe[None])
        times.append((time.perf_counter() - start) * 1000)
    return top, times


def step_sweep(size: int, dimension: int, shards: int = 2) -> dict[str, Any]:
    limit_faiss_threads(1)
    frozen, transform, _ = kept_gallery(size, dimension)
    real = RealSet.load(load_or_make(dimension, EMBEDDINGS))
    data = make_data(size, dimension, real)
    probes = transform.apply(data.probes)
    vectors = frozen.vectors(np.arange(frozen.stored, dtype=np.int64))
    truth = exact_top1(vectors, probes)
    rows = []
    for ef in (64, 128, 256, 384, 512):
        frozen.index.hnsw.efSearch = ef
        top, times = timed(lambda p: int(frozen.index.search(p, 10)[1][0, 0]), probes)
        rows.append(_row("one index", ef, top == truth, times, data.genuine))
    if shards > 1:
        rows += _sharded(vectors, probes, truth, data.genuine, shards, BaseSpec())
    return {"size": size, "dimension": dimension, "rows": rows, "load_average": load_average()}


def step_alternatives(size: int, dimension: int) -> dict[str, Any]:
    """Other index kinds on the kept run's templates: a denser HNSW graph, IVF-Flat."""
    limit_faiss_threads(1)
    frozen, transform, _ = kept_gallery(size, dimension)
    data = make_data(size, dimension, RealSet.load(load_or_make(dimension, EMBEDDINGS)))
    probes = transform.apply(data.probes)
    vectors = frozen.vectors(np.arange(frozen.stored, dtype=np.int64))
    truth = exact_top1(vectors, probes)
    dense = faiss.IndexHNSWFlat(dimension, 48, faiss.METRIC_INNER_PRODUCT)
    dense.hnsw.efConstruction = 200
    quantizer = faiss.IndexFlatIP(dimension)  # kept referenced: the IVF index borrows it
    ivf = faiss.IndexIVFFlat(quantizer, dimension, 1024, faiss.METRIC_INNER_PRODUCT)
    rows = []
    for name, index, knob, values in (
        ("HNSW M48 efC200", dense, "efSearch", (128, 256, 512)),
        ("IVF-Flat 1024 lists", ivf, "nprobe", (32, 64, 128)),
    ):
        started = time.perf_counter()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        if not index.is_trained:
            index.train(vectors)
        index.add(vectors)
        faiss.omp_set_num_threads(1)
        build_s = round(time.perf_counter() - started, 1)
        for value in values:
            if knob == "efSearch":
                index.hnsw.efSearch = value
            else:
                index.nprobe = value
            top, times = timed(lambda p, ix=index: int(ix.search(p, 10)[1][0, 0]), probes)
            rows.append(_row(name, value, top == truth, times, data.genuine) | {"build_s": build_s})
    return {"size": size, "dimension": dimension, "rows": rows, "load_average": load_average()}


def _sharded(
    vectors: np.ndarray,
    probes: np.ndarray,
    truth: np.ndarray,
    genuine: int,
    count: int,
    spec: BaseSpec,
) -> list[dict[str, Any]]:
    bounds = np.linspace(0, len(vectors), count + 1).astype(int)
    started = time.perf_counter()
    parts = []
    for low, high in itertools.pairwise(bounds):
        index = spec.new_index(vectors.shape[1], high - low)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        index.add(vectors[low:high])
        faiss.omp_set_num_threads(1)
        parts.append((int(low), index))
    build_s = time.perf_counter() - started
    pool = ThreadPoolExecutor(count)

    def search(probe: np.ndarray) -> int:
        found = list(pool.map(lambda part: part[1].search(probe, 10), parts))
        best = max(range(count), key=lambda i: found[i][0][0, 0])
        return parts[best][0] + int(found[best][1][0, 0])

    rows = []
    for ef in (32, 64, 128, 256, 384):
        for _, index in parts:
            index.hnsw.efSearch = ef
        top, times = timed(search, probes)
        rows.append(_row(f"{count} shards, {count} threads", ef, top == truth, times, genuine))
    rows[0]["build_s"] = round(build_s, 1)
    return rows


def _row(name: str, ef: int, same: np.ndarray, times: list[float], genuine: int) -> dict[str, Any]:
    return {
        "index": name,
        "ef_search": ef,
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
        "recall_at_1": round(float(same.mean()), 4),
        "recall_genuine": round(float(same[:genuine].mean()), 4),
        "recall_strangers": round(float(same[genuine:].mean()), 4),
    }


def step_milvus(size: int, dimension: int) -> dict[str, Any]:
    import shutil

    from facekey.gallery.milvus import MilvusGallery, connect

    real = RealSet.load(load_or_make(dimension, EMBEDDINGS))
    data = make_data(size, dimension, real)
    truth = exact_top1(data.gallery, data.probes)
    folder = OUT / f"milvus-{size}-{dimension}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder / "gallery.db", ignore_errors=True)  # milvus-lite keeps a folder
    client = connect(str(folder / "gallery.db"))
    gallery = MilvusGallery(client, network_id="bench", engine_key="bench:1", dimension=dimension)
    started = time.perf_counter()
    gallery.add(np.arange(size), [f"s{i}" for i in range(size)], data.gallery)
    load_s = time.perf_counter() - started
    every = 4  # a quarter of the probes (genuine and strangers alike): milvus-lite is slow
    probes, expected = data.probes[::every], truth[::every]
    top, times = timed(lambda p: int(gallery.search(p[0], 10)[0].subject_id[1:]), probes)
    client.close()
    genuine = len(range(0, data.genuine, every))
    row = _row("milvus-lite HNSW M32 efC200, ef 256", 256, top == expected, times, genuine)
    row["probes"] = len(probes)
    return {
        "size": size,
        "dimension": dimension,
        "load_s": round(load_s, 1),
        **row,
        "load_average": load_average(),
    }


#: The engine whose templates have each dimension (the real embeddings are that engine's).
ENGINE_OF_DIMENSION: Final = {128: "dlib-resnet-v1", 256: "face-reid-0095"}


def step_identify(size: int, dimension: int) -> dict[str, Any]:
    """Whole POST /v1/identify on `facekey serve` at ``size`` templates, with the engine of
    ``dimension`` (128: dlib-resnet-v1, 256: face-reid-0095, the default)."""
    import shutil

    from facekey.engines.registry import load_engine
    from facekey.flows.bulk_load import load_templates
    from facekey.flows.platform import open_storage
    from facekey.flows.tenancy import create_network
    from server_identify import Server, request_latency

    real = RealSet.load(load_or_make(dimension, EMBEDDINGS))
    with np.load(load_or_make(dimension, EMBEDDINGS)) as saved:
        names = [str(n) for n in saved["paths"]]
    data = make_data(size, dimension, real)
    pairs = [rows for rows in people_rows(real.labels).values() if len(rows) >= 2]
    images = [LFW / real.labels[r[1]] / names[r[1]] for r in pairs]
    work = OUT / f"identify-{size}-{dimension}" / "work"
    shutil.rmtree(work, ignore_errors=True)
    settings = Settings(data_dir=work, engine=ENGINE_OF_DIMENSION[dimension])
    database, vault = open_storage(settings)
    created = create_network(database, vault, "identify-bench", engine=settings.engine)
    info = load_engine(settings.engine, settings).info
    load_templates(database, vault, created.network_id, info, data.gallery)
    database.dispose()
    shared = Path("/dev/shm") / f"facekey-identify-{os.getpid()}"
    shared.mkdir(mode=0o700, exist_ok=True)
    os.environ["FACEKEY_SHARED_INDEX_DIR"] = str(shared)  # the servers' one copy, removed after
    before = load_average()
    first = Server(work, 1)  # rebuilds from the database and writes the first snapshot
    first.stop()
    server = Server(work, 1)  # from the snapshot
    probes = [path.read_bytes() for path in images[:300]]
    latency = request_latency(server, created.api_keys["terminal"], probes)
    server.stop()
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(shared, ignore_errors=True)
    return {
        "size": size,
        "dimension": dimension,
        "engine": f"{info.id}:{info.version}",
        "identify_ms": latency,
        "serve_ready_s_rebuild": round(first.ready_after, 1),
        "serve_ready_s_snapshot": round(server.ready_after, 1),
        "requests": len(probes),
        "load_average": {"before": before, "after": load_average()},
    }


STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "alternatives": step_alternatives,
    "workers": step_workers,
    "identify": step_identify,
    "run": step_run,
    "sweep": step_sweep,
    "milvus": step_milvus,
}
DEFAULT = [
    "run-100000-256",
    "sweep-100000-256",
    "alternatives-100000-256",
    "milvus-100000-256",
    "identify-100000-128",
    "run-1000000-256",
    "sweep-1000000-256-1",  # shards measured at 100k: building them at 1M doubles the run
    "render",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", help="Steps to run (default: all, in order).")
    args = parser.parse_args()
    for step in args.only or DEFAULT:
        if step == "render":
            from scale_report import render

            DOCS.write_text(render(OUT, machine_info()), encoding="utf-8")
            print(DOCS)
            continue
        name, *numbers = step.split("-")  # e.g. sweep-1000000-256-1: no shards (1 part)
        result = STEPS[name](*(int(n) for n in numbers))
        if name != "workers":  # that step rewrites its run's gallery.json
            (OUT / step).mkdir(parents=True, exist_ok=True)
            (OUT / step / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
