"""The gallery backend contract, kept by FAISS (plain and layered) and by Milvus (milvus-lite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_sync import DIM, ENGINE, NET, accept_all, populated, unit

from facekey.gallery.backend import GalleryBackend
from facekey.gallery.frozen import BaseSpec, FrozenGallery
from facekey.gallery.index import GalleryIndex
from facekey.gallery.layered import LayeredGallery
from facekey.gallery.milvus import MilvusGallery, collection_name, connect
from facekey.gallery.sync import PersistentBackend, SyncedGallery

Factory = Callable[[], GalleryBackend]


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    client = connect(str(tmp_path_factory.mktemp("milvus") / "gallery.db"))
    yield client
    client.close()


def layered_with_base() -> LayeredGallery:
    vectors = unit(np.random.default_rng(42), 10)
    base = FrozenGallery.build(
        np.arange(1000, 1010, dtype=np.int64), [f"base-{i}" for i in range(10)], vectors, BaseSpec()
    )
    index = LayeredGallery(DIM, base)
    index.remove_templates(range(1000, 1010))  # present in the base, but all removed
    return index


@pytest.fixture(params=["faiss", "layered", "milvus"])
def backend(request: pytest.FixtureRequest, milvus: Any) -> GalleryBackend:
    if request.param == "faiss":
        return GalleryIndex(DIM)
    if request.param == "layered":
        return layered_with_base()
    network = f"net-{request.node.name}"
    gallery = MilvusGallery(milvus, network_id=network, engine_key=ENGINE, dimension=DIM)
    gallery.clear()
    return gallery


def test_contract(backend: GalleryBackend) -> None:
    vectors = unit(np.random.default_rng(0), 40)
    backend.add(list(range(40)), [f"s{i // 2}" for i in range(40)], vectors)
    assert isinstance(backend, GalleryBackend)
    assert len(backend) == 40 and 7 in backend and 99 not in backend
    assert backend.template_ids("s3") == [6, 7]
    hits = backend.search(vectors[6], 3)
    assert hits[0].subject_id == "s3" and hits[0].template_id == 6
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len({h.subject_id for h in hits}) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    exact = np.argsort(-(vectors @ vectors[6]))
    assert [h.subject_id for h in hits] == list(dict.fromkeys(f"s{i // 2}" for i in exact))[:3]
    assert backend.remove_subject("s3") == 2
    assert backend.remove_templates([8, 12345]) == 1
    assert "s3" not in {h.subject_id for h in backend.search(vectors[6], 40)}
    assert 8 not in {h.template_id for h in backend.search(vectors[8], 40)}
    assert len(backend) == 37 and backend.template_ids("s3") == []


def test_milvus_persists_its_sequence_and_replays_only_the_changes(milvus: Any) -> None:
    source, vectors = populated()
    new = partial(MilvusGallery, milvus, network_id=NET, engine_key=ENGINE, dimension=DIM)
    new().clear()

    def worker() -> SyncedGallery:
        return SyncedGallery(source, network_id=NET, engine_key=ENGINE, new_index=new)

    first = worker()
    assert first.search(vectors[10], 1, accept=accept_all)[0].subject_id == "s5"
    assert source.loads == 1
    assert isinstance(first.index, PersistentBackend)
    source.erase("s5")
    second = worker()  # another process (or machine) on the same collection
    hits = second.search(vectors[10], 30, accept=accept_all)
    assert "s5" not in {h.subject_id for h in hits}
    assert source.loads == 1  # started from the collection's sequence, not a full load
    assert new().persisted_sequence() == 61


def test_collection_names_are_valid_and_distinct() -> None:
    names = {collection_name(n, e) for n in ("a", "b") for e in ("x:1", "x:2")}
    assert len(names) == 4
    assert all(name.isidentifier() for name in names)


def test_unsafe_subject_ids_are_refused(milvus: Any, tmp_path: Path) -> None:
    gallery = MilvusGallery(milvus, network_id="net-unsafe", engine_key=ENGINE, dimension=DIM)
    with pytest.raises(ValueError, match="plain identifier"):
        gallery.remove_subject('x" or subject_id != "')
