"""Matrix products through numba's BLAS binding.

numpy and scipy each bundle their own OpenBLAS, each with its own thread
pool. The Euler kernels' per-step products go through numba, i.e. scipy's
OpenBLAS; doing the large per-call products (input drive, readout, weight
gradients) through numpy's OpenBLAS as well leaves two pools of spinning
threads fighting over the cores, which made an N=256 forward pass about 2x
slower. Routing those products through :func:`dot_` keeps one pool busy.
"""
import numpy as np
from numba import njit


@njit(cache=True)
def dot_(a, b):
    """a @ b for 2-D C- or F-contiguous float arrays of one dtype."""
    return np.dot(a, b)


@njit(cache=True, nogil=True, fastmath=True)
def sum_squares_(a):
    """sum_i a[i]^2 in float64 for a 1-D array, without BLAS.

    ``np.vdot`` would call OpenBLAS's dot, which starts threads on large
    arrays; those threads then spin against the next kernel call.
    """
    acc = 0.0
    for i in range(a.shape[0]):
        v = float(a[i])
        acc += v * v
    return acc
