"""A network moves from dlib's engine to face-reid-0095 while its customers keep paying.

Both galleries are searched during the move; a subject moves at a successful verification
(the new template from the same probe, the old ones removed) or from retained images; the
old engine's templates are destroyed when it ends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_helpers import Network, enrol, identify, network_on, verify
from fastapi.testclient import TestClient

from facekey.errors import InvalidRequest
from facekey.flows.migration import (
    finish_migration,
    migration_status,
    retemplate_retained,
    start_migration,
)
from facekey.flows.platform import Platform
from facekey.store import subjects
from facekey.store.audit import verify_chain

PEOPLE = ("Aaron_Peirsol", "Aaron_Sorkin", "Abdel_Nasser_Assidi")
RETAIN = json.dumps(
    {"purposes": ["payment", "image_retention"], "terms_version": "2026-01", "channel": "app"}
)


def _engines(platform: Platform, subject_id: str) -> set[str]:
    with platform.database.session() as session:
        return {t.engine_id for t in subjects.templates_of(session, subject_id=subject_id)}


def _identified(client: TestClient, network: Network, lfw: Path, ids: dict[str, str]) -> None:
    for person, subject_id in ids.items():
        body = identify(client, network, lfw / f"{person}_0002.jpg", purpose="payment").json()
        assert body["match"] == subject_id, (person, body)


def test_a_network_moves_to_the_new_engine(
    client: TestClient, platform: Platform, lfw: Path
) -> None:
    network = network_on(platform, "dlib-resnet-v1", retain_images=True)
    ids = {}
    for person in PEOPLE:
        consent = RETAIN if person != "Aaron_Sorkin" else None  # Sorkin keeps no images
        response = enrol(
            client, network, lfw / f"{person}_0001.jpg", **({"consent": consent} if consent else {})
        )
        assert response.status_code == 201, response.text
        ids[person] = response.json()["subject_id"]
        assert _engines(platform, ids[person]) == {"dlib-resnet-v1"}
    _identified(client, network, lfw, ids)

    status = start_migration(platform, network.id, "face-reid-0095")
    assert (status.migrating_to, status.pending, status.pending_with_retained_images) == (
        "face-reid-0095",
        3,
        2,
    )
    _identified(client, network, lfw, ids)  # nobody is lost when the move begins
    with pytest.raises(InvalidRequest, match="3 subjects"):
        finish_migration(platform, network.id)

    # Sorkin moves at his next successful verification, from the same probe.
    sorkin = ids["Aaron_Sorkin"]
    verified = verify(client, network, sorkin, lfw / "Aaron_Sorkin_0002.jpg", "payment").json()
    assert verified["match"] is True
    assert _engines(platform, sorkin) == {"face-reid-0095"}
    _identified(client, network, lfw, ids)  # found in the new gallery, the others in the old

    # The others move from their retained images, in a resumable background run.
    first = retemplate_retained(platform, network.id, limit=1)
    assert (first.retemplated, first.failed) == (1, 0)
    rest = retemplate_retained(platform, network.id)
    assert (rest.retemplated, rest.remaining) == (1, 0)
    assert migration_status(platform, network.id).pending == 0

    # A subject enrolled during the move gets templates of both engines.
    late = enrol(client, network, lfw.parent / "mfr2" / "AdrianDunbar_0002.png")
    assert late.status_code == 201, late.text
    assert _engines(platform, late.json()["subject_id"]) == {"dlib-resnet-v1", "face-reid-0095"}

    done = finish_migration(platform, network.id)
    assert (done.engine, done.migrating_to) == ("face-reid-0095", None)
    assert set(done.templates_by_engine) == {"face-reid-0095:1"}
    _identified(client, network, lfw, ids)
    with platform.database.session() as session:
        assert verify_chain(session, network_id=network.id).ok


def test_starting_a_migration_is_checked(platform: Platform) -> None:
    network = network_on(platform, "face-reid-0095")
    with pytest.raises(InvalidRequest, match="already uses"):
        start_migration(platform, network.id, "face-reid-0095")
    start_migration(platform, network.id, "dlib-resnet-v1")
    with pytest.raises(InvalidRequest, match="not migrating"):
        finish_migration(platform, network_on(platform, "face-reid-0095").id)
