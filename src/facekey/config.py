"""Settings, read from ``FACEKEY_*`` environment variables (``__`` nests).

There is no global instance: entry points build one ``Settings()`` and pass what they need down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ImageLimits(BaseModel):
    """Limits applied to every image before its pixels are decoded."""

    max_bytes: int = Field(default=15 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=40_000_000, gt=0)
    max_side: int = Field(default=12_000, gt=0)


class Settings(BaseSettings):
    """facekey's configuration."""

    model_config = SettingsConfigDict(env_prefix="FACEKEY_", env_nested_delimiter="__")

    data_dir: Path = Path("var")
    engine: str = "dlib-resnet-v1"
    #: dlib-resnet-v1's backend: "onnx" (graph converted from dlib's file) or "dlib".
    dlib_backend: str = "onnx"
    #: Detector fallback order, tried left to right until one finds a face.
    detectors: tuple[str, ...] = ("hog0", "blazeface-short", "hog1")
    images: ImageLimits = ImageLimits()

    @property
    def models_dir(self) -> Path:
        """Operator-registered model files and converted models live here."""
        return self.data_dir / "models"
