"""Model-vs-data similarity measures on cases with known answers."""
import numpy as np
import pytest

from bioplastic.compare import cca_correlations, compare, pca, procrustes_distance
from bioplastic.datasets import load_example
from bioplastic.errors import ShapeError


def _latent(rng, n=400, k=3):
    t = np.linspace(0, 6, n)
    return np.stack([np.sin(t * (i + 1)) + 0.1 * rng.standard_normal(n) for i in range(k)], axis=1)


def _embedding(rng, n_units, k=3):
    """k orthonormal directions in an n_units space, as rows (k, n_units)."""
    q, _ = np.linalg.qr(rng.standard_normal((n_units, k)))
    return q.T


def test_same_geometry_under_rotation_scale_and_embedding(rng):
    z = _latent(rng)
    a = z @ _embedding(rng, 20)           # 20 "model units"
    b = 5.0 * z @ _embedding(rng, 35)     # 35 "neurons", another scale and rotation
    assert procrustes_distance(a, b, 3) < 1e-6
    np.testing.assert_allclose(cca_correlations(a, b, 3), 1.0, atol=1e-8)


def test_cca_ignores_any_linear_mixing_procrustes_does_not(rng):
    z = _latent(rng)
    a = z @ rng.standard_normal((3, 20))
    b = z @ np.diag([1.0, 0.2, 3.0]) @ rng.standard_normal((3, 35))
    np.testing.assert_allclose(cca_correlations(a, b, 3), 1.0, atol=1e-8)
    assert procrustes_distance(a, b, 3) > 1e-3


def test_unrelated_activity_is_far(rng):
    a = _latent(rng) @ rng.standard_normal((3, 10))
    b = rng.standard_normal((400, 10))
    assert procrustes_distance(a, b, 3) > 0.8
    assert cca_correlations(a, b, 3).mean() < 0.3


def test_orthogonal_subspaces_reach_the_maximum():
    x = np.zeros((4, 2))
    x[:, 0] = [1, -1, 0, 0]
    y = np.zeros((4, 2))
    y[:, 0] = [0, 0, 1, -1]
    assert procrustes_distance(x, y, 1) == pytest.approx(np.sqrt(2))


def test_pca_matches_covariance_eigenvalues(rng):
    x = rng.standard_normal((200, 5)) @ np.diag([3, 2, 1, 0.5, 0.1])
    scores, ratio = pca(x, 2)
    ev = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1]
    np.testing.assert_allclose(scores.var(axis=0), ev[:2], rtol=1e-10)
    np.testing.assert_allclose(ratio, ev[:2] / ev.sum(), rtol=1e-10)


def test_time_first_arrays_accepted(rng):
    a = rng.standard_normal((10, 4, 6))
    out = compare(a, a.copy(), 2)
    assert out["procrustes"] < 1e-6 and out["cca_mean"] == pytest.approx(1.0)


def test_errors(rng):
    with pytest.raises(ShapeError, match="same samples"):
        procrustes_distance(rng.standard_normal((10, 3)), rng.standard_normal((11, 3)))
    with pytest.raises(ShapeError, match="n_components"):
        cca_correlations(rng.standard_normal((10, 3)), rng.standard_normal((10, 3)), 5)
    bad = rng.standard_normal((10, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ShapeError, match="NaN"):
        compare(bad, rng.standard_normal((10, 3)), 2)
    with pytest.raises(ShapeError, match="no variance"):
        procrustes_distance(np.ones((10, 3)), rng.standard_normal((10, 3)), 1)


def test_example_dataset():
    d = load_example()
    assert d["attrs"]["synthetic"]
    assert d["rates_hz"].shape == (100, 32, 40) and d["inputs"].shape == (100, 32, 3)
    assert np.all(d["rates_hz"] >= 0)


def test_compare_protocol_tiny(tmp_path, monkeypatch):
    import json

    from bioplastic.protocol import load_protocol

    mod = load_protocol("compare_to_data")
    monkeypatch.setattr(mod, "QUICK", {"seeds": 2, "n_units": 8, "iterations": 5})
    mod.main(tmp_path, quick=True)
    pred = json.loads((tmp_path / "predictions.json").read_text())
    assert pred["dataset_is_synthetic"] is True and len(pred["per_seed"]) == 2
    assert set(pred["summary"]) >= {"trained.procrustes", "untrained.cca_mean"}
    assert (tmp_path / "pc_trajectories.png").exists() and (tmp_path / "report.md").exists()
