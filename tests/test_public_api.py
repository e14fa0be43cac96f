"""The public API is small, sorted and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import facekey


def test_all_is_sorted_and_resolves() -> None:
    assert facekey.__all__ == sorted(facekey.__all__)
    for name in facekey.__all__:
        assert getattr(facekey, name) is not None


def test_import_loads_no_model_and_no_heavy_dependency() -> None:
    code = (
        "import sys, facekey; "
        "heavy = [m for m in ('dlib', 'onnxruntime', 'onnx', 'ai_edge_litert', 'numpy', "
        "'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
