"""Development sources: videos decoded and scaled, session windows (synthetic video)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facekey.evaluation.liveness_sources import extract_video, read_video, session_windows


def _video(path: Path, frames: int, size: tuple[int, int]) -> Path:
    import av

    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            image = np.full((height, width, 3), (index * 10) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_video_is_decoded_in_order_and_scaled_to_640(tmp_path: Path) -> None:
    video = _video(tmp_path / "live.mp4", 12, (1280, 720))
    frames = list(read_video(video))
    assert len(frames) == 12
    assert frames[0].shape == (360, 640, 3)
    assert frames[0].mean() < frames[5].mean()  # the brightness ramp, in capture order
    written = extract_video(video, tmp_path / "frames")
    assert [p.name for p in written[:2]] == ["frame-0000.jpg", "frame-0001.jpg"]
    assert len(extract_video(video, tmp_path / "frames")) == 12  # extracted once, then reused


def test_session_windows_take_every_second_frame_and_overlap() -> None:
    frames = [Path(f"f{i:03d}") for i in range(40)]
    windows = session_windows(frames)
    assert len(windows) == 3  # starts 0, 10, 20: a window spans 19 frames
    assert windows[0] == frames[0:19:2] and windows[1][0] == frames[10]
    assert session_windows(frames[:18]) == []
