"""Erasure under load: once DELETE returns, no worker ever returns the subject again.

Two platforms on one database stand for two worker processes: each has its own gallery
cache, refreshed only through the database's change log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import Network, enrol, identify
from fastapi.testclient import TestClient

from facekey.engines.face_reid import FaceReidEngine
from facekey.flows.platform import Platform
from facekey.service.app import create_app


@pytest.fixture
def second_worker(platform: Platform, reid_engine: FaceReidEngine) -> Iterator[TestClient]:
    other = Platform.open(platform.settings, engines=[reid_engine])
    with TestClient(create_app(other.settings, platform=other)) as client:
        yield client
    other.close()


def test_erased_subject_never_returned_by_any_worker(
    client: TestClient, second_worker: TestClient, network: Network, lfw: Path
) -> None:
    victim = enrol(client, network, lfw / "Aaron_Peirsol_0001.jpg").json()["subject_id"]
    probe = lfw / "Aaron_Peirsol_0002.jpg"
    assert identify(second_worker, network, probe).json()["match"] == victim  # cached there

    erased_at: list[float] = []
    late_hits: list[dict[str, object]] = []
    calls = {"before": 0, "after": 0}
    stop = threading.Event()

    def hammer(worker: TestClient) -> None:
        while not stop.is_set():
            started = time.monotonic()
            body = identify(worker, network, probe).json()
            returned = {body["match"]}
            if erased_at and started > erased_at[0]:
                calls["after"] += 1
                if victim in returned:
                    late_hits.append(body)
            else:
                calls["before"] += 1

    threads = [threading.Thread(target=hammer, args=(w,)) for w in (client, second_worker)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    response = client.delete(f"/v1/subjects/{victim}", headers=network.auth("privacy"))
    erased_at.append(time.monotonic())
    assert response.status_code == 200
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert calls["before"] > 0 and calls["after"] > 0
    assert late_hits == []
