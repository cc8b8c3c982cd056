"""Per-step cost of each part of the LFRNN kernels, on one row block (a developer tool).

Each part of the forward and adjoint kernels (the packed-panel product that
does the leak, input drive, recurrent product and readout in one pass, tanh,
the adjoint's products) runs alone in
its own compiled loop over the T steps of one block of :data:`ROWS` rows, on
one thread, next to the whole kernels. Medians over rounds, in microseconds
per step::

    python -m bioplastic.bench.parts            # N=100 B=32 T=100
    python -m bioplastic.bench.parts 256 64 200

Parts timed alone do not add up to the whole kernel (each loop has its own
overhead and cache state): the table says where the time goes, not a budget.
Two rows time what the panel product replaced (BLAS ``gemm`` and the row
loops of :mod:`.machinery.small`), as a yardstick for the micro-kernel.

The last row, ``two blocks on two threads``, runs two such blocks at once as
:func:`~.machinery.threads.run_blocks` does in a forward pass (when the batch
has ``2 * ROWS`` rows and two kernel threads are set). With perfect scaling
it would equal the first row; on the 2-vCPU machine this project is
developed on it was 1.5x to 1.6x the first row (2026-12-02), because each vCPU switches
between a fast and a slow state (about 1.4x apart, for seconds at a time)
and a pass waits for the slower block (docs/benchmarks.md).
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np
from numba import njit
from threadpoolctl import threadpool_limits

from .cases import Case, setup_case
from ..kernels.activations import N_CONSTANTS, fill_constants_, phi_row_
from ..machinery.blas import gemm_
from ..kernels.lfrnn import drive_inputs, forward_weights, lfrnn_backward_rows_, lfrnn_forward_rows_
from ..machinery.panels import adjoint_panels, forward_panels, panel_product_
from ..machinery.small import combine_rows_, readout_rows_
from ..machinery.threads import kernel_threads, run_blocks

ROWS = 16
FORWARD_PARTS = ("panel product [r, u, 1] B", "tanh", "BLAS r W^T alone", "BLAS r W^T + drive + readout")
ADJOINT_PARTS = ("panel product [a, g_y] [W; W_out]", "gradient product a^T r", "two small products")
TWO_BLOCKS = "forward, two blocks on two threads"


@njit(cache=True, nogil=True, error_model="numpy")
def _forward_part(part, u, P, V, WT, alpha, W_out, b_out, xs, rs, ys):
    """Part ``part`` (index into FORWARD_PARTS) of the Euler step, rows 0:ROWS."""
    leak = xs.dtype.type(1.0) - alpha
    c = np.empty(N_CONSTANTS, xs.dtype)
    fill_constants_(c)
    for t in range(u.shape[0]):
        x_next = xs[t + 1, 0:ROWS]
        if part == 0:
            panel_product_(rs[t, 0:ROWS], u[t, 0:ROWS], True, P, x_next, xs[t, 0:ROWS], leak, ys[t, 0:ROWS])
        elif part == 1:
            phi_row_(x_next.reshape(-1), rs[t + 1, 0:ROWS].reshape(-1), 0, c)
        elif part == 2:
            gemm_(alpha, rs[t, 0:ROWS], WT, 1.0, x_next)
        else:
            combine_rows_(x_next, xs[t, 0:ROWS], leak, u[t, 0:ROWS], V, alpha)
            gemm_(alpha, rs[t, 0:ROWS], WT, 1.0, x_next)
            readout_rows_(ys[t, 0:ROWS], rs[t + 1, 0:ROWS], W_out, b_out)


@njit(cache=True, nogil=True)
def _adjoint_part(part, A, PA, rs, din, gy, H, dW, dV, dW_out):
    """Part ``part`` (index into ADJOINT_PARTS) of the adjoint's products."""
    one = rs.dtype.type(1.0)
    none = np.empty((0, 0), rs.dtype)
    for s in range(rs.shape[0] - 1, 0, -1):
        a = A[s % 2]
        if part == 0:
            panel_product_(a, gy[s - 1, 0:ROWS], False, PA, H, none, 0.0, none)
        elif part == 1:
            gemm_(one, a, rs[s - 1, 0:ROWS], one, dW, True, False)
        else:
            gemm_(one, din[s - 1, 0:ROWS], a, one, dV, True, False)
            gemm_(one, gy[s - 1, 0:ROWS], rs[s, 0:ROWS], one, dW_out, True, False)


def _jobs(N, B, T, dtype):
    net, params, batch = setup_case(Case(N, B, T, dtype))
    typ = net.dtype.type
    traj = net.forward(params, batch.inputs)
    xs, rs, ys = traj.states.copy(), traj.rates.copy(), traj.outputs.copy()
    x0 = np.zeros((B, N), dtype)
    none3, none2 = np.zeros((0, 0, 0), dtype), np.zeros((0, 0), dtype)
    din = drive_inputs(batch.inputs, dtype)
    WT, V = forward_weights(params["W"], params["W_in"], params["b"])
    W, W_out, b_out = params["W"], params["W_out"], params["b_out"]
    P = forward_panels(W, params["W_in"], params["b"], W_out, b_out, net.alpha)
    PA = adjoint_panels(W, W_out, net.alpha)
    rng = np.random.default_rng(0)
    gy = (0.01 * rng.standard_normal((T, B, W_out.shape[0]))).astype(dtype)
    A = rng.standard_normal((2, ROWS, N)).astype(dtype)
    H, dW = np.zeros((ROWS, N), dtype), np.zeros((N, N), dtype)
    dV, dW_out = np.zeros((din.shape[2], N), dtype), np.zeros((W_out.shape[0], N), dtype)
    alpha = typ(net.alpha)

    def adjoint():
        acc = [np.zeros((1,) + s, dtype) for s in ((N, N), dV.shape, dW_out.shape, (W_out.shape[0],))]
        lfrnn_backward_rows_(0, 0, ROWS, traj.states, traj.rates, din, PA, alpha, 0, none3, none3, gy,
                             1, none2, typ(1e-3), *acc, np.zeros(1))

    u = batch.inputs  # the kernels read u itself: the bias is a row of the packed matrix
    jobs = {"forward, whole kernel": lambda: lfrnn_forward_rows_(0, 0, ROWS, x0, u, P, none3, typ(0), alpha,
                                                               0, W_out, b_out, xs, rs, ys)}
    for k, name in enumerate(FORWARD_PARTS):
        jobs["  " + name] = (lambda k=k: _forward_part(k, u, P, V, WT, alpha, W_out, b_out, xs, rs, ys))
    jobs["adjoint with TCR, whole kernel"] = adjoint
    for k, name in enumerate(ADJOINT_PARTS):
        jobs["  " + name] = (lambda k=k: _adjoint_part(k, A, PA, rs, din, gy, H, dW, dV, dW_out))

    if B >= 2 * ROWS and kernel_threads() >= 2:
        jobs[TWO_BLOCKS] = lambda: run_blocks(lfrnn_forward_rows_, 2 * ROWS, 2, x0, u, P, none3, typ(0), alpha,
                                              0, W_out, b_out, xs, rs, ys)

    def reset():  # the parts write into the trajectory; start each from the same values
        xs[:], rs[:] = traj.states, traj.rates
    return jobs, reset


def measure(N=100, B=32, T=100, rounds=40, dtypes=("float32", "float64")) -> dict:
    """``{dtype: {part: median us per step}}`` for one block of ROWS rows
    (for :data:`TWO_BLOCKS`, two blocks at once)."""
    if B < ROWS:
        raise ValueError(f"bench_parts needs a batch of at least {ROWS} trials, got {B}")
    out = {}
    with threadpool_limits(1):
        for dtype in dtypes:
            jobs, reset = _jobs(N, B, T, dtype)
            times = {k: [] for k in jobs}
            for f in jobs.values():
                f()
            for _ in range(rounds):
                for k, f in jobs.items():
                    reset()
                    t0 = time.perf_counter()
                    f()
                    times[k].append(time.perf_counter() - t0)
            out[dtype] = {k: 1e6 * statistics.median(v) / T for k, v in times.items()}
    return out


def format_parts(result: dict) -> str:
    dtypes = list(result)
    lines = [f"{'us per step, one block of ' + str(ROWS) + ' rows':34s}" + "".join(f"{d:>10s}" for d in dtypes)]
    for part in result[dtypes[0]]:
        lines.append(f"{part:34s}" + "".join(f"{result[d][part]:10.2f}" for d in dtypes))
    return "\n".join(lines)


def main(argv=None) -> int:
    from ..memory import tune_if_wanted

    tune_if_wanted(default=True)  # the benchmark owns its process, as the CLI does
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    N, B, T = (int(v) for v in argv[:3]) if len(argv) >= 3 else (100, 32, 100)
    print(format_parts(measure(N, B, T)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
