"""`facekey admin snapshot` and the background schedule that runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run_json
from facekey.config import Settings
from facekey.engines.fake import INFO
from facekey.flows.bulk_load import load_templates
from facekey.flows.galleries import SnapshotSchedule, open_galleries
from facekey.flows.platform import open_storage
from facekey.flows.protection import engine_key_of


@pytest.fixture
def loaded(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, str]:
    monkeypatch.setenv("FACEKEY_ENGINE", "fake")
    network_id = str(run_json("admin", "create-network", "snap")["network_id"])
    settings = Settings()
    database, vault = open_storage(settings)
    vectors = np.random.default_rng(0).standard_normal((50, INFO.dimension)).astype(np.float32)
    load_templates(database, vault, network_id, INFO, vectors, chunk=20)
    database.dispose()
    return settings, network_id


def test_admin_snapshot_then_a_worker_starts_from_it(loaded: tuple[Settings, str]) -> None:
    settings, network_id = loaded
    written = run_json("admin", "snapshot")
    assert isinstance(written, list) and len(written) == 1
    assert written[0]["network_id"] == network_id and written[0]["templates"] == 50
    assert Path(written[0]["path"]).is_file()
    assert run_json("admin", "snapshot") == []  # nothing changed since
    database, vault = open_storage(settings)
    gallery = open_galleries(settings, database, vault, lambda _: INFO.dimension).get(
        network_id, engine_key_of(INFO)
    )
    assert len(gallery.index) == 50 and gallery.base_sequence == written[0]["sequence"]
    database.dispose()


def test_the_schedule_runs_the_command_in_a_child(loaded: tuple[Settings, str]) -> None:
    settings, _ = loaded
    database, vault = open_storage(settings)
    store = open_galleries(settings, database, vault, lambda _: INFO.dimension).snapshots
    assert (
        SnapshotSchedule(settings.model_copy(update={"snapshot_min_changes": 1}), store).run_once()
        == 0
    )
    assert store is not None and len(list(store.directory.rglob("*.snap"))) == 1
    database.dispose()
