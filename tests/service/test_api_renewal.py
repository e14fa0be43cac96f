"""Renewing a network's template transform keeps matching, buckets and customer ids."""

from __future__ import annotations

from pathlib import Path

from api_helpers import Network, enrol, identify
from fastapi.testclient import TestClient
from sqlalchemy import select

from facekey.engines.face_reid import FaceReidEngine
from facekey.flows.platform import Platform
from facekey.flows.renewal import renew_transform
from facekey.flows.search import network_of
from facekey.service.app import create_app
from facekey.store.tables import Template


def _sealed(platform: Platform, subject_id: str) -> bytes:
    with platform.database.session() as session:
        return session.scalars(
            select(Template.sealed_vector).where(Template.subject_id == subject_id)
        ).one()


def test_renewal_moves_templates_and_keeps_matching(
    client: TestClient,
    platform: Platform,
    network: Network,
    lfw: Path,
    reid_engine: FaceReidEngine,
) -> None:
    subject = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg", phone="+44 20 7946 0958")
    subject_id = subject.json()["subject_id"]
    probe = lfw / "Aaron_Sorkin_0002.jpg"
    other = Platform.open(platform.settings, engines=[reid_engine])  # a second worker
    try:
        with TestClient(create_app(other.settings, platform=other)) as second:
            assert identify(second, network, probe).json()["match"] == subject_id
            before = network_of(platform, network.id)
            sealed = _sealed(platform, subject_id)
            bucket = platform.vault.phone_bucket(before, "0958")
            customer = platform.vault.customer_pseudonym(before, subject_id, "m1")

            result = renew_transform(platform.database, platform.vault, network.id)

            assert result.transform_version == before.transform_version + 1
            assert result.templates_moved == 1
            assert _sealed(platform, subject_id) != sealed
            after = network_of(platform, network.id)
            info = platform.readers.get(after.engine).info
            assert platform.vault.transform(after, info).fingerprint != (
                platform.vault.transform(before, info).fingerprint
            )
            assert platform.vault.phone_bucket(after, "0958") == bucket
            assert platform.vault.customer_pseudonym(after, subject_id, "m1") == customer
            for worker in (client, second):
                body = identify(worker, network, probe).json()
                assert body["match"] == subject_id, body
    finally:
        other.close()
