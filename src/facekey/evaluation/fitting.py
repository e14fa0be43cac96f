"""Small model fits for the development tools (never run by a server)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_Array = npt.NDArray[np.float64]


def fit_logistic_weights(
    x: npt.ArrayLike, y: npt.ArrayLike, *, l2: float = 1.0, steps: int = 50
) -> _Array:
    """(bias, weights…) of an L2-regularised logistic regression, by Newton's method.

    ``x`` is samples × features, ``y`` the 0/1 labels; the bias is not penalised.
    """
    features = np.asarray(x, dtype=np.float64)
    design = np.column_stack([np.ones(len(features)), features])
    labels = np.asarray(y, dtype=np.float64)
    w = np.zeros(design.shape[1])
    penalty = l2 * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -50, 50)))
        gradient = design.T @ (p - labels) + penalty @ w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + penalty
        w -= np.linalg.solve(hessian, gradient)
    return w
