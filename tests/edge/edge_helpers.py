"""Helpers of the edge tests: videos from real frames, API keys, enrolling a face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient

CONSENT = '{"purposes": ["payment"], "terms_version": "2026-01", "channel": "kiosk"}'


def write_video(path: Path, images: list[np.ndarray], fps: float = 5.0) -> Path:
    """An MJPG video of RGB frames (what a terminal's camera would give)."""
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for image in images:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def enrol_face(
    client: TestClient, keys: dict[str, str], image: Path, phone: str | None = None
) -> str:
    data = {"consent": CONSENT} | ({"phone": phone} if phone else {})
    files = [("images", (image.name, image.read_bytes(), "image/jpeg"))]
    response = client.post("/v1/subjects", headers=auth(keys["enrol"]), data=data, files=files)
    assert response.status_code == 201, response.text
    return str(response.json()["subject_id"])
