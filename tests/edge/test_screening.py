"""Temperature screening on real faces with synthetic radiometric frames of known
temperatures: the command's JSON contract, the calibration offset, and the frames that must
not give a temperature (a hand, a photo, two people)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from thermal_scenes import ROOM_C, draw_hand, scene, side_by_side

from cli_helpers import runner
from facekey.cli import app
from facekey.edge.screening import Screener, ScreeningSettings
from facekey.edge.thermal import (
    RawY16Stream,
    centi_kelvin,
    decode_thermal,
    read_thermal_file,
    registered,
    to_celsius,
)
from facekey.errors import UnsupportedImage
from facekey.imaging import read_image_file

FIXTURES = Path(__file__).parents[1] / "fixtures"
FACE = FIXTURES / "lfw" / "Aaron_Peirsol_0001.jpg"
OTHER = FIXTURES / "lfw" / "Cheryl_Hines_0001.jpg"
MASKED = FIXTURES / "mfr2" / "AdrianDunbar_0001.png"
#: The simulated camera reads this much low; the kiosk is calibrated against a black body.
BIAS_C = 0.6


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener(ScreeningSettings(offset_c=BIAS_C))


def _pair(tmp_path: Path, image: np.ndarray, frame: np.ndarray, name: str = "x") -> list[str]:
    rgb, thermal = tmp_path / f"{name}.png", tmp_path / f"{name}.npy"
    Image.fromarray(image).save(rgb)
    np.save(thermal, frame)
    return ["--rgb", str(rgb), "--thermal", str(thermal)]


def _screen(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["edge", "screen", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload: dict[str, object] = json.loads(result.stdout)
    assert set(payload) == {"decision", "temperature_c"}
    return payload


@pytest.mark.parametrize(
    ("celsius", "decision"), [(36.5, "pass"), (37.4, "pass"), (37.6, "refer"), (38.5, "refer")]
)
def test_known_temperatures_with_a_calibrated_offset(
    tmp_path: Path, celsius: float, decision: str
) -> None:
    image = read_image_file(FACE)
    pair = _pair(tmp_path, image, scene(image, [celsius], bias_c=BIAS_C))
    assert _screen(*pair, "--offset", str(BIAS_C)) == {
        "decision": decision,
        "temperature_c": celsius,
    }


def test_without_the_offset_a_fever_reads_low(tmp_path: Path) -> None:
    image = read_image_file(FACE)
    pair = _pair(tmp_path, image, scene(image, [37.6], bias_c=BIAS_C))
    assert _screen(*pair) == {"decision": "pass", "temperature_c": 37.0}
    assert _screen(*pair, "--offset", "0.6", "--threshold", "38.0")["decision"] == "pass"


def test_the_command_prints_only_the_contract(tmp_path: Path) -> None:
    """The installed command, as a kiosk integration calls it: one JSON line, exit 0."""
    image = read_image_file(FACE)
    pair = _pair(tmp_path, image, scene(image, [38.5]))
    command = [sys.executable, "-m", "facekey.cli", "edge", "screen", *pair, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"decision": "refer", "temperature_c": 38.5}
    assert done.stdout.count("\n") == 1


def test_a_photo_is_not_screened(screener: Screener) -> None:
    image = read_image_file(FACE)
    result = screener.screen(image, to_celsius(scene(image, [None])))
    assert (result.decision, result.temperature_c) == ("not_screened", None)


def test_no_face_is_not_screened(screener: Screener) -> None:
    empty = np.full((240, 320, 3), 128, dtype=np.uint8)
    warm = to_celsius(centi_kelvin(np.full((240, 320), 37.0)))
    assert screener.screen(empty, warm).decision == "not_screened"


def test_a_hand_over_the_eyes_gives_no_temperature(screener: Screener) -> None:
    """The hand is warm but cooler than the canthi it hides: never a pass at skin temperature."""
    image = read_image_file(FACE)
    for celsius in (36.5, 38.5):
        frame = to_celsius(scene(image, [celsius], bias_c=BIAS_C, hand=True))
        covered = screener.screen(draw_hand(image), frame)
        assert covered.decision in ("remeasure", "not_screened"), covered
        assert covered.temperature_c is None
    # the thermal frame alone (the hand not seen in RGB) is caught by the site check
    frame = to_celsius(scene(image, [38.5], bias_c=BIAS_C, hand=True))
    assert screener.screen(image, frame).decision == "remeasure"


@pytest.mark.parametrize(("celsius", "decision"), [(36.5, "pass"), (38.5, "refer")])
def test_a_mask_over_nose_and_mouth_still_screens(
    screener: Screener, celsius: float, decision: str
) -> None:
    image = read_image_file(MASKED)
    result = screener.screen(image, to_celsius(scene(image, [celsius], bias_c=BIAS_C, mask=True)))
    assert (result.decision, result.temperature_c) == (decision, celsius)


def test_two_people_are_screened_one_at_a_time(screener: Screener) -> None:
    image = side_by_side(read_image_file(FACE), read_image_file(OTHER))
    both = screener.screen(image, to_celsius(scene(image, [36.6, 38.4], bias_c=BIAS_C)))
    assert (both.decision, both.temperature_c) == ("remeasure", None)
    # a person beside a poster of a face: the poster is not a person
    beside = screener.screen(image, to_celsius(scene(image, [38.4, None], bias_c=BIAS_C)))
    assert (beside.decision, beside.temperature_c) == ("refer", 38.4)


def test_a_cold_face_and_a_far_face_are_measured_again(screener: Screener) -> None:
    image = read_image_file(FACE)
    frame = scene(image, [32.5], bias_c=BIAS_C, skin_c=30.5)  # just in from the cold
    cold = screener.screen(image, to_celsius(frame))
    assert cold.decision == "remeasure" and "cold" in cold.reason
    small = np.asarray(Image.fromarray(image).resize((125, 125)))
    padded = np.full((250, 250, 3), 40, dtype=np.uint8)
    padded[60:185, 60:185] = small
    far = screener.screen(padded, to_celsius(scene(padded, [36.6], bias_c=BIAS_C)))
    assert far.decision in ("remeasure", "not_screened") and far.temperature_c is None


# ---------------------------------------------------------------------- the frame format


def test_npy_and_png_frames_in_centi_kelvin(tmp_path: Path) -> None:
    values = centi_kelvin(np.array([[37.5, ROOM_C], [0.0, 100.0]]))
    assert values.dtype == np.uint16 and int(values[0, 0]) == 31065
    buffer = io.BytesIO()
    np.save(buffer, values)
    png = io.BytesIO()
    Image.fromarray(values).save(png, format="PNG")
    for data in (buffer.getvalue(), png.getvalue()):
        np.testing.assert_allclose(decode_thermal(data), [[37.5, 22.0], [0.0, 100.0]], atol=0.01)
    np.save(tmp_path / "int64.npy", values.astype(np.int64))  # numpy's default integers
    assert read_thermal_file(tmp_path / "int64.npy")[0, 0] == pytest.approx(37.5, abs=0.01)


@pytest.mark.parametrize(
    "array",
    [
        np.full((4, 4), 37.5, dtype=np.float32),  # °C, not centi-kelvin
        np.full((4, 4, 3), 31065, dtype=np.uint16),
        np.full((4, 4), 70000, dtype=np.int64),
    ],
)
def test_frames_that_break_the_contract_are_refused(array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    with pytest.raises(UnsupportedImage):
        decode_thermal(buffer.getvalue())


def test_a_lower_resolution_sensor_is_scaled_and_another_view_refused() -> None:
    thermal = to_celsius(centi_kelvin(np.arange(12, dtype=np.float64).reshape(3, 4)))
    scaled = registered(thermal, (6, 8, 3))
    assert scaled.shape == (6, 8) and scaled[5, 7] == thermal[2, 3]
    with pytest.raises(UnsupportedImage, match="field of view"):
        registered(thermal, (6, 6, 3))


def test_a_raw_y16_stream() -> None:
    frames = centi_kelvin(np.array([[[36.0, 37.0]], [[38.0, 39.0]]]))
    stream = io.BytesIO(frames.astype("<u2").tobytes() + b"\x01")  # a partial frame at the end
    read = list(RawY16Stream(stream, width=2, height=1).frames())
    assert len(read) == 2
    np.testing.assert_allclose(read[1], [[38.0, 39.0]], atol=0.01)
