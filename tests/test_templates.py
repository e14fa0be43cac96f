from __future__ import annotations

import numpy as np
import pytest

from facekey.errors import EngineMismatch, TemplateFormatError
from facekey.templates import Template, choose_diverse


def _template(engine: str = "dlib-resnet-v1", seed: int = 0, dim: int = 128) -> Template:
    vector = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return Template(engine, "1", vector / np.linalg.norm(vector), 0.75)


def test_round_trip() -> None:
    template = _template()
    again = Template.from_bytes(template.to_bytes())
    assert again == template
    assert again.engine_id == "dlib-resnet-v1"
    assert again.quality == pytest.approx(0.75)
    np.testing.assert_array_equal(again.vector, template.vector)


def test_float16_round_trip_is_close() -> None:
    template = _template()
    again = Template.from_bytes(template.to_bytes(dtype="float16"))
    np.testing.assert_allclose(again.vector, template.vector, atol=1e-3)
    assert len(template.to_bytes(dtype="float16")) < len(template.to_bytes())


def test_similarity_is_cosine() -> None:
    a, b = _template(seed=1), _template(seed=2)
    assert a.similarity(a) == pytest.approx(1.0)
    assert a.similarity(b) == pytest.approx(float(np.dot(a.vector, b.vector)), abs=1e-6)


def test_different_engines_do_not_compare() -> None:
    with pytest.raises(EngineMismatch, match="fake"):
        _template().similarity(_template(engine="fake"))


def test_different_versions_do_not_compare() -> None:
    a = _template()
    b = Template(a.engine_id, "2", a.vector)
    with pytest.raises(EngineMismatch):
        a.similarity(b)


@pytest.mark.parametrize(
    "data",
    [b"", b"FKT1", b"XXXX" + bytes(20), _template().to_bytes()[:-4], _template().to_bytes() + b"0"],
)
def test_malformed_bytes(data: bytes) -> None:
    with pytest.raises(TemplateFormatError):
        Template.from_bytes(data)


def test_choose_diverse_prefers_quality_then_difference() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=16).astype(np.float32)
    other = rng.normal(size=16).astype(np.float32)
    vectors = np.stack([base, base + 0.01, other, base + 0.02]).astype(np.float32)
    # The sharpest frame first; then the different face beats the near-copies of the first.
    assert choose_diverse([0.9, 0.95, 0.5, 0.8], vectors, 2) == [1, 2]
    assert choose_diverse([0.9, 0.95, 0.5, 0.8], vectors, 1) == [1]
    assert len(choose_diverse([0.9, 0.95, 0.5, 0.8], vectors, 10)) <= 4


def test_choose_diverse_stops_at_exact_copies_and_checks_lengths() -> None:
    same = np.ones((3, 8), dtype=np.float32)
    assert choose_diverse([0.5, 0.7, 0.6], same, 3) == [1]
    assert choose_diverse([], np.zeros((0, 8), dtype=np.float32), 3) == []
    with pytest.raises(ValueError):
        choose_diverse([0.5], same, 2)
