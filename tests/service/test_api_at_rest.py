"""Nothing personal in clear at rest: the database file and a PostgreSQL dump are searched."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
from api_helpers import Network, enrol
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from facekey.engines.dlib_resnet import DlibResnetEngine
from facekey.flows.platform import Platform
from facekey.imaging import read_image_file
from facekey.pipeline import FacePipeline, main_face
from postgres_server import find_bin_dir

PHONE = "+44 20 7946 0958"
CLEAR_COSINE = 0.97


def _stored_bytes(platform: Platform) -> bytes:
    url = make_url(platform.database.url.render_as_string(hide_password=False))
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        return b"".join(p.read_bytes() for p in files)
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    dump = subprocess.run(
        [
            str(bin_dir / "pg_dump"),
            "-h",
            str(url.host),
            "-p",
            str(url.port),
            "-U",
            "postgres",
            "-d",
            str(url.database),
            "-Fp",
        ],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    # bytea columns are dumped as hex: search them decoded as well.
    decoded = b"".join(bytes.fromhex(h.decode()) for h in re.findall(rb"\\\\x([0-9a-f]+)", dump))
    return dump + decoded


def _best_cosine(blob: bytes, vector: np.ndarray) -> float:
    """Highest cosine between ``vector`` and any run of float32/float64 values in ``blob``."""
    best = 0.0
    kernel = np.ones(len(vector))
    for dtype in ("<f4", "<f8"):
        size = np.dtype(dtype).itemsize
        for shift in range(size):
            usable = (len(blob) - shift) // size * size
            values = np.frombuffer(blob[shift : shift + usable], dtype=dtype).astype(np.float64)
            values = np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), -10, 10)
            if len(values) < len(vector):
                continue
            dots = np.correlate(values, vector, mode="valid")
            norms = np.sqrt(np.convolve(values * values, kernel, mode="valid"))
            norms *= np.linalg.norm(vector)
            best = max(best, float(np.max(dots / np.maximum(norms, 1e-12))))
    return best


def test_no_template_or_phone_in_clear(
    client: TestClient,
    platform: Platform,
    network: Network,
    lfw: Path,
    pipeline: FacePipeline,
    reid_pipeline: FacePipeline,
    dlib_engine: DlibResnetEngine,
) -> None:
    photo = lfw / "Abdel_Nasser_Assidi_0001.jpg"
    response = enrol(client, network, photo, phone=PHONE, payment_token="tok_visa_4242abcd")
    assert response.status_code == 201, response.text
    image = read_image_file(photo)
    stored = main_face(reid_pipeline.faces(image), image.shape).template.vector  # this engine's
    face = main_face(pipeline.faces(image), image.shape)
    raw = dlib_engine.raw_descriptors(dlib_engine.align(image, face.landmarks)[None])[0]
    blob = _stored_bytes(platform)
    with np.errstate(all="ignore"):
        assert _best_cosine(blob, stored.astype(np.float64)) < CLEAR_COSINE
        assert _best_cosine(blob, face.template.vector.astype(np.float64)) < CLEAR_COSINE
        assert _best_cosine(blob, raw.astype(np.float64)) < CLEAR_COSINE
    for secret in (PHONE, PHONE.replace(" ", ""), "7946 0958", "tok_visa_4242abcd"):
        assert secret.encode() not in blob


def test_the_scan_finds_a_vector_in_clear(pipeline: FacePipeline, lfw: Path) -> None:
    """The check above can fail: a vector written in clear is found at any offset."""
    image = read_image_file(lfw / "Abdel_Nasser_Assidi_0001.jpg")
    vector = main_face(pipeline.faces(image), image.shape).template.vector
    blob = b"xyz" + np.ascontiguousarray(vector, dtype="<f4").tobytes() + b"tail"
    with np.errstate(all="ignore"):
        assert _best_cosine(blob, vector.astype(np.float64)) > 0.999
