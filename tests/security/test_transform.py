"""The per-network secret orthonormal template transform."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from facekey.errors import KeyUnavailable
from facekey.security.transform import TemplateTransform, retransform

SECRET = bytes(range(32))
DIM = 128


def make(
    *,
    secret: bytes = SECRET,
    network_id: str = "net-a",
    engine_id: str = "dlib-resnet",
    dimension: int = DIM,
    version: int = 1,
) -> TemplateTransform:
    return TemplateTransform(
        secret, network_id=network_id, engine_id=engine_id, dimension=dimension, version=version
    )


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> npt.NDArray[np.float32]:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def cosines(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    x64 = x.astype(np.float64)
    norms = np.linalg.norm(x64, axis=1)
    return (x64 @ x64.T) / np.outer(norms, norms)


def test_matrix_is_orthonormal() -> None:
    q = make()._matrix
    np.testing.assert_allclose(q @ q.T, np.eye(DIM), atol=1e-12)


def test_preserves_cosines_and_dot_products() -> None:
    x = unit_vectors(200)
    y = make().apply(x)
    assert y.dtype == np.float32
    assert y.shape == x.shape
    assert np.max(np.abs(cosines(y) - cosines(x))) < 1e-5
    assert np.max(np.abs(y @ y.T - x @ x.T)) < 1e-5
    assert not np.allclose(y, x, atol=0.1)  # it did transform


def test_preserves_cosines_of_unnormalized_vectors() -> None:
    x = unit_vectors(50) * np.float32(7.5)
    assert np.max(np.abs(cosines(make().apply(x)) - cosines(x))) < 1e-5


def test_single_vector() -> None:
    transform = make()
    x = unit_vectors(3)
    y = transform.apply(x[0])
    assert y.shape == (DIM,)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, transform.apply(x)[0], atol=1e-6)


def test_invert_undoes_apply() -> None:
    transform = make()
    x = unit_vectors(20)
    inverted = transform.invert(transform.apply(x))
    assert inverted.dtype == np.float32
    np.testing.assert_allclose(inverted, x, atol=1e-6)


def test_same_inputs_give_the_same_matrix() -> None:
    np.testing.assert_array_equal(make()._matrix, make()._matrix)
    assert make().fingerprint == make().fingerprint


@pytest.mark.parametrize(
    "other",
    [
        {"network_id": "net-b"},
        {"version": 2},
        {"engine_id": "arcface-r100"},
        {"secret": bytes(range(1, 33))},
    ],
)
def test_other_network_version_engine_or_secret_differ(other: dict[str, object]) -> None:
    base = make()
    changed = make(**other)  # type: ignore[arg-type]
    assert base.fingerprint != changed.fingerprint
    x = unit_vectors(10)
    # Templates of one network are useless in another: cross-space cosines are near zero.
    cross = np.sum(base.apply(x) * changed.apply(x), axis=1)
    assert np.max(np.abs(cross)) < 0.5


def test_other_dimension_differs() -> None:
    assert make(dimension=512)._matrix.shape == (512, 512)


def test_retransform_moves_templates_to_the_new_version() -> None:
    old, new = make(version=1), make(version=2)
    x = unit_vectors(30)
    moved = retransform(old.apply(x), old, new)
    assert moved.dtype == np.float32
    np.testing.assert_allclose(moved, new.apply(x), atol=1e-6)
    np.testing.assert_allclose(new.invert(moved), x, atol=1e-6)


def test_retransform_refuses_other_engine_or_dimension() -> None:
    with pytest.raises(ValueError, match="same engine"):
        retransform(unit_vectors(1), make(), make(engine_id="other"))


@pytest.mark.parametrize("shape", [(DIM - 1,), (4, DIM + 1), (2, 2, DIM), ()])
def test_wrong_shape_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected shape"):
        make().apply(np.zeros(shape, dtype=np.float32))


def test_short_secret_is_refused() -> None:
    with pytest.raises(KeyUnavailable, match="32 bytes"):
        make(secret=b"too short")


def test_repr_and_attributes_hide_the_secret() -> None:
    transform = make(version=3)
    assert transform.version == 3
    assert SECRET.hex() not in repr(transform)
    assert all(value != SECRET for value in vars(transform).values())
