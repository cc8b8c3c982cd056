"""Similarity between model activity and recorded activity (SPEC 7).

Both inputs are activity matrices of shape (samples, units) over the same
samples (time points x trials, in the same order); the unit counts may
differ. Each is centred and reduced to its top ``n_components`` principal
components before comparison, so the measures compare population geometry,
not single units.

- :func:`procrustes_distance`: after scaling both PC trajectories to unit
  Frobenius norm, ``d = min_R ||A - B R||_F`` over orthogonal R, which equals
  ``sqrt(2 - 2 ||A^T B||_*)`` (nuclear norm); 0 for identical geometry up to
  rotation, sqrt(2) for orthogonal ones.
- :func:`cca_correlations`: canonical correlations of the two PC sets, the
  singular values of ``Q_A^T Q_B`` with Q orthonormal bases of the centred PCs
  (Raghu et al. 2017, SVCCA).
"""
from __future__ import annotations

import numpy as np

from .errors import ShapeError


def _check_pair(a, b, n_components):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim == 3:
        a = a.reshape(-1, a.shape[-1])
    if b.ndim == 3:
        b = b.reshape(-1, b.shape[-1])
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"activity must be (samples, units) or (T, B, units); got {a.shape} and {b.shape}")
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"model and data must have the same samples (time x trials): {a.shape[0]} != {b.shape[0]}")
    for name, x in (("model", a), ("data", b)):
        if not np.all(np.isfinite(x)):
            raise ShapeError(f"{name} activity contains NaN or inf")
    k = int(n_components)
    if k < 1 or k > min(a.shape[1], b.shape[1], a.shape[0] - 1):
        raise ShapeError(f"n_components must be in [1, {min(a.shape[1], b.shape[1], a.shape[0] - 1)}], got {k}")
    return a, b, k


def pca(x, n_components):
    """Centre ``x`` (samples, units) and project on its top principal components.

    Returns (scores (samples, k), explained variance ratio (k,)).
    """
    x = np.asarray(x, dtype=float)
    xc = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    var = s ** 2
    total = var.sum() if var.sum() > 0 else 1.0
    return u[:, :n_components] * s[:n_components], var[:n_components] / total


def procrustes_distance(model, data, n_components=3) -> float:
    """Orthogonal Procrustes distance between the PC trajectories (see module doc)."""
    a, b, k = _check_pair(model, data, n_components)
    pa, _ = pca(a, k)
    pb, _ = pca(b, k)
    na, nb = np.linalg.norm(pa), np.linalg.norm(pb)
    if na == 0 or nb == 0:
        raise ShapeError("activity has no variance; Procrustes distance undefined")
    nuc = np.linalg.svd((pa / na).T @ (pb / nb), compute_uv=False).sum()
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * nuc)))


def cca_correlations(model, data, n_components=3) -> np.ndarray:
    """Canonical correlations (descending) between the top PCs of both."""
    a, b, k = _check_pair(model, data, n_components)
    pa, _ = pca(a, k)
    pb, _ = pca(b, k)
    qa, _ = np.linalg.qr(pa)
    qb, _ = np.linalg.qr(pb)
    return np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)


def compare(model, data, n_components=3) -> dict:
    """Both measures at once: ``{"procrustes": d, "cca": [rho_1..rho_k], "cca_mean": mean}``."""
    d = procrustes_distance(model, data, n_components)
    rho = cca_correlations(model, data, n_components)
    return {"procrustes": d, "cca": rho.tolist(), "cca_mean": float(rho.mean()), "n_components": int(n_components)}
