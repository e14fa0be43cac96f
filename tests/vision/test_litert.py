"""LiteRT's delegate notice is held back; everything else written to stderr meanwhile is not.

(That loading a model prints nothing is tested in a fresh process, where LiteRT has not yet
said it once: tests/test_cli.py.)
"""

from __future__ import annotations

import os

import pytest

from facekey.vision.litert import DELEGATE_NOTICE, _without_delegate_notice


def test_the_notice_is_dropped_and_other_lines_pass(capfd: pytest.CaptureFixture[str]) -> None:
    with _without_delegate_notice():
        os.write(2, b"before\n" + DELEGATE_NOTICE + b"\nafter\n")
    assert capfd.readouterr().err == "before\nafter\n"
