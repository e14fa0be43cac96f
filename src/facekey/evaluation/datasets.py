"""Image folders: a plain folder of images, or one subfolder per person."""

from __future__ import annotations

from pathlib import Path

from facekey.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


def image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder``, recursively, sorted."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def labelled_images(folder: Path) -> tuple[list[Path], list[str]]:
    """(paths, person labels) of a folder-per-person set: ``folder/<person>/<image>``."""
    paths: list[Path] = []
    labels: list[str] = []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in image_files(person):
            paths.append(path)
            labels.append(person.name)
    if not paths:
        raise DatasetError(f"{folder} has no person folders with images in them")
    return paths, labels
