"""Store fixtures: a migrated database per backend (``database_url`` is in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from facekey.store.database import Database
from facekey.store.tenants import create_network


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    """The session's migrated database (tests isolate themselves by creating networks)."""
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def network_id(database: Database) -> str:
    """A new network (unique name) in the session's database."""
    with database.session() as session:
        network = create_network(
            session,
            name=f"network-{uuid.uuid4().hex}",
            wrapped_transform_secret=b"wrapped-secret",
            kek_id="kek-test",
            engine="fake",
        )
        return network.id
