"""The screening kiosk: one count per person, and nothing but hourly counts reach the server
(checked on the server's database, its requests and its logs)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from thermal_scenes import draw_hand, scene

from facekey.edge.kiosk import LEAVE_FRAMES, HourCounts, Presentations, run_kiosk
from facekey.edge.screening import Screener, ScreeningResult, ScreeningSettings
from facekey.edge.thermal import centi_kelvin, to_celsius
from facekey.flows.platform import Platform
from facekey.imaging import read_image_file
from facekey.store.tables import ScreeningCount, metadata
from fleet_helpers import config_of, device_client, provision

FACE = Path(__file__).parents[1] / "fixtures" / "lfw" / "Aaron_Peirsol_0001.jpg"


def _result(decision: str) -> ScreeningResult:
    temperature = 36.6 if decision in ("pass", "refer") else None
    return ScreeningResult(decision, temperature, "")  # type: ignore[arg-type]


def test_each_person_counts_once_per_hour() -> None:
    clock = [datetime(2026, 12, 1, 9, 59, tzinfo=UTC)]
    tally = Presentations(now=lambda: clock[0])
    frames = ["pass"] * 4 + ["not_screened"] * LEAVE_FRAMES  # one person, four frames
    frames += ["remeasure", "refer", "pass"] + ["not_screened"] * LEAVE_FRAMES  # refer counts
    frames += ["remeasure"] * 3 + ["not_screened"] * (LEAVE_FRAMES - 1)  # still there
    finished = [tally.observe(_result(d)) for d in frames]
    assert not any(finished)
    assert tally.counts == HourCounts(datetime(2026, 12, 1, 9, tzinfo=UTC), 2, 1, 0)
    clock[0] += timedelta(minutes=2)
    rolled = tally.observe(_result("remeasure"))  # the hour is over: its totals come out
    assert rolled == HourCounts(datetime(2026, 12, 1, 9, tzinfo=UTC), 2, 1, 0)
    assert tally.close() == HourCounts(datetime(2026, 12, 1, 10, tzinfo=UTC), 0, 0, 1)


class _Recorder:
    """A test client that keeps every request it sends."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.sent: list[httpx.Request] = []

    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        return self.client.build_request(*args, **kwargs)

    def send(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return self.client.send(request)


def _row_counts(platform: Platform) -> dict[str, int]:
    with platform.database.session() as session:
        return {
            name: int(session.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in metadata.tables.items()
        }


def _visits() -> list[tuple[np.ndarray, np.ndarray]]:
    """Three people: 36.5 °C, 38.5 °C, and one whose hand covers the eyes."""
    image = read_image_file(FACE)
    nobody = (np.full_like(image, 90), centi_kelvin(np.full(image.shape[:2], 22.0)))
    people = [
        (image, scene(image, [36.5])),
        (image, scene(image, [38.5])),
        (draw_hand(image), scene(image, [38.5], hand=True)),
    ]
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for person in people:
        pairs += [person] * 3 + [nobody] * LEAVE_FRAMES
    return [(rgb, to_celsius(thermal)) for rgb, thermal in pairs]


def test_only_hourly_counts_reach_the_server(
    edge_client: TestClient,
    edge_platform: Platform,
    shop: tuple[str, dict[str, str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    network_id, keys, store_id = shop
    kiosk = config_of(
        provision(edge_client, {"Authorization": f"Bearer {keys['admin']}"}, store_id)
    )
    recorder = _Recorder(edge_client)
    client = device_client(recorder, kiosk)  # type: ignore[arg-type]
    before = _row_counts(edge_platform)
    shown: list[ScreeningResult] = []
    with caplog.at_level(logging.DEBUG):
        counts = run_kiosk(Screener(ScreeningSettings()), _visits(), client, show=shown.append)
    assert [r.decision for r in shown if r.decision != "not_screened"][:6] == ["pass"] * 3 + [
        "refer"
    ] * 3
    assert (counts.screened, counts.referred, counts.failed) == (2, 1, 1)
    # one request: the hour's totals, four fields
    assert [r.url.path for r in recorder.sent] == ["/v1/fleet/screening-counts"]
    assert set(json.loads(recorder.sent[0].content)) == {"hour", "screened", "referred", "failed"}
    # the database gained the counts row (and the request's nonce), nothing else
    after = _row_counts(edge_platform)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"screening_counts", "request_nonces"}
    with edge_platform.database.session() as session:
        row = session.scalars(
            select(ScreeningCount).where(ScreeningCount.device_id == kiosk.device_id)
        ).one()
        assert (row.screened, row.referred, row.failed) == (2, 1, 1)
    server_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("facekey.edge", "httpx"))
    ]
    assert not [line for line in server_lines if "36.5" in line or "38.5" in line or "°C" in line]
    assert network_id


def test_an_unreachable_server_drops_the_counts() -> None:
    from facekey.edge.kiosk import send_counts
    from facekey.edge.transport import DeviceClient

    client = DeviceClient(
        "http://127.0.0.1:9", device_id="kiosk", secret=b"k" * 32, api_key="fk_x", timeout=2
    )
    image = read_image_file(FACE)
    pairs = [(image, to_celsius(scene(image, [36.5])))]
    counts = run_kiosk(Screener(), pairs, client)  # does not raise, does not wait
    assert counts.screened == 1
    assert send_counts(client, counts) is False


def test_the_kiosk_command_on_frame_folders(tmp_path: Path) -> None:
    """``facekey edge kiosk`` pairs the folders' frames in name order; without a
    configuration it sends nothing and prints the hour's totals."""
    from PIL import Image

    from cli_helpers import run_json

    image = read_image_file(FACE)
    (tmp_path / "rgb").mkdir()
    (tmp_path / "thermal").mkdir()
    for index, celsius in enumerate([38.5, 38.5, None, None, None, None, None]):
        picture = image if celsius is not None else np.full_like(image, 90)
        Image.fromarray(picture).save(tmp_path / "rgb" / f"{index:03d}.png")
        frame = scene(image, [celsius]) if celsius else centi_kelvin(np.full(image.shape[:2], 22.0))
        np.save(tmp_path / "thermal" / f"{index:03d}.npy", frame)
    counts = run_json(
        "edge", "kiosk", "--rgb", str(tmp_path / "rgb"), "--thermal", str(tmp_path / "thermal")
    )
    assert (counts["screened"], counts["referred"], counts["failed"]) == (1, 1, 0)
