"""Nothing personal in clear at rest: the database file and a PostgreSQL dump are searched."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from api_helpers import Network, enrol
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from facekey.engines.dlib_resnet import DlibResnetEngine
from facekey.flows.platform import Platform
from facekey.imaging import read_image_file
from facekey.pipeline import FacePipeline, main_face
from facekey.store.tables import Subject, Template
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


def _subject_secrets(platform: Platform, subject_id: str) -> list[bytes]:
    """The subject's wrapped data key and sealed template vectors, as stored."""
    with platform.database.session() as session:
        subject = session.get(Subject, subject_id)
        assert subject is not None and subject.wrapped_data_key is not None
        templates = session.scalars(select(Template).where(Template.subject_id == subject_id))
        return [subject.wrapped_data_key, *(t.sealed_vector for t in templates)]


def test_erasure_leaves_no_key_or_template_bytes_on_disk(
    client: TestClient, platform: Platform, network: Network, lfw: Path
) -> None:
    """Right after the erasure returns, the database files (and WAL) hold neither the wrapped
    data key nor the sealed templates (SQLite: secure_delete and a checkpoint)."""
    if platform.database.dialect != "sqlite":
        pytest.skip("the files of a PostgreSQL server are its own; see docs/privacy.md")
    subject_id = enrol(client, network, lfw / "Aaron_Peirsol_0001.jpg").json()["subject_id"]
    secrets = _subject_secrets(platform, subject_id)
    assert all(secret in _stored_bytes(platform) for secret in secrets)  # the check can fail
    erased = client.delete(f"/v1/subjects/{subject_id}", headers=network.auth("privacy"))
    assert erased.status_code == 200, erased.text
    destroyed = erased.json()["receipt"]["destroyed"]
    assert destroyed["data_key"] is True and destroyed["rows"]["templates"] == 1
    assert "wrapped_data_key" in destroyed["fields"]
    stored = _stored_bytes(platform)
    assert not any(secret in stored for secret in secrets)


def test_database_files_are_private(platform: Platform) -> None:
    if platform.database.dialect != "sqlite":
        pytest.skip("SQLite files only")
    database = Path(str(platform.database.url.database))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            assert path.stat().st_mode & 0o777 == 0o600, path
    assert database.parent.stat().st_mode & 0o777 == 0o700
