"""The agent as a terminal runs it (its own process, a real HTTP server on loopback), watched
by the kernel: a whole checkout writes no file anywhere, and the fleet client writes only in
its configuration folder."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from edge_helpers import auth, enrol_face
from fastapi.testclient import TestClient
from fswatch import WriteWatch

from facekey.flows.platform import Platform
from facekey.service.app import create_app
from fleet_helpers import enrolment_token


@pytest.fixture(scope="module")
def server(edge_platform: Platform) -> Iterator[str]:
    """The API on a loopback port, in a thread of this process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(edge_platform.settings, platform=edge_platform)
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=30)


def _device(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    """How a terminal runs facekey: an installed (read-only) package, fresh home and temp."""
    for name in ("home", "tmp", "cwd"):
        (tmp_path / name).mkdir()
    env = os.environ | {
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return [sys.executable, "-m", "facekey.cli", "edge"], env, tmp_path / "cwd"


def _run(
    command: list[str], env: dict[str, str], cwd: Path, watch: WriteWatch
) -> tuple[dict[str, object], list[str]]:
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    written = [path for pid, path in watch.collect() if pid in (process.pid, None)]
    return json.loads(stdout), written


def test_a_checkout_writes_no_file(
    server: str,
    edge_client: TestClient,
    shop: tuple[str, dict[str, str], str],
    tmp_path: Path,
    liveness_frames: Path,
    face_video: Path,
) -> None:
    _, keys, store_id = shop
    enrol_face(edge_client, keys, liveness_frames / "head-turn-0100.jpg")
    edge, env, cwd = _device(tmp_path)
    config = tmp_path / "device"
    token = enrolment_token(edge_client, auth(keys["admin"]), store_id)
    folders = [tmp_path]
    with WriteWatch(fallback=folders) as watch:
        enrolled, enrol_writes = _run(
            [*edge, "enrol", "--server", server, "--token", token, "--config", str(config)],
            env,
            cwd,
            watch,
        )
        assert stat.S_IMODE((config / "credentials.json").stat().st_mode) == 0o600
        assert {Path(p).parent for p in enrol_writes} == {config}, enrol_writes
        paid, checkout_writes = _run(
            [
                *edge,
                "checkout",
                "--config",
                str(config),
                "--source",
                str(face_video),
                "--amount",
                "1250",
            ],
            env,
            cwd,
            watch,
        )
    assert paid["decision"] == "approved", paid
    assert checkout_writes == [], f"the agent wrote {checkout_writes}"
    assert enrolled["device_id"] == paid_device(config)
    if not watch.kernel_wide:  # pragma: no cover - without CAP_SYS_ADMIN
        pytest.skip("fanotify needs CAP_SYS_ADMIN: only the test's folders were watched")


def paid_device(config: Path) -> str:
    return str(json.loads((config / "device.json").read_text())["device_id"])


def test_heartbeats_write_only_the_release_in_the_configuration(
    server: str,
    edge_client: TestClient,
    shop: tuple[str, dict[str, str], str],
    tmp_path: Path,
) -> None:
    _, keys, store_id = shop
    edge, env, cwd = _device(tmp_path)
    config = tmp_path / "device"
    token = enrolment_token(edge_client, auth(keys["admin"]), store_id)
    release = edge_client.post(
        "/v1/fleet/releases",
        headers=auth(keys["admin"]),
        json={"software_version": "0.1.0", "settings": {"heartbeat_s": 30}},
    ).json()
    with WriteWatch(fallback=[tmp_path]) as watch:
        _run(
            [*edge, "enrol", "--server", server, "--token", token, "--config", str(config)],
            env,
            cwd,
            watch,
        )
        first, writes = _run([*edge, "heartbeat", "--config", str(config)], env, cwd, watch)
        again, rewrites = _run([*edge, "heartbeat", "--config", str(config)], env, cwd, watch)
    assert first["delivered"] and first["release_changed"] and first["heartbeat_s"] == 30
    assert {Path(p).parent for p in writes} == {config}
    assert not again["release_changed"] and rewrites == []
    assert json.loads((config / "release.json").read_text())["release_id"] == release["release_id"]
