"""The command line, end to end on real fixture images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from cli_helpers import people_folder, run_json, runner
from facekey.cli import app
from facekey.integrity import sha256_file


@pytest.fixture
def people(lfw: Path, tmp_path: Path) -> Path:
    """A folder-per-person set of three people, two photos each."""
    return people_folder(lfw.glob("A*_000[12].jpg"), tmp_path / "people")


def test_compare_same_and_different(isolated_env: Path, lfw: Path) -> None:
    same = run_json(
        "compare", str(lfw / "Aaron_Sorkin_0001.jpg"), str(lfw / "Aaron_Sorkin_0002.jpg")
    )
    other = run_json(
        "compare", str(lfw / "Aaron_Sorkin_0001.jpg"), str(lfw / "Aaron_Peirsol_0001.jpg")
    )
    assert isinstance(same["score"], float) and isinstance(other["score"], float)
    assert same["score"] > other["score"]
    assert same["engine"] == "face-reid-0095"
    assert same["match"] is True and other["match"] is False


def test_compare_reports_an_image_error(isolated_env: Path, lfw: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((lfw / "Aaron_Sorkin_0001.jpg").read_bytes()[:500])
    result = runner.invoke(app, ["compare", str(broken), str(lfw / "Aaron_Sorkin_0002.jpg")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "truncated" in result.stderr.lower()
    assert len(result.stderr.splitlines()) == 1


def test_detect_lists_every_face(isolated_env: Path, lfw: Path) -> None:
    faces = run_json("detect", str(lfw / "Cheryl_Hines_0001.jpg"))["faces"]
    assert isinstance(faces, list) and len(faces) >= 2


def test_models_add_and_list(isolated_env: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"operator supplied bytes")
    run_json("models", "add", str(model), "--sha256", sha256_file(model))
    listing = run_json("models", "list")
    assert "dlib-resnet-v1" in listing["engines"]  # type: ignore[operator]
    assert listing["model_files"][0]["engine"] == "onnx-arcface"  # type: ignore[index]


def test_eval_pairs_writes_the_report(isolated_env: Path, people: Path, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "Aaron_Peirsol 1 2\nAaron_Sorkin 1 2\nAbdel_Nasser_Assidi 1 2\n"
        "Aaron_Peirsol 1 Aaron_Sorkin 2\nAaron_Sorkin 1 Abdel_Nasser_Assidi 2\n"
        "Abdel_Nasser_Assidi 1 Aaron_Peirsol 2\n"
    )
    out = tmp_path / "report"
    run_json("eval", "pairs", "--images", str(people), "--pairs", str(pairs), "--out", str(out))
    report = json.loads((out / "report.json").read_text())
    assert report["pairs"] == 6
    assert report["images"] == 6
    assert report["failure_to_acquire_rate"] == 0.0
    assert report["accuracy"] == 1.0
    assert set(report["tar_at_far"]) == {"1e-2", "1e-3", "1e-4"}
    assert (out / "report.md").stat().st_size > 0
    assert (out / "det.png").read_bytes()[:4] == b"\x89PNG"


def test_calibrate_writes_a_table(isolated_env: Path, people: Path, tmp_path: Path) -> None:
    out = tmp_path / "table.json"
    summary = run_json("calibrate", "--images", str(people), "--out", str(out))
    unmasked = summary["tables"]["no-mask/no-mask"]
    assert unmasked["genuine_pairs"] == 3
    assert unmasked["impostor_pairs"] == 12
    table = json.loads(out.read_text())
    assert table["engine"] == "face-reid-0095" and table["format"] == 1
    assert table["condition"] == "no-mask/no-mask"


def test_calibrate_masked_tables_and_install(
    isolated_env: Path, people: Path, tmp_path: Path
) -> None:
    out = tmp_path / "table.json"
    summary = run_json(
        "calibrate", "--images", str(people), "--out", str(out), "--synthetic-masks", "--install"
    )
    masked = summary["tables"]["mask/no-mask"]
    # Each of 6 masked photos against the 5 unmasked photos that are not itself.
    assert masked["genuine_pairs"] + masked["impostor_pairs"] == 6 * 5
    assert summary["tables"]["mask/mask"]["impostor_pairs"] == 12
    assert json.loads((tmp_path / "table.mask-no-mask.json").read_text())["condition"] == (
        "mask/no-mask"
    )
    installed = json.loads((isolated_env / "calibrations" / "registry.json").read_text())
    assert len(installed["models"]) == 3


def test_unknown_engine_is_a_clear_error(isolated_env: Path, lfw: Path) -> None:
    result = runner.invoke(
        app,
        [
            "compare",
            "--engine",
            "nope",
            str(lfw / "Aaron_Sorkin_0001.jpg"),
            str(lfw / "Aaron_Sorkin_0002.jpg"),
        ],
    )
    assert result.exit_code == 2
    assert "installed engines" in result.stderr


def _commands(command: Any, path: str = "facekey") -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_every_option_and_argument_has_help() -> None:
    root = typer.main.get_command(app)
    missing = [
        f"{path}: {param.name}"
        for path, command in _commands(root)
        for param in command.params
        if not (getattr(param, "help", None) or "").strip()
    ]
    assert len(list(_commands(root))) > 40
    assert missing == []


def _facekey(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facekey.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_loading_blazeface_prints_nothing_on_stderr(isolated_env: Path, lfw: Path) -> None:
    shown = _facekey(
        "detect",
        str(lfw / "Aaron_Sorkin_0001.jpg"),
        env={"FACEKEY_DETECTORS": '["blazeface-short"]', "FACEKEY_DATA_DIR": str(isolated_env)},
    )
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)["faces"]) == 1  # found by BlazeFace alone
    assert shown.stderr == ""


def test_eval_pairs_checks_its_options_before_starting_workers(
    isolated_env: Path, people: Path, tmp_path: Path
) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("Aaron_Sorkin 1 2\nAaron_Sorkin 1 Aaron_Peirsol 2\n")
    args = ["eval", "pairs", "--images", str(people), "--pairs", str(pairs)]
    started = time.monotonic()
    # An installed engine whose model file was never added: each worker would fail to start.
    shown = _facekey(
        *args,
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "2",
        "--engine",
        "onnx-arcface",
        env={"FACEKEY_DATA_DIR": str(isolated_env)},
    )
    assert shown.returncode == 2
    assert shown.stderr.startswith("error: no model file is registered for onnx-arcface")
    assert len(shown.stderr.splitlines()) == 1  # no worker's traceback, no broken pool
    assert time.monotonic() - started < 60

    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o2"), "--workers", "4096"])
    assert result.exit_code == 2 and "cores" in result.stderr

    pairs.write_text("Aaron_Sorkin 1 2\nAaron_Peirsol 1 2\n")
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o3")])
    assert result.exit_code == 2
    assert "both same-person and different-person pairs" in result.stderr

    blocked = tmp_path / "file"
    blocked.write_text("")
    result = runner.invoke(app, [*args, "--out", str(blocked / "out")])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
