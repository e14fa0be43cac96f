"""Admin commands on a data directory, and a real server process with two workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from cli_helpers import people_folder, run_json, runner
from facekey.cli import app
from facekey.client import ApiError, FacekeyClient
from facekey.store.database import Database, default_sqlite_url
from facekey.store.tables import AuditEvent


def test_create_network_prints_one_key_per_scope(isolated_env: Path) -> None:
    created = run_json("admin", "create-network", "demo")
    keys = created["api_keys"]
    assert isinstance(keys, dict)
    assert set(keys) == {"admin", "enrol", "terminal", "privacy"}
    assert all(str(k).startswith(f"fk_{scope}_") for scope, k in keys.items())
    kek = isolated_env / "keys" / "kek.key"
    assert kek.stat().st_mode & 0o777 == 0o600


def test_rotate_keys_and_verify_audit_detects_tampering(isolated_env: Path) -> None:
    network = run_json("admin", "create-network", "demo")
    rotated = run_json("admin", "rotate-keys", str(network["network_id"]), "--scope", "terminal")
    assert rotated["revoked"] == 1
    assert set(rotated["api_keys"]) == {"terminal"}  # type: ignore[arg-type]
    assert run_json("admin", "verify-audit")["ok"] is True

    database = Database(default_sqlite_url(isolated_env))
    with database.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.sequence == 1).values(outcome="x"))
    database.dispose()
    result = runner.invoke(app, ["admin", "verify-audit"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["first_bad_sequence"] == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`facekey serve --workers 2` on a fresh data directory."""
    env = {**os.environ, "FACEKEY_DATA_DIR": str(tmp_path)}
    created = subprocess.run(
        [sys.executable, "-m", "facekey.cli", "admin", "create-network", "demo"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    keys = json.loads(created.stdout)["api_keys"]
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "facekey.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--data-dir",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("the server did not become ready")
        yield url, keys
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_served_api_with_two_workers(server: tuple[str, dict[str, str]], lfw: Path) -> None:
    url, keys = server
    with FacekeyClient(url, keys["enrol"]) as enroller:
        subject = enroller.enrol([lfw / "Aaron_Sorkin_0001.jpg"], terms_version="1")
    with FacekeyClient(url, keys["terminal"]) as terminal:
        # Several calls, so both workers answer some of them.
        for _ in range(4):
            assert (
                terminal.identify(lfw / "Aaron_Sorkin_0002.jpg")["match"] == subject["subject_id"]
            )
    with FacekeyClient(url, keys["privacy"]) as privacy:
        assert privacy.erase(subject["subject_id"])["erased"] is True
    with FacekeyClient(url, keys["terminal"]) as terminal:
        for _ in range(4):
            found = terminal.identify(lfw / "Aaron_Sorkin_0002.jpg")
            assert found["match"] is None and found["gallery_size"] == 0
        with pytest.raises(ApiError) as refused:
            terminal.erase(subject["subject_id"])
        assert refused.value.status == 403


def test_import_and_identify_commands(
    server: tuple[str, dict[str, str]], lfw: Path, tmp_path: Path
) -> None:
    url, keys = server
    people = people_folder(lfw.glob("A*_0001.jpg"), tmp_path / "people")
    imported = run_json("import", str(people), "--server", url, "--key", keys["enrol"])
    assert imported["people"] == 3 and imported["enrolled"] == 3, imported
    found = run_json(
        "identify", str(lfw / "Aaron_Sorkin_0002.jpg"), "--server", url, "--key", keys["terminal"]
    )
    subjects = imported["subjects"]
    assert isinstance(subjects, dict)
    assert found["match"] == subjects["Aaron_Sorkin"]
    refused = runner.invoke(
        app,
        ["enrol", str(lfw / "Aaron_Sorkin_0001.jpg"), "--server", url, "--key", keys["terminal"]],
    )
    assert refused.exit_code == 4
    assert f"POST {url}/v1/subjects answered 403" in refused.stderr
