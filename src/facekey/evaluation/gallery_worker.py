"""A stand-in for one server worker's gallery, in its own process, driven over stdin/stdout.

The scale benchmark starts several of these on one data directory to measure what a worker
pays at start (from a snapshot, or rebuilding from the database) and what it holds in memory
(one shared index copy per machine). It opens the storage and the gallery exactly like a server
worker (``Platform.open`` without the face pipeline, so any dimension can be measured), then
answers one JSON command per line:

* ``{"cmd": "search", "probes": "p.npy", "out": "r.npz", "k": 10}``: search every probe
  (raw embeddings; transformed here like a live probe) through the index alone and through the
  gallery with the database re-check, writing the top subjects and the times;
* ``{"cmd": "memory"}``: this process's resident memory (RSS, PSS, private, shared), MiB;
* ``{"cmd": "quit"}``.

    python -m facekey.evaluation.gallery_worker NETWORK_ID ENGINE_KEY DIMENSION STARTED_AT
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from facekey.config import Settings
from facekey.flows.galleries import open_galleries
from facekey.flows.platform import open_storage
from facekey.gallery.index import Hit, limit_faiss_threads
from facekey.gallery.sync import SyncedGallery
from facekey.store import subjects, tenants


def memory_mib() -> dict[str, float]:
    """This process's resident memory (Linux), MiB: ``rss`` (every page it maps, shared ones
    included), ``pss`` (shared pages split between the processes mapping them), ``own``
    (anonymous memory: what this process alone holds) and ``mapped`` (files and shared
    memory it maps: the index copy, libraries)."""
    fields: dict[str, float] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    rss, own = fields.get("Rss", 0.0), fields.get("Anonymous", 0.0)
    return {
        "rss": round(rss, 1),
        "pss": round(fields.get("Pss", 0.0), 1),
        "own": round(own, 1),
        "mapped": round(rss - own, 1),
    }


class Worker:
    """One worker's storage and gallery of one network."""

    def __init__(self, settings: Settings, network_id: str, engine_key: str, dimension: int):
        self.database, self.vault = open_storage(settings)
        self.network_id, self.engine_key = network_id, engine_key
        self.galleries = open_galleries(settings, self.database, self.vault, lambda _: dimension)
        self.gallery: SyncedGallery = self.galleries.get(network_id, engine_key)
        self.gallery.refresh()
        with self.database.session() as session:
            network = tenants.get_network(session, network_id=network_id)
            assert network is not None
            session.expunge(network)
        self.transform = self.vault.transform_for(network, engine_key, dimension)

    def search(self, probes_path: str, out: str, k: int) -> dict[str, Any]:
        probes = self.transform.apply(np.load(probes_path))
        index = self.gallery.index
        top: list[str] = []
        index_ms: list[float] = []
        checked_ms: list[float] = []
        for probe in probes:
            start = time.perf_counter()
            hits = index.search(probe, k)
            index_ms.append((time.perf_counter() - start) * 1000)
            top.append(hits[0].subject_id if hits else "")
            start = time.perf_counter()
            self.gallery.search(probe, 5, accept=self._recheck)
            checked_ms.append((time.perf_counter() - start) * 1000)
        np.savez(out, top=np.array(top), index_ms=index_ms, checked_ms=checked_ms)
        return {"searched": len(probes)}

    def _recheck(self, hits: list[Hit]) -> list[Hit]:
        with self.database.session() as session:
            allowed = subjects.subjects_with_purpose(
                session,
                network_id=self.network_id,
                subject_ids={h.subject_id for h in hits},
                purpose="payment",
            )
        return [h for h in hits if h.subject_id in allowed]


def main() -> None:
    network_id, engine_key, dimension, started_at = sys.argv[1:5]
    limit_faiss_threads(1)
    worker = Worker(Settings(), network_id, engine_key, int(dimension))
    ready = {
        "event": "ready",
        "ready_s": round(time.time() - float(started_at), 3),
        "base_sequence": worker.gallery.base_sequence,
        "templates": len(worker.gallery.index),
    }
    _answer(ready)
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        if command["cmd"] == "memory":
            answer: dict[str, Any] = memory_mib()
        else:
            answer = worker.search(command["probes"], command["out"], int(command.get("k", 10)))
        _answer(answer)
    worker.database.dispose()


def _answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
