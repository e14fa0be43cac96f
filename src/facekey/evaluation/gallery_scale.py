"""Gallery scale: a network of N templates loaded through the bulk path, then measured as
server workers see it (``facekey bench gallery``; ``benchmarks/gallery_scale.py`` writes
docs/scale.md from the same code).

The gallery: the first image of every person of a real set with at least two (the enrolled
mates), then distractors drawn from a full-covariance Gaussian fitted to real embeddings and
normalised (the hard case: they crowd around every probe, see ../shared/MEASUREMENTS.md).
Probes: every mate's second image (genuine) and people with one image (strangers). Without a
real set, a Gaussian fitted to real LFW embeddings ships for 128 and 256 dimensions; mates are
drawn from it and probes are mates plus within-person noise fitted on the same real set.

Measured: bulk load; a worker's cold start rebuilding from the database (decrypt every template,
build the index, write the first snapshot) and from the snapshot (first worker of a machine:
decrypt into shared memory; next workers: map it), each from process start to ready; search
p50/p99 and recall@1 against exact search; memory per worker with two workers on the machine.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt

from facekey.config import Settings
from facekey.engines.base import EngineInfo
from facekey.evaluation.machine import machine_info
from facekey.flows.bulk_load import load_templates
from facekey.flows.galleries import child_environment
from facekey.flows.platform import open_storage
from facekey.flows.protection import engine_key_of
from facekey.flows.tenancy import create_network

log = logging.getLogger(__name__)

DEFAULT_DIMENSION: Final = 256
"""Template length of the default engine for new networks (face-reid-0095)."""
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class RealSet:
    """Real embeddings with their person labels (one row per image)."""

    vectors: FloatArray = field(repr=False)
    labels: list[str] = field(repr=False)
    source: str = "real"

    @classmethod
    def load(cls, path: Path) -> RealSet:
        """An ``.npz`` with ``vectors`` (N×D) and ``labels`` (N), e.g. from lfw_embeddings.py."""
        with np.load(path) as data:
            vectors = _normalised(np.asarray(data["vectors"], dtype=np.float32))
            return cls(vectors, [str(x) for x in data["labels"]], f"real ({path.name})")


@dataclass(frozen=True)
class Gaussian:
    """A full-covariance Gaussian of embeddings and the within-person noise around a person."""

    mean: npt.NDArray[np.float64] = field(repr=False)
    covariance: npt.NDArray[np.float64] = field(repr=False)
    within: npt.NDArray[np.float64] = field(repr=False)

    @classmethod
    def fit(cls, real: RealSet) -> Gaussian:
        pairs = [rows for rows in people_rows(real.labels).values() if len(rows) >= 2]
        differences = np.stack([real.vectors[r[1]] - real.vectors[r[0]] for r in pairs])
        return cls(
            real.vectors.mean(axis=0).astype(np.float64),
            np.cov(real.vectors.T.astype(np.float64)),
            np.cov(differences.T.astype(np.float64)) / 2,
        )

    @classmethod
    def shipped(cls, dimension: int) -> Gaussian:
        """The fit to real LFW embeddings that ships for 128 (dlib) and 256 (face-reid-0095)."""
        name = f"gaussian-{dimension}.npz"
        try:
            data = (resources.files("facekey.evaluation") / "data" / name).read_bytes()
        except FileNotFoundError:
            raise ValueError(
                f"no fitted embedding model for dimension {dimension}; give real embeddings"
            ) from None
        from io import BytesIO

        with np.load(BytesIO(data)) as loaded:
            return cls(loaded["mean"], loaded["covariance"], loaded["within"])

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            mean=self.mean.astype(np.float32),
            covariance=self.covariance.astype(np.float32),
            within=self.within.astype(np.float32),
        )

    def draw(self, rng: np.random.Generator, count: int, chunk: int = 100_000) -> FloatArray:
        """``count`` normalised samples (in chunks, to bound memory)."""
        factor = np.linalg.cholesky(self.covariance + 1e-9 * np.eye(len(self.mean)))
        out = np.empty((count, len(self.mean)), dtype=np.float32)
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            z = rng.standard_normal((n, len(self.mean)))
            out[start : start + n] = _normalised((self.mean + z @ factor.T).astype(np.float32))
        return out

    def noisy(self, rng: np.random.Generator, base: FloatArray) -> FloatArray:
        factor = np.linalg.cholesky(self.within + 1e-9 * np.eye(len(self.mean)))
        z = rng.standard_normal(base.shape) @ factor.T
        return _normalised((base + z).astype(np.float32))


@dataclass(frozen=True)
class ScaleData:
    """The gallery (raw embeddings, mates first) and the probes (genuine first)."""

    gallery: FloatArray = field(repr=False)
    probes: FloatArray = field(repr=False)
    genuine: int
    source: str


def make_data(
    size: int, dimension: int, real: RealSet | None, *, strangers: int = 1000, seed: int = 0
) -> ScaleData:
    """Real mates + hard distractors; genuine and stranger probes."""
    rng = np.random.default_rng(seed)
    model = Gaussian.fit(real) if real is not None else Gaussian.shipped(dimension)
    if real is not None:
        people = people_rows(real.labels)
        pairs = [rows for rows in people.values() if len(rows) >= 2]
        singles = [rows[0] for rows in people.values() if len(rows) == 1][:strangers]
        mates = real.vectors[[r[0] for r in pairs]]
        probes = np.vstack([real.vectors[[r[1] for r in pairs]], real.vectors[singles]])
        source = real.source
    else:
        mates = model.draw(rng, min(1000, size))
        probes = np.vstack([model.noisy(rng, mates), model.draw(rng, strangers)])
        source = f"Gaussian fitted to real LFW embeddings ({dimension}-d, shipped)"
    if mates.shape[1] != dimension:
        raise ValueError(f"real embeddings have {mates.shape[1]} dimensions, not {dimension}")
    mates = mates[:size]
    gallery = np.vstack([mates, model.draw(rng, size - len(mates))])
    return ScaleData(gallery, probes.astype(np.float32), len(mates), source)


def exact_top1(gallery: FloatArray, probes: FloatArray, chunk: int = 64) -> npt.NDArray[np.int64]:
    """Row of the most similar gallery vector for every probe (brute force)."""
    best = np.empty(len(probes), dtype=np.int64)
    for start in range(0, len(probes), chunk):
        best[start : start + chunk] = np.argmax(probes[start : start + chunk] @ gallery.T, axis=1)
    return best


@dataclass
class WorkerProcess:
    """A running :mod:`facekey.evaluation.gallery_worker`."""

    process: subprocess.Popen[str]
    ready: dict[str, Any]

    @classmethod
    def start(cls, settings: Settings, network_id: str, engine_key: str, dimension: int) -> Any:
        command = [
            sys.executable,
            "-m",
            "facekey.evaluation.gallery_worker",
            network_id,
            engine_key,
            str(dimension),
            repr(time.time()),
        ]
        process = subprocess.Popen(
            command,
            env=child_environment(settings),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return cls(process, _read_answer(process.stdout))

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return _read_answer(self.process.stdout)

    def stop(self) -> None:
        """Ask the worker to quit, wait for it and close the pipes."""
        stdin, stdout = self.process.stdin, self.process.stdout
        if self.process.poll() is None and stdin is not None:
            stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            stdin.flush()
        self.process.wait(timeout=120)
        for stream in (stdin, stdout):
            if stream is not None:
                stream.close()


def _read_answer(stream: IO[str] | None) -> dict[str, Any]:
    assert stream is not None
    line = stream.readline()
    if not line:
        raise RuntimeError("the gallery worker ended without answering (see its stderr)")
    answer: dict[str, Any] = json.loads(line)
    return answer


@dataclass(frozen=True)
class BenchConfig:
    """What ``run_gallery_bench`` measures."""

    size: int
    out_dir: Path
    dimension: int = DEFAULT_DIMENSION
    real: RealSet | None = None
    strangers: int = 1000
    seed: int = 0
    keep: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


def run_gallery_bench(config: BenchConfig) -> dict[str, Any]:
    """Load, start workers, search; write ``out_dir/gallery.json`` and return it."""
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shm = _memory_folder(work)
    settings = Settings(
        data_dir=work / "data",
        shared_index_dir=shm,
        snapshot_min_templates=1,
        snapshot_interval_s=0,
        **config.settings,
    )
    data = make_data(config.size, config.dimension, config.real, strangers=config.strangers)
    result: dict[str, Any] = {"size": config.size, "dimension": config.dimension}
    try:
        result |= _measure(config, settings, data)
    finally:
        shutil.rmtree(shm, ignore_errors=True)
        if not config.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["machine"] = machine_info()
    (out / "gallery.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _measure(config: BenchConfig, settings: Settings, data: ScaleData) -> dict[str, Any]:
    started = time.perf_counter()
    truth = exact_top1(data.gallery, data.probes)
    exact_s = time.perf_counter() - started
    info = EngineInfo(f"bench-{config.dimension}", "1", config.dimension, chip_size=0)
    network_id, load = _bulk_load(settings, info, data)
    owners = np.array(load.pop("owners"))
    key = engine_key_of(info)
    rebuild = WorkerProcess.start(settings, network_id, key, config.dimension)
    rebuild.stop()
    workers = measure_workers(
        settings, network_id, key, data, truth, owners, work=config.out_dir / "work"
    )
    return {
        "data": data.source,
        "distractors": "full-covariance Gaussian fitted to the real embeddings, normalised",
        "probes": {"genuine": data.genuine, "strangers": len(data.probes) - data.genuine},
        **workers,
        "cold_start_rebuild_s": rebuild.ready["ready_s"],
        **load,
        "exact_search_ms_per_probe": round(1000 * exact_s / len(data.probes), 2),
        "index": _index_settings(settings),
    }


def measure_workers(
    settings: Settings,
    network_id: str,
    engine_key: str,
    data: ScaleData,
    truth: npt.NDArray[np.int64],
    owners: npt.NDArray[Any],
    *,
    work: Path,
) -> dict[str, Any]:
    """Two workers start from the snapshot on a fresh machine (nothing decrypted yet), both
    search every probe; cold starts, latency, recall and memory."""
    _clear(settings.shared_index_dir)
    dimension = data.gallery.shape[1]
    first = WorkerProcess.start(settings, network_id, engine_key, dimension)
    second = WorkerProcess.start(settings, network_id, engine_key, dimension)
    try:
        searched = _search(first, work, data, truth, owners)
        _search(second, work, data, truth, owners)  # so both have touched the index
        memory = [first.ask(cmd="memory"), second.ask(cmd="memory")]
    finally:
        first.stop()
        second.stop()
    return {
        **searched,
        "cold_start_s": first.ready["ready_s"],
        "cold_start_mapped_s": second.ready["ready_s"],
        **_memory(memory, settings, len(data.gallery)),
    }


def _bulk_load(settings: Settings, info: EngineInfo, data: ScaleData) -> tuple[str, dict[str, Any]]:
    database, vault = open_storage(settings)
    try:
        # The network names the bench's engine id: no engine is loaded, templates are given.
        network_id = create_network(database, vault, "gallery-bench", engine=info.id).network_id
        started = time.perf_counter()
        chunks = load_templates(database, vault, network_id, info, data.gallery)
        seconds = time.perf_counter() - started
    finally:
        database.dispose()
    owners = [s for chunk in chunks for s in chunk.subject_ids]
    return network_id, {
        "bulk_load_s": round(seconds, 1),
        "bulk_load_per_s": round(len(owners) / seconds),
        "owners": owners,
    }


def _search(
    worker: WorkerProcess,
    work: Path,
    data: ScaleData,
    truth: npt.NDArray[np.int64],
    owners: npt.NDArray[Any],
) -> dict[str, Any]:
    np.save(work / "probes.npy", data.probes)
    worker.ask(cmd="search", probes=str(work / "probes.npy"), out=str(work / "found.npz"), k=10)
    with np.load(work / "found.npz") as found:
        top, index_ms, checked_ms = found["top"], found["index_ms"], found["checked_ms"]
    same = top == owners[truth]
    genuine = data.genuine
    return {
        "search_ms_p50": _round(np.percentile(index_ms, 50)),
        "search_ms_p99": _round(np.percentile(index_ms, 99)),
        "search_and_recheck_ms_p50": _round(np.percentile(checked_ms, 50)),
        "search_and_recheck_ms_p99": _round(np.percentile(checked_ms, 99)),
        "recall_at_1": _round(same.mean(), 4),
        "recall_at_1_genuine": _round(same[:genuine].mean(), 4),
        "recall_at_1_strangers": _round(same[genuine:].mean(), 4),
        "mate_is_exact_top1": _round((truth[:genuine] == np.arange(genuine)).mean(), 4),
    }


def _memory(memory: list[dict[str, float]], settings: Settings, size: int) -> dict[str, Any]:
    shared_dir = settings.shared_index_dir
    shared = sum(p.stat().st_size for p in shared_dir.rglob("*.bin")) if shared_dir else 0
    files = sorted(settings.snapshot_path.rglob("*.snap"))
    snapshot = files[-1].stat().st_size if files else 0
    return {
        "rss_mb_per_worker": max(m["rss"] for m in memory),
        "pss_mb_per_worker": max(m["pss"] for m in memory),
        "own_mb_per_worker": max(m["own"] for m in memory),
        "shared_index_mb_per_machine": round(shared / 2**20, 1),
        "machine_mb_two_workers": round(sum(m["own"] for m in memory) + shared / 2**20, 1),
        "bytes_per_template": round(shared / size, 1),
        "snapshot_mb": round(snapshot / 2**20, 1),
        "workers": memory,
    }


def _index_settings(settings: Settings) -> dict[str, Any]:
    return {
        "hnsw_threshold": settings.hnsw_threshold,
        "hnsw_m": settings.hnsw_m,
        "ef_construction": settings.hnsw_ef_construction,
        "ef_search": settings.hnsw_ef_search,
    }


def _memory_folder(work: Path) -> Path:
    """Where the workers' shared copy goes: memory (/dev/shm) as on a server, when there is one."""
    memory = Path("/dev/shm")
    folder = memory / f"facekey-bench-{os.getpid()}" if memory.is_dir() else work / "shm"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _clear(folder: Path | None) -> None:
    if folder is not None:
        for child in folder.iterdir():
            shutil.rmtree(child, ignore_errors=True)


def people_rows(labels: list[str]) -> dict[str, list[int]]:
    """Rows of each person, in order of first appearance (mates are each person's first)."""
    people: dict[str, list[int]] = defaultdict(list)
    for row, label in enumerate(labels):
        people[label].append(row)
    return dict(people)


def _normalised(x: FloatArray) -> FloatArray:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def _round(value: Any, digits: int = 3) -> float:
    return round(float(value), digits)
