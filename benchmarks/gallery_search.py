"""Gallery search speed and HNSW recall on a cluster-structured 100k gallery, one thread.

    .venv/bin/python benchmarks/gallery_search.py [--size 100000] [--probes 1000]

Writes docs/gallery.md.

Synthetic data (no real embeddings needed), chosen to be harder than uniform random vectors:
face embeddings are not spread evenly over the sphere, they crowd in regions (age, sex,
ethnicity, look-alikes). So ``--centers`` (3000) random unit vectors are drawn as "regions";
each subject is a region centre plus noise (cosine to its centre about 0.71, to another subject
of the same region about 0.54, unrelated pairs about 0) and has 1–3 templates (its point plus
small noise, cosine about 0.83 between templates of one subject). Probes: half are new captures
of enrolled subjects (cosine about 0.78 to the subject's templates), half are strangers drawn
like new subjects of the same regions (the case where an approximate index is most likely to
miss the true nearest). Recall@1 = HNSW's top subject is the
exact (flat) index's top subject.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facekey.evaluation.machine import machine_info
from facekey.gallery.index import GalleryIndex, limit_faiss_threads

FloatArray = npt.NDArray[np.float32]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "gallery.md"


def normalize(x: FloatArray) -> FloatArray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def noisy(rng: np.random.Generator, base: FloatArray, norm: float) -> FloatArray:
    """Unit vectors at about ``norm`` (Euclidean) noise from each row of ``base``."""
    noise = rng.standard_normal(base.shape).astype(np.float32) * (norm / np.sqrt(base.shape[1]))
    return normalize(base + noise)


def make_gallery(
    rng: np.random.Generator, size: int, dim: int, centers: int
) -> tuple[np.ndarray, list[str], FloatArray, FloatArray, FloatArray]:
    """Template ids, owners, vectors; subject points; region centres."""
    region = normalize(rng.standard_normal((centers, dim)).astype(np.float32))
    counts = rng.integers(1, 4, size=size)  # 1–3 templates per subject
    counts = counts[: int(np.searchsorted(np.cumsum(counts), size)) + 1]
    counts[-1] -= int(counts.sum()) - size
    subject_points = noisy(rng, region[rng.integers(0, centers, len(counts))], 1.0)
    owner = np.repeat(np.arange(len(counts)), counts)
    vectors = noisy(rng, subject_points[owner], 0.45)
    names = [f"subject-{i:06d}" for i in owner]
    return np.arange(size, dtype=np.int64), names, vectors, subject_points, region


def make_probes(
    rng: np.random.Generator, subjects: FloatArray, region: FloatArray, count: int
) -> FloatArray:
    genuine = noisy(rng, subjects[rng.integers(0, len(subjects), count // 2)], 0.6)
    strangers = noisy(rng, region[rng.integers(0, len(region), count - count // 2)], 1.0)
    return np.vstack([genuine, strangers])


def timed_build(
    factory: Callable[[], GalleryIndex], data: tuple[object, ...]
) -> tuple[GalleryIndex, float]:
    index = factory()
    start = time.perf_counter()
    index.add(*data)  # type: ignore[arg-type]
    return index, time.perf_counter() - start


def latencies(index: GalleryIndex, probes: FloatArray, k: int) -> tuple[list[str], float, float]:
    top: list[str] = []
    times: list[float] = []
    for probe in probes:
        start = time.perf_counter()
        hits = index.search(probe, k)
        times.append((time.perf_counter() - start) * 1000)
        top.append(hits[0].subject_id)
    return top, float(np.percentile(times, 50)), float(np.percentile(times, 99))


def run(args: argparse.Namespace) -> str:
    limit_faiss_threads(1)
    rng = np.random.default_rng(args.seed)
    ids, names, vectors, subjects, region = make_gallery(rng, args.size, args.dim, args.centers)
    probes = make_probes(rng, subjects, region, args.probes)
    data = (ids, names, vectors)
    flat, flat_build = timed_build(lambda: GalleryIndex(args.dim, hnsw_threshold=10**9), data)
    hnsw, hnsw_build = timed_build(lambda: GalleryIndex(args.dim, hnsw_threshold=1), data)
    exact, flat_p50, flat_p99 = latencies(flat, probes, args.k)
    approx, hnsw_p50, hnsw_p99 = latencies(hnsw, probes, args.k)
    hnsw.remove_templates(range(0, args.size, 20))  # 5 %: tombstones, no rebuild yet
    start = time.perf_counter()
    hnsw.compact()
    compact = time.perf_counter() - start
    same = np.array(exact) == np.array(approx)
    half = args.probes // 2
    rows = [
        ("flat (IndexFlatIP)", f"{flat_build:.2f} s", flat_p50, flat_p99, "1 (exact)"),
        (
            "HNSW M32 efC100 efS256",
            f"{hnsw_build:.1f} s (compact {compact:.1f} s)",
            hnsw_p50,
            hnsw_p99,
            f"{same.mean():.3f} (enrolled {same[:half].mean():.3f}, "
            f"strangers {same[half:].mean():.3f})",
        ),
    ]
    return render(args, len(set(names)), rows)


def render(
    args: argparse.Namespace, subjects: int, rows: list[tuple[str, str, float, float, str]]
) -> str:
    info = machine_info()
    lines = [
        "# Gallery search benchmark",
        "",
        f"- date: {datetime.now(UTC).date().isoformat()}",
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"Python {info['python']}, faiss one OpenMP thread",
        f"- command: `.venv/bin/python benchmarks/{info['command']}`",
        f"- gallery: {args.size} templates of {subjects} subjects, {args.dim}-d unit vectors "
        f"around {args.centers} region centres (see the script's docstring); "
        f"{args.probes} probes, half enrolled, half strangers; top-{args.k} subjects per query",
        "- latency is one `GalleryIndex.search` call (FAISS search + per-subject merge in Python)",
        "",
        "| index | build | search p50 | search p99 | recall@1 vs exact |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {b} | {p50:.2f} ms | {p99:.2f} ms | {r} |" for n, b, p50, p99, r in rows]
    lines += [
        "",
        "The machine may have been running other jobs; compare rows of one run, not across runs.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--centers", type=int, default=3000)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
