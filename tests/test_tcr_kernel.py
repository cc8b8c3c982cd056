"""The one-pass TCR kernel against the NumPy definition (SPEC 4)."""
import numpy as np
import pytest

from bioplastic.errors import ShapeError
from bioplastic.training.loss import tcr_loss


def tcr_reference(act, epoch_mask=None):
    """Slow NumPy form: L = sum e (a[t+1]-a[t])^2 / (N sum e), and dL/da."""
    act = act.astype(np.float64)
    T1, B, N = act.shape
    w = np.ones((T1 - 1, B)) if epoch_mask is None else np.asarray(epoch_mask, float)
    diff = act[1:] - act[:-1]
    n = max(N * w.sum(), 1.0)
    loss = np.sum(w[:, :, None] * diff ** 2) / n
    g = 2 * w[:, :, None] * diff / n
    grad = np.zeros_like(act)
    grad[1:] += g
    grad[:-1] -= g
    return loss, grad


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("T1", [1, 2, 17])
def test_matches_reference(dtype, tol, masked, T1):
    rng = np.random.default_rng(T1)
    act = rng.standard_normal((T1, 5, 9)).astype(dtype)
    mask = (rng.random((T1 - 1, 5)) < 0.5) if masked else None
    loss, grad = tcr_loss(act, mask, grad_scale=0.7)
    want_loss, want_grad = tcr_reference(act, mask)
    assert grad.dtype == dtype
    assert loss == pytest.approx(want_loss, rel=tol, abs=tol)
    np.testing.assert_allclose(grad, 0.7 * want_grad, rtol=tol, atol=tol)


def test_no_gradient_requested():
    act = np.random.default_rng(0).standard_normal((6, 2, 3))
    loss, grad = tcr_loss(act, need_grad=False)
    assert grad is None and loss == pytest.approx(tcr_reference(act)[0], rel=1e-14)


def test_non_contiguous_activity():
    act = np.random.default_rng(1).standard_normal((6, 4, 10))[:, ::2, ::3]
    loss, grad = tcr_loss(act)
    want_loss, want_grad = tcr_reference(act)
    assert loss == pytest.approx(want_loss, rel=1e-13)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-13, atol=1e-15)


def test_wrong_mask_shape():
    with pytest.raises(ShapeError, match="epoch mask"):
        tcr_loss(np.zeros((5, 2, 3)), np.ones((5, 2)))


@pytest.mark.parametrize("kind", ["lfrnn", "rank1"])
@pytest.mark.parametrize("tcr_on", ["rates", "states"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("lam", [0.0, 0.6])
def test_fused_tcr_in_the_adjoint_matches_the_separate_pass(kind, tcr_on, masked, lam):
    """The LFRNN adds TCR inside its adjoint kernel; the base class runs
    tcr_loss and then the plain adjoint. Both must give the same numbers,
    and the value is measured even at lambda = 0."""
    from bioplastic import make_network
    from bioplastic.networks.base import Network

    T, B = 12, 5
    net = make_network(kind, 2, 3, n_units=9, noise_std=0.0)
    rng = np.random.default_rng(3)
    params = net.init_params(rng)
    inputs = rng.standard_normal((T, B, 2))
    traj = net.forward(params, inputs)
    d_out = rng.standard_normal((T, B, 3))
    mask = (rng.random((T, B)) < 0.6) if masked else None
    fused, l_fused = net.backward_with_tcr(params, traj, inputs, d_out, lam, tcr_on=tcr_on, epoch_mask=mask)
    plain, l_plain = Network.backward_with_tcr(net, params, traj, inputs, d_out, lam, tcr_on=tcr_on,
                                               epoch_mask=mask)
    act = traj.rates if tcr_on == "rates" else traj.states
    assert l_fused == pytest.approx(tcr_reference(act, mask)[0], rel=1e-13) and l_fused > 0
    assert l_fused == pytest.approx(l_plain, rel=1e-13)
    for name in plain:
        np.testing.assert_allclose(fused[name], plain[name], rtol=1e-12, atol=1e-14, err_msg=name)
