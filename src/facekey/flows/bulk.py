"""Bulk import of a folder-per-person set through the API (each folder one consenting person)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from facekey.client import ApiError, FacekeyClient
from facekey.evaluation.datasets import image_files
from facekey.evaluation.progress import progress_bar


def import_people(
    client: FacekeyClient, people: Path, *, terms_version: str, per_person: int = 1
) -> dict[str, Any]:
    """Enrol every person folder; returns counts and the refusal reasons."""
    folders = sorted(p for p in people.iterdir() if p.is_dir())
    enrolled: dict[str, str] = {}
    refused: Counter[str] = Counter()
    with progress_bar("enrolling", len(folders)) as advance:
        for folder in folders:
            images = image_files(folder)[:per_person]
            try:
                if images:
                    body = client.enrol(images, terms_version=terms_version, channel="import")
                    enrolled[folder.name] = body["subject_id"]
            except ApiError as exc:
                refused[exc.problem.get("title", str(exc.status))] += 1
            advance(1)
    return {
        "people": len(folders),
        "enrolled": len(enrolled),
        "refused": dict(refused),
        "subjects": enrolled,
    }
