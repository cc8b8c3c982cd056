"""The packed-panel micro-kernel of the Euler step against NumPy."""
import numpy as np
import pytest

from bioplastic.machinery.panels import (MR, adjoint_panels, forward_panels, pack_columns,
                                       pack_forward, panel_product_, panel_width)

TOL = {np.float64: 1e-12, np.float32: 3e-5}
NONE = {np.float64: np.empty((0, 0)), np.float32: np.empty((0, 0), np.float32)}


def _net(rng, N, I, O, dtype):
    return tuple(rng.standard_normal(s).astype(dtype) for s in ((N, N), (N, I), (N,), (O, N), (O,)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows,N,I,O", [(16, 100, 3, 3), (7, 37, 1, 2), (13, 32, 2, 0), (9, 64, 0, 16),
                                        (1, 5, 3, 1), (5, 33, 3, 7), (3, 129, 2, 3)])
def test_euler_step_product(dtype, rows, N, I, O):
    """One pass gives x[t+1] = (1-a) x[t] + a (r W^T + u W_in^T + b) and y = r W_out^T + b_out,
    for row counts that are not multiples of the tile and widths across the panel seams."""
    rng = np.random.default_rng(rows * 1000 + N)
    W, W_in, b, W_out, b_out = _net(rng, N, I, O, dtype)
    r, u, x = (rng.standard_normal(s).astype(dtype) for s in ((rows, N), (rows, I), (rows, N)))
    a = 0.1
    P = forward_panels(W, W_in, b, W_out, b_out, a)
    x_next = np.full((rows, N), np.nan, dtype)
    y = np.full((rows, O), np.nan, dtype)
    panel_product_(r, u, True, P, x_next, x, dtype(1 - a), y)
    r64, u64 = r.astype(np.float64), u.astype(np.float64)
    tol = TOL[dtype] * np.sqrt(N)
    np.testing.assert_allclose(x_next, (1 - a) * x + a * (r64 @ W.T + u64 @ W_in.T + b), rtol=tol, atol=tol)
    np.testing.assert_allclose(y, r64 @ W_out.T + b_out, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows,N,O", [(16, 100, 3), (6, 40, 1), (11, 65, 5)])
def test_adjoint_product(dtype, rows, N, O):
    """h = alpha a W + g_y W_out, with no base term: old contents (NaN here) are ignored."""
    rng = np.random.default_rng(N + O)
    W, _, _, W_out, _ = _net(rng, N, 1, O, dtype)
    adj, gy = rng.standard_normal((rows, N)).astype(dtype), rng.standard_normal((rows, O)).astype(dtype)
    h = np.full((rows, N), np.nan, dtype)
    panel_product_(adj, gy, False, adjoint_panels(W, W_out, 0.2), h, NONE[dtype], 0.0, NONE[dtype])
    tol = TOL[dtype] * np.sqrt(N)
    want = 0.2 * adj.astype(np.float64) @ W + gy.astype(np.float64) @ W_out
    np.testing.assert_allclose(h, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_blocks_of_a_trajectory(dtype):
    """Operands may be row blocks of (T, B, N) arrays (leading dimension N, any start row);
    the rows outside the block are not touched."""
    rng = np.random.default_rng(3)
    T, B, N, I, O = 3, 20, 50, 2, 3
    W, W_in, b, W_out, b_out = _net(rng, N, I, O, dtype)
    rs, xs = rng.standard_normal((T, B, N)).astype(dtype), rng.standard_normal((T, B, N)).astype(dtype)
    us, ys = rng.standard_normal((T, B, I)).astype(dtype), np.zeros((T, B, O), dtype)
    P = forward_panels(W, W_in, b, W_out, b_out, 0.5)
    before = xs.copy()
    panel_product_(rs[1, 5:14], us[1, 5:14], True, P, xs[2, 5:14], xs[1, 5:14], dtype(0.5), ys[1, 5:14])
    r64 = rs[1, 5:14].astype(np.float64)
    want = 0.5 * before[1, 5:14] + 0.5 * (r64 @ W.T + us[1, 5:14] @ W_in.T + b)
    tol = TOL[dtype] * 10
    np.testing.assert_allclose(xs[2, 5:14], want, rtol=tol, atol=tol)
    np.testing.assert_allclose(ys[1, 5:14], r64 @ W_out.T + b_out, rtol=tol, atol=tol)
    untouched = np.ones(B, bool)
    untouched[5:14] = False
    np.testing.assert_array_equal(xs[2, untouched], before[2, untouched])
    assert not ys[1, untouched].any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_row_does_not_depend_on_its_tile(dtype):
    """Every row is summed in the same order whichever tile (or thread block) it falls in,
    so splitting the batch cannot change results: rows computed alone equal rows in a block."""
    rng = np.random.default_rng(4)
    rows, N, I, O = 2 * MR + 3, 70, 3, 3
    W, W_in, b, W_out, b_out = _net(rng, N, I, O, dtype)
    r, u, x = (rng.standard_normal(s).astype(dtype) for s in ((rows, N), (rows, I), (rows, N)))
    P = forward_panels(W, W_in, b, W_out, b_out, 0.3)
    whole, y_whole = np.empty((rows, N), dtype), np.empty((rows, O), dtype)
    panel_product_(r, u, True, P, whole, x, dtype(0.7), y_whole)
    for i in range(rows):
        one, y_one = np.empty((1, N), dtype), np.empty((1, O), dtype)
        panel_product_(r[i:i + 1], u[i:i + 1], True, P, one, x[i:i + 1], dtype(0.7), y_one)
        np.testing.assert_array_equal(one[0], whole[i])
        np.testing.assert_array_equal(y_one[0], y_whole[i])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_packing_layout(dtype):
    """Panels are k-major blocks of NR columns, zero past the last column; the forward matrix is
    [[a W^T, W_out^T], [a W_in^T, 0], [a b, b_out]] and the adjoint one [a W; W_out]."""
    rng = np.random.default_rng(5)
    N, I, O = 45, 2, 3
    W, W_in, b, W_out, b_out = _net(rng, N, I, O, dtype)
    nr = panel_width(dtype)
    B = rng.standard_normal((7, 2 * nr + 5)).astype(dtype)
    P = pack_columns(B)
    assert P.shape == (3, 7, nr)
    np.testing.assert_array_equal(P[1], B[:, nr:2 * nr])
    np.testing.assert_array_equal(P[2, :, :5], B[:, 2 * nr:])
    assert not P[2, :, 5:].any()
    a = dtype(0.25)
    full = np.block([[a * W.T, W_out.T], [a * W_in.T, np.zeros((I, O), dtype)], [a * b[None], b_out[None]]])
    np.testing.assert_array_equal(forward_panels(W, W_in, b, W_out, b_out, a), pack_columns(full.astype(dtype)))
    np.testing.assert_array_equal(adjoint_panels(W, W_out, a), pack_columns(np.vstack([a * W, W_out])))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rectangular_packing_with_column_scales(dtype):
    """The LSTM's step matrix: W_h is (4H, H), one scale per pre-activation column,
    and its adjoint packs [W_h; W_out] as (4H + O) x H."""
    rng = np.random.default_rng(8)
    H, I, O = 9, 2, 3
    W_h, W_x = rng.standard_normal((4 * H, H)).astype(dtype), rng.standard_normal((4 * H, I)).astype(dtype)
    b, W_out, b_out = (rng.standard_normal(s).astype(dtype) for s in ((4 * H,), (O, H), (O,)))
    scale = rng.uniform(0.5, 1.5, 4 * H).astype(dtype)
    full = np.block([[scale * W_h.T, W_out.T], [scale * W_x.T, np.zeros((I, O), dtype)],
                     [(scale * b)[None], b_out[None]]])
    np.testing.assert_array_equal(forward_panels(W_h, W_x, b, W_out, b_out, scale), pack_columns(full))
    np.testing.assert_array_equal(forward_panels(W_h, W_x, b, W_out[:0], b_out[:0], 1.0),
                                  pack_columns(np.vstack([W_h.T, W_x.T, b[None]])))
    np.testing.assert_array_equal(adjoint_panels(W_h, W_out, 1.0), pack_columns(np.vstack([W_h, W_out])))
    with pytest.raises(ValueError, match="alpha must be a number or have shape"):
        forward_panels(W_h, W_x, b, W_out, b_out, scale[:H])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pack_forward_counts_non_finite_entries(dtype):
    """The count comes from the packing pass; it must see every array."""
    rng = np.random.default_rng(9)
    arrays = list(_net(rng, 40, 3, 2, dtype))  # W, W_in, b, W_out, b_out
    P, n = pack_forward(*arrays, 0.1)
    assert n == 0
    np.testing.assert_array_equal(P, forward_panels(*arrays, 0.1))
    for i in range(len(arrays)):
        broken = [a.copy() for a in arrays]
        flat = broken[i].reshape(-1)
        flat[0], flat[-1] = np.nan, np.inf
        assert pack_forward(*broken, 0.1)[1] == (1 if flat.size == 1 else 2)
        assert pack_forward(*broken, np.full(40, 0.5, dtype))[1] == (1 if flat.size == 1 else 2)


def test_packed_panels_are_aligned_for_vector_loads():
    P = forward_panels(*_net(np.random.default_rng(3), 45, 2, 3, np.float64), 0.1)
    assert P.ctypes.data % 64 == 0 and P.flags.c_contiguous
    assert adjoint_panels(np.ones((7, 5), np.float32), np.ones((2, 5), np.float32), 0.5).ctypes.data % 64 == 0


def test_pack_columns_is_aligned():
    for (k, n), dtype, shape in (((7, 96), np.float64, (3, 7, 32)), ((5, 64), np.float32, (1, 5, 64)),
                                 ((2, 2), np.float64, (1, 2, 32))):
        a = pack_columns(np.ones((k, n), dtype))
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
        assert a.ctypes.data % 64 == 0


def test_shapes_that_do_not_chain_are_refused():
    rng = np.random.default_rng(6)
    W, W_in, b, W_out, b_out = _net(rng, 20, 2, 3, np.float64)
    P = forward_panels(W, W_in, b, W_out, b_out, 0.1)
    r, x = rng.standard_normal((4, 20)), rng.standard_normal((4, 20))
    with pytest.raises(ValueError, match="do not chain"):  # three inputs for a two-input matrix
        panel_product_(r, rng.standard_normal((4, 3)), True, P, np.empty((4, 20)), x, 0.9, np.empty((4, 3)))
    with pytest.raises(ValueError, match="do not chain"):  # a base of the wrong shape
        panel_product_(r, rng.standard_normal((4, 2)), True, P, np.empty((4, 20)), x[:3], 0.9, np.empty((4, 3)))
    with pytest.raises(ValueError, match="adjacent columns"):
        panel_product_(r, rng.standard_normal((4, 2)), True, P, np.empty((4, 40))[:, ::2], x, 0.9,
                       np.empty((4, 3)))
