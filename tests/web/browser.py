"""A real browser for the pages' tests: Debian's Chromium driven by Playwright, a fake camera
playing a video made from real frames, the app served by uvicorn on loopback, and the checks
every page must pass (no console error, so no CSP violation; no serious axe violation; text
that reflows at 200 % zoom). ``FACEKEY_WRITE_SCREENSHOTS=1`` also writes each page's
screenshots, at desktop and phone widths, to ``docs/pages/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from axe_playwright_python.sync_playwright import Axe
from fastapi import FastAPI
from PIL import Image
from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
SKIP_ENV = "FACEKEY_SKIP_BROWSER"
SCREENSHOTS_ENV = "FACEKEY_WRITE_SCREENSHOTS"
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "pages"
#: Without these, Chromium tries to reach Google's services at every start (there is no network).
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: 200 % zoom of a 1280-pixel window lays the page out 640 CSS pixels wide.
ZOOMED = {"width": 640, "height": 800}
FPS = 10
_AXE = Axe()


def write_y4m(frames: Sequence[Path], seconds: Sequence[float], out: Path) -> Path:
    """A raw 4:2:0 video (Chromium's fake camera reads YUV4MPEG2) holding each frame for
    its seconds; all frames must have one size."""
    with Image.open(frames[0]) as first:
        width, height = first.size
    with out.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for path, hold in zip(frames, seconds, strict=True):
            with Image.open(path) as image:
                y, cb, cr = image.convert("RGB").convert("YCbCr").split()
            half = (width // 2, height // 2)
            planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
            for _ in range(round(hold * FPS)):
                video.write(b"FRAME\n" + planes)
    return out


def launch(playwright: Playwright, video: Path | None) -> Browser:
    """Debian's Chromium, headless; with a fake camera playing ``video`` when given (without
    one, the machine has no camera at all)."""
    flags = list(CHROMIUM_FLAGS)
    if video is not None:
        flags += [
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ]
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=flags)


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


class Watched:
    """A page whose console errors (a CSP violation is one) and uncaught errors are kept."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def check(self, name: str) -> None:
        """The checks every page passes, and its screenshots when asked for."""
        page = self.page
        page.wait_for_load_state("networkidle")
        assert self.errors == [], (name, self.errors)
        violations = _AXE.run(page).response["violations"]
        serious = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
        assert serious == [], (name, serious)
        size = page.viewport_size or DESKTOP
        page.set_viewport_size(ZOOMED)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, (name, "scrolls sideways at 200 % zoom", overflow)
        if os.environ.get(SCREENSHOTS_ENV) == "1":
            for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                page.set_viewport_size(viewport)
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
        page.set_viewport_size(size)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if CHROMIUM.exists() and shutil.which(str(CHROMIUM)):
        return None
    return (
        f"Chromium is not installed at {CHROMIUM}: apt-get install chromium "
        f"(or set {SKIP_ENV}=1 to skip the browser tests)"
    )
