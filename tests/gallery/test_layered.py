"""LayeredGallery (frozen base + live delta) against the plain in-memory index."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from facekey.gallery.backend import GalleryBackend
from facekey.gallery.frozen import BaseSpec, FrozenGallery
from facekey.gallery.index import GalleryIndex
from facekey.gallery.layered import LayeredGallery, merge

DIM = 16
FloatArray = npt.NDArray[np.float32]


def unit(rng: np.random.Generator, n: int) -> FloatArray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def frozen(n: int, spec: BaseSpec, seed: int = 0) -> tuple[FrozenGallery, FloatArray]:
    vectors = unit(np.random.default_rng(seed), n)
    ids = np.arange(100, 100 + n, dtype=np.int64)
    owners = [f"subject-{i // 2}" for i in range(n)]
    return FrozenGallery.build(ids, owners, vectors, spec), vectors


def reference(base: FrozenGallery, vectors: FloatArray) -> GalleryIndex:
    index = GalleryIndex(DIM, hnsw_threshold=10**9)
    index.add(base.template_ids, [base.subject_at(p) for p in range(base.stored)], vectors)
    return index


def same_answers(a: GalleryBackend, b: GalleryBackend, probes: FloatArray, k: int = 5) -> None:
    assert len(a) == len(b)
    assert a.subjects == b.subjects
    for probe in probes:
        got = [(h.subject_id, h.template_id) for h in a.search(probe, k)]
        want = [(h.subject_id, h.template_id) for h in b.search(probe, k)]
        assert got == want


@pytest.mark.parametrize("threshold", [10**9, 10])  # exact base, HNSW base
def test_mutations_match_the_plain_index(threshold: int) -> None:
    spec = BaseSpec(hnsw_threshold=threshold, ef_search=400)
    base, vectors = frozen(200, spec)
    layered, plain = LayeredGallery(DIM, base), reference(base, vectors)
    assert isinstance(layered, GalleryBackend)
    extra = unit(np.random.default_rng(1), 6)
    for index in (layered, plain):
        index.add([500, 501, 502], ["new-a", "new-a", "subject-3"], extra[:3])
        assert index.remove_subject("subject-10") == 2
        assert index.remove_subject("new-a") == 2
        assert index.remove_templates([100, 101, 502, 999]) == 3  # subject-0 and subject-3's new
        assert index.remove_subject("nobody") == 0
    same_answers(layered, plain, np.vstack([vectors[:20], extra]))
    assert layered.template_ids("subject-3") == plain.template_ids("subject-3") == [106, 107]
    assert 120 not in layered and 102 in layered and 502 not in layered
    assert layered.subjects == 98  # 100, less subject-10 and subject-0


def test_a_removed_base_template_is_never_returned() -> None:
    base, vectors = frozen(50, BaseSpec())
    layered = LayeredGallery(DIM, base)
    layered.remove_subject("subject-7")
    for probe in (vectors[14], vectors[15]):
        hits = layered.search(probe, 50)
        assert "subject-7" not in {h.subject_id for h in hits}
        assert len(hits) == 24


def test_a_template_id_cannot_be_added_twice() -> None:
    base, vectors = frozen(10, BaseSpec())
    layered = LayeredGallery(DIM, base)
    with pytest.raises(ValueError, match="already in the index"):
        layered.add([103], ["x"], vectors[:1])


def test_long_subject_ids_do_not_match_a_prefix() -> None:
    base, _ = frozen(10, BaseSpec())
    layered = LayeredGallery(DIM, base)
    assert layered.remove_subject("subject-1-and-more-characters-than-stored") == 0
    assert len(layered) == 10


@pytest.mark.parametrize("dead", [1, 30])  # extend the graph; rebuild (many removed)
def test_merge_holds_exactly_the_live_templates(dead: int) -> None:
    spec = BaseSpec(hnsw_threshold=10, ef_search=400)
    base, vectors = frozen(120, spec)
    layered = LayeredGallery(DIM, base)
    extra = unit(np.random.default_rng(2), 4)
    layered.add([900, 901, 902, 903], ["n1", "n2", "n2", "subject-0"], extra)
    layered.remove_templates(range(100, 100 + dead))
    merged = LayeredGallery(DIM, merge(layered.capture(), spec, DIM))
    assert merged.delta == 0
    same_answers(merged, layered, np.vstack([vectors[::7], extra]))
    assert merged.template_ids("n2") == [901, 902]


def test_merge_without_a_base_builds_one() -> None:
    layered = LayeredGallery(DIM)
    vectors = unit(np.random.default_rng(3), 30)
    layered.add(list(range(30)), [f"s{i}" for i in range(30)], vectors)
    merged = merge(layered.capture(), BaseSpec(), DIM)
    assert merged.stored == 30
    assert LayeredGallery(DIM, merged).search(vectors[4], 1)[0].subject_id == "s4"


def test_a_template_moved_and_merged_is_removed_everywhere() -> None:
    """Renewal removes a subject and adds its templates again under the same ids: after a
    merge the base holds the id twice (once removed); removing it must catch both."""
    spec = BaseSpec(hnsw_threshold=10**9)
    base, _ = frozen(20, spec)
    layered = LayeredGallery(DIM, base)
    layered.remove_subject("subject-2")  # templates 104 and 105
    moved = unit(np.random.default_rng(4), 2)
    layered.add([104, 105], ["subject-2", "subject-2"], moved)
    merged = LayeredGallery(DIM, merge(layered.capture(), spec, DIM))
    assert len(merged.base.positions_of_templates([104])) == 2  # type: ignore[union-attr]
    assert 104 in merged and merged.template_ids("subject-2") == [104, 105]
    assert merged.remove_templates([104]) == 1
    assert 104 not in merged
    assert 104 not in {h.template_id for h in merged.search(moved[0], 20)}
    assert merged.remove_subject("subject-2") == 1
    assert "subject-2" not in {h.subject_id for h in merged.search(moved[1], 20)}
