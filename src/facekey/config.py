"""Settings, read from ``FACEKEY_*`` environment variables (``__`` nests).

There is no global instance: entry points build one ``Settings()`` and pass what they need down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ImageLimits(BaseModel):
    """What an image may cost, checked before its pixels are decoded, and the size it is
    decoded to.

    A baseline JPEG is decoded straight at a reduced scale (its DCT allows 1/2, 1/4, 1/8), so
    even a large one costs little. A progressive JPEG must read every coefficient of every scan
    whatever the scale, so its cost follows its bytes and pixels: it has lower limits of both,
    and at most ``max_jpeg_scans`` scans (cameras write about ten). PNG and WebP are decoded
    whole, hence their own pixel limit. Every image is then brought down to ``work_side`` on
    its longer side: more pixels only slow detection, and a face stays far above the size
    recognition needs. With these defaults an accepted image decodes in about 0.3 s of one
    core or less (docs/hostile-load.md).
    """

    max_bytes: int = Field(default=15 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=40_000_000, gt=0)
    max_pixels_progressive: int = Field(default=12_000_000, gt=0)
    max_bytes_progressive: int = Field(default=4 * 1024 * 1024, gt=0)
    max_jpeg_scans: int = Field(default=64, gt=0)
    max_pixels_png_webp: int = Field(default=2048 * 2048, gt=0)
    max_side: int = Field(default=12_000, gt=0)
    work_side: int = Field(default=1600, ge=256)


class Settings(BaseSettings):
    """facekey's configuration."""

    model_config = SettingsConfigDict(env_prefix="FACEKEY_", env_nested_delimiter="__")

    data_dir: Path = Path("var")
    #: The engine of new networks (existing networks keep theirs until they migrate).
    engine: str = "face-reid-0095"
    #: dlib-resnet-v1's backend: "onnx" (graph converted from dlib's file) or "dlib".
    dlib_backend: str = "onnx"
    #: Detector fallback order, tried left to right until one finds a face.
    detectors: tuple[str, ...] = ("blazeface-short", "hog0", "hog1")
    images: ImageLimits = ImageLimits()

    #: SQLAlchemy URL; SQLite under the data directory when unset.
    database_url: str | None = None
    #: The key-encryption key file (created 0600 on first start when missing).
    kek_file: Path | None = None
    #: 1:N identification names a match only when N · FMR(best score), the chance that a
    #: stranger among the N templates searched scores as high, is at most this.
    identify_false_match_target: float = Field(default=1e-3, gt=0, lt=1)
    #: 1:1 verification matches when k · FMR(score) is at most this (k: templates compared).
    verify_fmr_target: float = Field(default=1e-4, gt=0, lt=1)
    #: An enrolment whose face matches an enrolled subject at this FMR is a duplicate.
    duplicate_fmr: float = Field(default=1e-5, gt=0, lt=1)
    #: Keep enrolment images, encrypted, for re-templating with another engine.
    retain_images: bool = False
    #: Below this many templates a gallery is searched exactly; HNSW above.
    hnsw_threshold: int = Field(default=50_000, gt=0)
    #: HNSW graph degree, construction and search breadth (see docs/scale.md for the trade-off:
    #: M48/efC200 holds recall 0.99 at efSearch 256 on hard distractors where M32/efC100 does not).
    hnsw_m: int = Field(default=48, gt=0)
    hnsw_ef_construction: int = Field(default=200, gt=0)
    hnsw_ef_search: int = Field(default=256, gt=0)
    #: Where 1:N search runs: "faiss" (embedded, one index copy per machine) or "milvus".
    gallery_backend: Literal["faiss", "milvus"] = "faiss"
    #: Milvus: a server or cluster URI; unset, milvus-lite in ``<data dir>/milvus.db``.
    milvus_uri: str | None = None
    #: Milvus: the access token (``user:password`` or an API key), if the server needs one.
    milvus_token: str | None = None
    #: Galleries start from sealed snapshots plus the change log (FAISS backend).
    snapshots: bool = True
    #: Where snapshots are written; unset, ``<data dir>/snapshots``.
    snapshot_dir: Path | None = None
    #: A gallery rebuilt from the database is written as a snapshot when it has this many.
    snapshot_min_templates: int = Field(default=10_000, ge=0)
    #: Seconds between background snapshots (0: only ``facekey admin snapshot``).
    snapshot_interval_s: float = Field(default=900.0, ge=0)
    #: A background snapshot is written only after this many changes since the newest one.
    snapshot_min_changes: int = Field(default=1000, ge=1)
    #: Memory-only directory where each machine keeps ONE decrypted copy of every snapshot for
    #: its workers to map (0700, this user only); unset or missing: a private copy per process.
    shared_index_dir: Path | None = Path("/dev/shm")
    #: Checkout: estimated false-charge probability allowed per face-only transaction.
    false_charge_target: float = Field(default=1e-5, gt=0, lt=1)
    #: Checkout: per step-up attempt, the chance that the face of someone who knows the
    #: customer's phone digits (or PIN) passes as theirs (docs/risk-policy.md, threat model).
    step_up_false_charge_target: float = Field(default=1e-3, gt=0, lt=1)
    #: Checkout: amounts above this (minor units) always need a step-up.
    step_up_amount_minor: int = Field(default=10_000, ge=0)
    #: Checkout: amounts above this are declined.
    max_amount_minor: int = Field(default=100_000, gt=0)
    #: Enrolment and checkout accept only a live liveness session (no bare images/templates).
    require_liveness: bool = False
    #: The most images accepted by one request (enrolment takes 1–5).
    max_images_per_request: int = Field(default=5, gt=0, le=20)

    @property
    def kek_path(self) -> Path:
        """Where the key-encryption key lives."""
        return self.kek_file or self.data_dir / "keys" / "kek.key"

    @property
    def snapshot_path(self) -> Path:
        """Where gallery snapshots live."""
        return self.snapshot_dir or self.data_dir / "snapshots"

    @property
    def models_dir(self) -> Path:
        """Operator-registered model files and converted models live here."""
        return self.data_dir / "models"
