"""Two machines, one database: two `facekey serve` processes with their own data directories
(their own snapshots and index copies), one PostgreSQL and one key-encryption key (a KMS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from facekey.client import FacekeyClient
from postgres_server import PostgresServer, free_port


@dataclass
class Machine:
    """One server machine: a data directory, its own /dev/shm stand-in, one serve process."""

    root: Path
    database_url: str
    kek_file: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        (self.root / "shm").mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "FACEKEY_DATA_DIR": str(self.root / "data"),
            "FACEKEY_DATABASE_URL": self.database_url,
            "FACEKEY_KEK_FILE": str(self.kek_file),
            "FACEKEY_SHARED_INDEX_DIR": str(self.root / "shm"),
            "FACEKEY_SNAPSHOT_MIN_TEMPLATES": "1",
        }

    def facekey(self, *args: str) -> object:
        done = subprocess.run(
            [sys.executable, "-m", "facekey.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "facekey.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited"
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        pytest.fail("the server did not become ready")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def snapshots(self) -> list[str]:
        return sorted(p.name for p in (self.root / "data" / "snapshots").rglob("*.snap"))


@pytest.fixture
def machines(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[Machine, Machine]]:
    url = postgres_server.create_database()
    kek = tmp_path / "kms" / "kek.key"  # one key-encryption key for both, as from a KMS
    a, b = Machine(tmp_path / "a", url, kek), Machine(tmp_path / "b", url, kek)
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def matched(client: FacekeyClient, image: Path) -> str | None:
    """Whom identify names (a terminal sees no candidate list)."""
    match: str | None = client.identify(image)["match"]
    return match


def test_enrolled_on_a_identified_on_b_erased_everywhere_restart_from_snapshot(
    machines: tuple[Machine, Machine], lfw: Path
) -> None:
    a, b = machines
    network = a.facekey("admin", "create-network", "two-machines")
    assert isinstance(network, dict)
    keys = network["api_keys"]
    a.start()
    b.start()
    with FacekeyClient(a.url, keys["enrol"]) as enrol_a:
        first = enrol_a.enrol([lfw / "Aaron_Sorkin_0001.jpg"], terms_version="1")["subject_id"]
    with FacekeyClient(b.url, keys["terminal"]) as terminal_b:
        assert terminal_b.identify(lfw / "Aaron_Sorkin_0002.jpg")["match"] == first

    written = b.facekey("admin", "snapshot")  # B's snapshot, taken before the erasure
    assert isinstance(written, list) and [w["templates"] for w in written] == [1]
    before_restart = b.snapshots()

    with FacekeyClient(a.url, keys["enrol"]) as enrol_a:
        second = enrol_a.enrol([lfw / "Aaron_Peirsol_0001.jpg"], terms_version="1")["subject_id"]
    with FacekeyClient(a.url, keys["privacy"]) as privacy_a:
        assert privacy_a.erase(first)["erased"] is True
    with FacekeyClient(b.url, keys["terminal"]) as terminal_b:
        for _ in range(3):
            assert matched(terminal_b, lfw / "Aaron_Sorkin_0002.jpg") is None

    b.stop()
    b.start()  # from its snapshot (which still holds the erased subject) plus the change log
    assert b.snapshots() == before_restart  # restored, not rebuilt (a rebuild writes a new one)
    with FacekeyClient(b.url, keys["terminal"]) as terminal_b:
        assert terminal_b.identify(lfw / "Aaron_Peirsol_0002.jpg")["match"] == second
        for _ in range(3):
            assert matched(terminal_b, lfw / "Aaron_Sorkin_0002.jpg") is None
            assert matched(terminal_b, lfw / "Aaron_Sorkin_0001.jpg") is None
