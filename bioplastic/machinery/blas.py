"""General matrix products with BLAS's ``alpha``, ``beta`` and leading
dimensions, callable from numba kernels.

``np.dot(a, b, out)`` in numba computes ``out = a b`` only. The Euler and
adjoint kernels need more of BLAS's ``gemm``::

    C = alpha op(A) op(B) + beta C,        op(X) = X or X^T

so that a product can be added to an array in place (``beta = 1``: the
recurrent drive onto the leaked state, a weight-gradient step onto its
running sum) and read rows of a larger array without copying (a row block
``xs[t, b0:b1]`` of a trajectory is a matrix with leading dimension N).
Without ``beta`` each of those needs a temporary and an extra pass over it,
which at N = 100 costs as much as the product.

:func:`gemm_` calls the same OpenBLAS ``?gemm`` that numba's ``np.dot`` uses
(scipy's, through numba's helper ``numba_xxgemm``), so there is still one
BLAS and one thread pool in the process (see :mod:`.linalg`). Compiled
callers can be cached: the helper is found by name when the cache loads.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.linalg import ensure_blas, get_blas_kind

_CHAR = ir.IntType(8)
_INTP = ir.IntType(64)
_VOIDP = ir.IntType(8).as_pointer()
_NO_TRANS = ord("N")
_TRANS = ord("T")


@intrinsic
def _xxgemm(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major ``?gemm`` on the first elements of arrays ``a``, ``b``, ``c``.

    ``alpha`` and ``beta`` are passed by value and cast to the arrays' dtype;
    ``a``, ``b`` and ``c`` must share one float dtype.
    """
    dtypes = {a.dtype, b.dtype, c.dtype}
    if len(dtypes) != 1 or c.dtype not in (types.float32, types.float64):
        return None  # numba reports a typing error naming this function
    sig = types.intc(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, sig, args):
        ensure_blas()
        dtype = sig.args[11].dtype
        fnty = ir.FunctionType(ir.IntType(32), [_CHAR, _CHAR, _CHAR, _INTP, _INTP, _INTP, _VOIDP, _VOIDP,
                                                _INTP, _VOIDP, _INTP, _VOIDP, _VOIDP, _INTP])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")

        def as_intp(i):
            return context.cast(builder, args[i], sig.args[i], types.intp)

        def as_char(i):
            return builder.trunc(as_intp(i), _CHAR)

        def scalar_slot(i):
            value = context.cast(builder, args[i], sig.args[i], dtype)
            return builder.bitcast(cgutils.alloca_once_value(builder, value), _VOIDP)

        def data(i):
            return builder.bitcast(context.make_array(sig.args[i])(context, builder, args[i]).data, _VOIDP)

        kind = ir.Constant(_CHAR, ord(get_blas_kind(dtype)))
        return builder.call(fn, (kind, as_char(0), as_char(1), as_intp(2), as_intp(3), as_intp(4),
                                 scalar_slot(5), data(6), as_intp(7), data(8), as_intp(9), scalar_slot(10),
                                 data(11), as_intp(12)))
    return sig, codegen


@njit(cache=True, nogil=True)
def _leading_dim(X):
    """Row stride of a 2-D array in elements; its columns must be adjacent."""
    if X.shape[1] > 1 and X.strides[1] != X.itemsize:
        raise ValueError("gemm_: every array needs adjacent columns (unit inner stride)")
    return max(X.strides[0] // X.itemsize, X.shape[1], 1)


@njit(cache=True, nogil=True)
def gemm_(alpha, A, B, beta, C, trans_a=False, trans_b=False):
    """``C = alpha op(A) op(B) + beta C`` for row-major 2-D arrays, in place.

    Parameters
    ----------
    alpha, beta : float
        Scale of the product and of the old ``C`` (``beta = 0`` ignores C's
        old contents, NaN included, as BLAS does).
    A, B, C : 2-D float arrays of one dtype
        Any row stride (rows of a larger array are fine), adjacent columns.
    trans_a, trans_b : bool
        Use ``A^T`` / ``B^T`` instead of ``A`` / ``B``.

    Raises
    ------
    ValueError
        On shapes that do not chain (``op(A)`` is m x k, ``op(B)`` k x n and
        ``C`` m x n) or on arrays whose columns are not adjacent.
    """
    m = A.shape[1] if trans_a else A.shape[0]
    k = A.shape[0] if trans_a else A.shape[1]
    kb = B.shape[1] if trans_b else B.shape[0]
    n = B.shape[0] if trans_b else B.shape[1]
    if k != kb or C.shape[0] != m or C.shape[1] != n:
        raise ValueError("gemm_: shapes of A, B and C do not chain")
    if m == 0 or n == 0:
        return
    if k == 0:
        for i in range(m):
            for j in range(n):
                C[i, j] = beta * C[i, j] if beta != 0 else 0.0
        return
    lda, ldb, ldc = _leading_dim(A), _leading_dim(B), _leading_dim(C)
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
    _xxgemm(_TRANS if trans_b else _NO_TRANS, _TRANS if trans_a else _NO_TRANS, n, m, k,
            alpha, B, ldb, A, lda, beta, C, ldc)


def gemm(alpha, A, B, beta, C, trans_a=False, trans_b=False):
    """Python entry to :func:`gemm_` (for tests and interactive use)."""
    A, B, C = (np.asarray(X) for X in (A, B, C))
    gemm_(alpha, A, B, beta, C, trans_a, trans_b)
    return C
