"""GalleryIndex: exact and HNSW search, per-subject answers, removal, compaction, validation."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pytest

from facekey.gallery.index import GalleryIndex, Hit, limit_faiss_threads

DIM = 16
FloatArray = npt.NDArray[np.float32]


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> FloatArray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(
    n: int, *, per_subject: int = 1, seed: int = 0, **options: int
) -> tuple[GalleryIndex, FloatArray, list[str]]:
    rng = np.random.default_rng(seed)
    vectors = unit(rng, n)
    subjects = [f"s{i // per_subject}" for i in range(n)]
    index = GalleryIndex(DIM, **options)
    index.add(np.arange(n, dtype=np.int64), subjects, vectors)
    return index, vectors, subjects


def brute_force(vectors: FloatArray, query: FloatArray) -> int:
    return int(np.argmax(vectors @ query))


def test_exact_search_returns_true_nearest() -> None:
    index, vectors, _ = build(500)
    assert index.mode == "flat"
    rng = np.random.default_rng(1)
    for query in unit(rng, 50):
        hits = index.search(query, 5)
        assert hits[0].template_id == brute_force(vectors, query)
        assert hits[0].score == pytest.approx(float(vectors[hits[0].template_id] @ query), abs=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert len(hits) == 5


def test_best_hit_per_subject() -> None:
    index, vectors, subjects = build(300, per_subject=3)
    assert len(index) == 300
    assert index.subjects == 100
    query = vectors[7]
    hits = index.search(query, 10)
    assert len(hits) == 10
    assert len({h.subject_id for h in hits}) == 10
    assert hits[0] == Hit("s2", 7, pytest.approx(1.0, abs=1e-5))
    scores = vectors @ query
    for hit in hits:
        own = [i for i, s in enumerate(subjects) if s == hit.subject_id]
        assert hit.template_id == own[int(np.argmax(scores[own]))]


def test_search_fills_k_subjects_despite_many_templates_each() -> None:
    rng = np.random.default_rng(2)
    center = unit(rng, 1)[0]
    close = center + 0.01 * rng.standard_normal((40, DIM)).astype(np.float32)
    vectors = np.vstack([close, unit(rng, 20)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    subjects = ["crowd"] * 40 + [f"other{i}" for i in range(20)]
    index = GalleryIndex(DIM)
    index.add(np.arange(60), subjects, vectors)
    hits = index.search(center, 3)
    assert len(hits) == 3
    assert hits[0].subject_id == "crowd"


def test_k_larger_than_gallery_and_empty_gallery() -> None:
    index, _, _ = build(4)
    assert len(index.search(unit(np.random.default_rng(3), 1)[0], 10)) == 4
    assert GalleryIndex(DIM).search(np.ones(DIM, np.float32) / 4, 3) == []


@pytest.mark.parametrize("threshold", [100_000, 100])
def test_removed_subject_never_returned(threshold: int) -> None:
    index, vectors, _ = build(400, per_subject=4, hnsw_threshold=threshold)
    assert index.mode == ("hnsw" if threshold == 100 else "flat")
    assert index.remove_subject("s5") == 4
    assert index.remove_subject("s5") == 0
    assert len(index) == 396
    assert index.subjects == 99
    assert index.template_ids("s5") == []
    for template_id in range(20, 24):
        hits = index.search(vectors[template_id], 100)
        assert "s5" not in {h.subject_id for h in hits}
        assert len(hits) == 99


def test_remove_templates_keeps_other_templates_of_subject() -> None:
    index, vectors, _ = build(30, per_subject=3)
    assert index.remove_templates(np.array([3, 4, 999])) == 2
    assert 3 not in index
    assert index.template_ids("s1") == [5]
    hits = index.search(vectors[3], 10)
    assert all(h.template_id not in {3, 4} for h in hits)
    assert Hit("s1", 5, pytest.approx(float(vectors[5] @ vectors[3]), abs=1e-5)) in hits


def test_hnsw_tombstones_and_compact() -> None:
    index, vectors, _ = build(300, hnsw_threshold=100)
    assert index.mode == "hnsw"
    assert index.remove_templates(range(20)) == 20
    assert index.tombstones == 20
    assert index.search(vectors[3], 1)[0].template_id >= 20
    assert index.compact() == 20
    assert index.tombstones == 0
    assert len(index) == 280
    assert index.mode == "hnsw"
    assert index.search(vectors[50], 1)[0].template_id == 50
    assert all(h.template_id >= 20 for h in index.search(vectors[3], 50))


def test_hnsw_auto_compacts_past_ten_percent() -> None:
    index, vectors, _ = build(300, hnsw_threshold=100)
    index.remove_templates(range(30))
    assert index.tombstones == 30
    index.remove_templates([30])
    assert index.tombstones == 0
    assert len(index) == 269
    assert index.search(vectors[100], 1)[0].template_id == 100


def test_compact_switches_back_to_flat_when_small() -> None:
    index, vectors, _ = build(150, hnsw_threshold=100)
    index.remove_templates(range(100))
    assert index.mode == "flat"
    assert len(index) == 50
    assert index.search(vectors[120], 1)[0].template_id == 120


def test_reusing_a_tombstoned_id_returns_the_new_vector() -> None:
    index, vectors, _ = build(200, hnsw_threshold=100)
    index.remove_templates([7])
    assert index.tombstones == 1
    index.add(np.array([7]), ["new"], vectors[8:9])
    assert index.search(vectors[8], 2)[0].subject_id in {"new", "s8"}
    assert {h.subject_id for h in index.search(vectors[8], 2)} == {"new", "s8"}


def test_crossing_threshold_switches_to_hnsw_and_keeps_results() -> None:
    rng = np.random.default_rng(4)
    vectors = unit(rng, 300)
    index = GalleryIndex(DIM, hnsw_threshold=200)
    index.add(np.arange(150), [f"s{i}" for i in range(150)], vectors[:150])
    assert index.mode == "flat"
    before = [index.search(v, 1)[0].template_id for v in vectors[:150]]
    index.add(np.arange(150, 300), [f"s{i}" for i in range(150, 300)], vectors[150:])
    assert index.mode == "hnsw"
    assert len(index) == 300
    assert before == list(range(150))
    assert [index.search(v, 1)[0].template_id for v in vectors] == list(range(300))


def test_hnsw_recall_against_brute_force() -> None:
    index, vectors, _ = build(2000, hnsw_threshold=100)
    rng = np.random.default_rng(5)
    queries = unit(rng, 100)
    found = [index.search(q, 1)[0].template_id for q in queries]
    exact = [brute_force(vectors, q) for q in queries]
    assert np.mean(np.array(found) == np.array(exact)) >= 0.95


def test_duplicate_template_id_rejected() -> None:
    index, vectors, _ = build(10)
    with pytest.raises(ValueError, match="already in the index"):
        index.add(np.array([3]), ["x"], vectors[:1])
    with pytest.raises(ValueError, match="unique"):
        index.add(np.array([20, 20]), ["x", "y"], vectors[:2])
    assert len(index) == 10


@pytest.mark.parametrize(
    ("ids", "subjects", "vectors", "message"),
    [
        (np.arange(2), ["a", "b"], np.ones((2, DIM + 1), np.float32), "shape"),
        (np.arange(2), ["a", "b"], np.ones(DIM, np.float32), "shape"),
        (np.arange(2), ["a", "b"], np.ones((3, DIM), np.float32), "vectors"),
        (np.arange(2), ["a"], np.ones((2, DIM), np.float32), "subject ids"),
        (np.arange(2), "ab", np.ones((2, DIM), np.float32), "not one string"),
        (np.arange(2), ["a", ""], np.ones((2, DIM), np.float32), "non-empty"),
        (np.array([0.5, 1.5]), ["a", "b"], np.ones((2, DIM), np.float32), "integers"),
        (np.array([-1, 2]), ["a", "b"], np.ones((2, DIM), np.float32), "non-negative"),
        (np.arange(2), ["a", "b"], np.ones((2, DIM), np.int32), "floating"),
        (np.arange(2), ["a", "b"], np.full((2, DIM), np.nan, np.float32), "finite"),
        (np.arange(2), ["a", "b"], np.full((2, DIM), np.inf, np.float32), "finite"),
    ],
)
def test_bad_add_rejected(ids: object, subjects: object, vectors: object, message: str) -> None:
    index = GalleryIndex(DIM)
    with pytest.raises(ValueError, match=message):
        index.add(ids, subjects, vectors)  # type: ignore[arg-type]
    assert len(index) == 0


def test_bad_query_rejected() -> None:
    index, _, _ = build(10)
    with pytest.raises(ValueError, match="shape"):
        index.search(np.ones(DIM + 1, np.float32), 1)
    with pytest.raises(ValueError, match="shape"):
        index.search(np.ones((2, DIM), np.float32), 1)
    with pytest.raises(ValueError, match="finite"):
        index.search(np.full(DIM, np.nan, np.float32), 1)
    with pytest.raises(ValueError, match="k must"):
        index.search(np.ones(DIM, np.float32), 0)
    assert len(index.search(np.ones((1, DIM), np.float64), 2)) == 2


def test_bad_construction_rejected() -> None:
    with pytest.raises(ValueError, match="dimension"):
        GalleryIndex(0)
    with pytest.raises(ValueError, match="ef_search"):
        GalleryIndex(DIM, ef_search=0)
    with pytest.raises(ValueError, match="thread"):
        limit_faiss_threads(0)


def test_concurrent_searches_and_removals() -> None:
    index, vectors, _ = build(600, per_subject=2, hnsw_threshold=200)
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            for v in vectors[:100]:
                index.search(v, 5)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for subject in range(0, 300, 3):
        index.remove_subject(f"s{subject}")
    for thread in threads:
        thread.join()
    assert errors == []
    assert index.subjects == 200
    removed = {f"s{s}" for s in range(0, 300, 3)}
    assert not removed & {h.subject_id for h in index.search(vectors[0], 300)}
