"""Helpers of the CLI and tool tests: run a command for its JSON, lay out a people folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from typer.testing import CliRunner

from facekey.cli import app

runner = CliRunner()


def run_json(*args: str) -> dict[str, object]:
    """Run ``facekey ARGS`` in-process; it must succeed and print JSON."""
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload: dict[str, object] = json.loads(result.stdout)
    return payload


def people_folder(photos: Iterable[Path], root: Path) -> Path:
    """A folder-per-person set (``root/<Name>/<Name>_NNNN.jpg``) of LFW-named photos."""
    for path in sorted(photos):
        folder = root / path.stem.rsplit("_", 1)[0]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    return root
