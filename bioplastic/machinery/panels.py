"""Products with a packed right-hand side: the Euler step in one pass.

An Euler step of the LFRNN is, for each row (trial) of a block::

    x[t+1] = (1 - alpha) x[t] + alpha (r[t] W^T + u[t] W_in^T + b)
    y[t-1] = r[t] W_out^T + b_out

Both lines are products of the row ``[r[t], u[t], 1]`` with one fixed
matrix, whose columns are those of x followed by those of y::

    B = [[alpha W^T,   W_out^T],
         [alpha W_in^T,      0],
         [alpha b,       b_out]]         (N + I + 1) x (N + O)

so one pass over the rows computes the recurrent product, the input drive,
the leak and the readout, where BLAS needed a ``gemm`` call plus a loop per
row for each small product (:mod:`.small`; at N = 100 those loops cost as
much as 30% of the step). :func:`tile_` is that pass, written in LLVM IR as
a register-blocked micro-kernel in the style of BLIS and OpenBLAS:

- ``B`` is packed once per call of the network (:func:`forward_panels`,
  :func:`pack_columns`): in panels of ``NR`` columns (four 512-bit vectors:
  32 float64 or 64 float32), each panel k-major, so that the kernel reads
  one panel row as four contiguous vector loads from a 64-byte aligned
  buffer. OpenBLAS packs its operands again at every call: at N = 256 the
  float32 forward pass is 1.5x faster with this kernel, at N = 100 1.1x.
- A tile of up to ``MR = 4`` rows by one panel keeps its 16 accumulators in
  vector registers over the whole k loop: per k, four vector loads of B, one
  broadcast of A per row, and 16 fused multiply-adds. Of the shapes tried
  (rows x vectors: 8 x 2, 6 x 4, 4 x 3, 4 x 4), 4 x 4 was fastest inside
  the Euler step here (8 x 2 was 8% slower than BLAS, 4 x 4 10% faster).
  The last panel computes only as many vectors as it has columns.
- The row ``[r, u, 1]`` is never built: the k loop runs over ``r`` (K1
  terms), then over ``u`` (K2 terms, read from its own array), then adds the
  bias row.
- Columns of ``x`` go to ``out1 = base_scale * base + acc`` (the leak;
  ``base`` may be absent), columns past them to ``out2 = acc`` (the readout).
  Panels that are all ``x`` columns store whole vectors; the one or two
  panels at the seam and the ragged end go through a small buffer.

The adjoint uses the same kernel with ``B = [alpha W; W_out]`` (packed from
W without transposing) for ``h = alpha a[s+1] W + g_y[s-1] W_out``; the
LSTM's adjoint and its forward step use it too, the PLRNN's forward step
also.

Each row's sums run in the same order whatever tile or thread block the row
falls in, so results do not depend on the block split.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

MR = 4  # rows per tile: 4 x 4 accumulators + 4 B vectors + 1 broadcast fit in AVX-512's 32 registers
NV = 4  # vectors per panel (below 8: the tile's switch keys on mr * 8 + nv)


def lanes(dtype) -> int:
    """Elements per 512-bit vector: 8 float64 or 16 float32."""
    return 64 // np.dtype(dtype).itemsize


def panel_width(dtype) -> int:
    """``NR``: columns per packed panel."""
    return NV * lanes(dtype)


_I64 = ir.IntType(64)
_I32 = ir.IntType(32)


def _int(v):
    return ir.Constant(_I64, v)


@intrinsic
def tile_(typingctx, mr, nv, k1, a1, a1_off, lda1, k2, a2, a2_off, lda2, bias, p, p_off,
          out1, o1_off, ldo1, n1, base, b_off, ldb, base_scale, out2, o2_off, ldo2, n2):
    """One tile: rows ``0:mr`` from the given offsets, one packed panel.

    ``acc[i] = sum_k<k1 a1[i, k] P[k] + sum_k<k2 a2[i, k] P[k1 + k] (+ P[k1 + k2])``,
    then ``out1[i, j] = base_scale base[i, j] + acc[i, j]`` for ``j < n1`` (no
    base term if ``base`` is empty) and ``out2[i, j - n1] = acc[i, j]`` for
    ``n1 <= j < n1 + n2``. Offsets and leading dimensions are in elements; the
    panel is ``P[p_off + k * NR + c]``, ``c < NR``. ``nv`` (1 to NV) is the
    number of panel vectors worth computing (``n1 + n2 <= nv * lanes``).
    All arrays share one float dtype; nothing is checked here (see the
    callers).
    """
    arrays = (a1, a2, p, out1, base, out2)
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1 or out1.dtype not in (types.float32, types.float64):
        return None
    dt = out1.dtype
    sig = types.void(mr, nv, k1, a1, a1_off, lda1, k2, a2, a2_off, lda2, bias, p, p_off,
                     out1, o1_off, ldo1, n1, base, b_off, ldb, base_scale, out2, o2_off, ldo2, n2)

    def codegen(context, builder, sig, args):
        st = context.get_value_type(dt)
        align = context.get_abi_sizeof(st)
        vl = 8 if dt == types.float64 else 16
        nr = NV * vl
        vt = ir.VectorType(st, vl)
        vpt = vt.as_pointer()
        argtypes = sig.args

        def intp(i):
            return context.cast(builder, args[i], argtypes[i], types.intp)

        def base_ptr(i_arr, i_off):
            data = context.make_array(argtypes[i_arr])(context, builder, args[i_arr]).data
            return builder.gep(data, [intp(i_off)])

        def arr_size(i_arr):
            ary = context.make_array(argtypes[i_arr])(context, builder, args[i_arr])
            return builder.extract_value(ary.shape, 0) if argtypes[i_arr].ndim >= 1 else _int(1)

        A1, A2, P = base_ptr(3, 4), base_ptr(7, 8), base_ptr(11, 12)
        O1, BASE, O2 = base_ptr(13, 14), base_ptr(17, 18), base_ptr(21, 22)
        K1, LDA1, K2, LDA2 = intp(2), intp(5), intp(6), intp(9)
        LDO1, N1, LDB, LDO2, N2 = intp(15), intp(16), intp(19), intp(23), intp(24)
        has_bias = context.cast(builder, args[10], argtypes[10], types.boolean)
        has_base = builder.icmp_signed("!=", arr_size(17), _int(0))
        scale = context.cast(builder, args[20], argtypes[20], dt)
        key = builder.add(builder.mul(intp(0), _int(8)), intp(1))  # mr * 8 + nv: one case per tile shape (NV < 8)
        suffix = "f64" if dt == types.float64 else "f32"
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt]),
                                             f"llvm.fma.v{vl}{suffix}")
        zero = ir.Constant(vt, [ir.Constant(st, 0.0)] * vl)

        def splat(x):
            v = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(_I32, 0))
            return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined),
                                          ir.Constant(ir.VectorType(_I32, vl), [0] * vl))

        def vload(ptr):
            return builder.load(builder.bitcast(ptr, vpt), align=align)

        def vstore(value, ptr):
            builder.store(value, builder.bitcast(ptr, vpt), align=align)

        def row(ptr, ld, i, col):
            return builder.gep(ptr, [builder.add(builder.mul(_int(i), ld), col)])

        def k_loop(accs, m, n, count, a_ptr, lda, p_start):
            with cgutils.for_range(builder, count) as loop:
                k = loop.index
                pk = builder.gep(P, [builder.mul(builder.add(p_start, k), _int(nr))])
                bv = [vload(builder.gep(pk, [_int(v * vl)])) for v in range(n)]
                for i in range(m):
                    ai = splat(builder.load(row(a_ptr, lda, i, k)))
                    for v in range(n):
                        builder.store(builder.call(fma, [ai, bv[v], builder.load(accs[i][v])]), accs[i][v])

        def body(m, n):
            accs = [[cgutils.alloca_once_value(builder, zero) for _ in range(n)] for _ in range(m)]
            k_loop(accs, m, n, K1, A1, LDA1, _int(0))
            k_loop(accs, m, n, K2, A2, LDA2, K1)
            with builder.if_then(has_bias):
                pk = builder.gep(P, [builder.mul(builder.add(K1, K2), _int(nr))])
                for v in range(n):
                    bv = vload(builder.gep(pk, [_int(v * vl)]))
                    for i in range(m):
                        builder.store(builder.fadd(builder.load(accs[i][v]), bv), accs[i][v])
            whole = builder.icmp_signed("==", N1, _int(n * vl))  # every column an x column
            with builder.if_else(whole) as (vector_store, lane_store):
                with vector_store:
                    scale_v = splat(scale)
                    for i in range(m):
                        for v in range(n):
                            dst = row(O1, LDO1, i, _int(v * vl))
                            acc = builder.load(accs[i][v])
                            with builder.if_else(has_base) as (with_base, without):
                                with with_base:
                                    old = vload(row(BASE, LDB, i, _int(v * vl)))
                                    vstore(builder.call(fma, [scale_v, old, acc]), dst)
                                with without:
                                    vstore(acc, dst)
                with lane_store:
                    buf = cgutils.alloca_once(builder, vt, size=m * n)
                    for i in range(m):
                        for v in range(n):
                            builder.store(builder.load(accs[i][v]), builder.gep(buf, [_int(i * n + v)]))
                    flat = builder.bitcast(buf, st.as_pointer())
                    for i in range(m):
                        with cgutils.for_range(builder, N1) as lane:
                            j = lane.index
                            acc = builder.load(builder.gep(flat, [builder.add(_int(i * n * vl), j)]))
                            dst = row(O1, LDO1, i, j)
                            with builder.if_else(has_base) as (with_base, without):
                                with with_base:
                                    old = builder.load(row(BASE, LDB, i, j))
                                    # two roundings here, one (fma) in the vector path: a column always
                                    # takes the same path, so rows still do not depend on their tile
                                    builder.store(builder.fadd(builder.fmul(scale, old), acc), dst)
                                with without:
                                    builder.store(acc, dst)
                        with cgutils.for_range(builder, N2) as lane:
                            j = lane.index
                            acc = builder.load(builder.gep(flat, [builder.add(_int(i * n * vl), builder.add(N1, j))]))
                            builder.store(acc, row(O2, LDO2, i, j))

        end = builder.append_basic_block("tile.end")
        bodies = [(m, n, builder.append_basic_block(f"tile.{m}x{n}")) for m in range(1, MR + 1)
                  for n in range(1, NV + 1)]
        switch = builder.switch(key, end)
        for m, n, block in bodies:
            switch.add_case(_int(m * 8 + n), block)
            builder.position_at_end(block)
            body(m, n)
            builder.branch(end)
        builder.position_at_end(end)
        return context.get_dummy_value()
    return sig, codegen


@njit(cache=True, nogil=True)
def _leading(X):
    """Row stride of a 2-D array in elements (0 for an empty one); columns must be adjacent."""
    if X.shape[0] == 0:
        return 0
    if X.shape[1] > 1 and X.strides[1] != X.itemsize:
        raise ValueError("panels: every array needs adjacent columns (unit inner stride)")
    return max(X.strides[0] // X.itemsize, X.shape[1], 1)


@njit(cache=True, nogil=True, error_model="numpy")
def panel_product_(A1, A2, bias, P, out1, base, base_scale, out2):
    """``[out1 | out2] = [A1, A2, 1] B`` (+ ``base_scale base`` on out1), in place.

    Parameters
    ----------
    A1 : (rows, K1) rows of the main operand (rates, or the adjoint).
    A2 : (rows, K2), K2 >= 0: the second operand (inputs, or dL/dy).
    bias : bool, whether B has a last row added with coefficient 1.
    P : (panels, K1 + K2 + bias, NR), B packed by :func:`pack_columns`.
    out1 : (rows, N1) output of B's first N1 columns.
    base : (rows, N1), or (0, 0) for none; base_scale : float.
    out2 : (rows, N2) output of B's last N2 columns (N2 may be 0).

    Raises
    ------
    ValueError
        If the shapes do not chain with the panels.
    """
    rows, k1 = A1.shape
    k2 = A2.shape[1] if A2.shape[0] > 0 else 0
    n1, n2 = out1.shape[1], out2.shape[1] if out2.shape[0] > 0 else 0
    nr = P.shape[2]
    vl = nr // NV
    if (P.shape[1] != k1 + k2 + (1 if bias else 0) or P.shape[0] * nr < n1 + n2 or out1.shape[0] != rows
            or (k2 > 0 and A2.shape[0] != rows) or (n2 > 0 and out2.shape[0] != rows)
            or (base.shape[0] > 0 and (base.shape[0] != rows or base.shape[1] != n1))):
        raise ValueError("panel_product_: shapes of the operands and the packed panels do not chain")
    lda1, lda2, ldo1, ldb, ldo2 = _leading(A1), _leading(A2), _leading(out1), _leading(base), _leading(out2)
    panel_size = P.shape[1] * nr
    for p in range(P.shape[0]):
        j0 = p * nr
        c1 = min(max(n1 - j0, 0), nr)  # columns of out1 in this panel
        c2 = min(max(n1 + n2 - j0, 0), nr) - c1
        if c1 + c2 == 0:
            break
        nv = (c1 + c2 + vl - 1) // vl
        y0 = max(j0 - n1, 0)
        for i0 in range(0, rows, MR):
            mr = min(MR, rows - i0)
            tile_(mr, nv, k1, A1, i0 * lda1, lda1, k2, A2, i0 * lda2, lda2, bias, P, p * panel_size,
                  out1, i0 * ldo1 + j0, ldo1, c1, base, i0 * ldb + j0, ldb, base_scale,
                  out2, i0 * ldo2 + y0, ldo2, c2)


@njit(cache=True, nogil=True)
def pack_columns_(B, P):
    """``P[p, k, c] = B[k, p NR + c]``, zero past B's last column."""
    K, N = B.shape
    nr = P.shape[2]
    for p in range(P.shape[0]):
        for k in range(K):
            for c in range(nr):
                j = p * nr + c
                P[p, k, c] = B[k, j] if j < N else 0.0


def pack_columns(B):
    """Pack a (K, N) matrix into panels for :func:`panel_product_`."""
    B = np.ascontiguousarray(B)
    P = _aligned_panels_(-(-B.shape[1] // panel_width(B.dtype)), B.shape[0], B)
    pack_columns_(B, P)
    return P


@njit(cache=True, nogil=True)
def _aligned_panels_(n_panels, k, like):
    """An uninitialised (n_panels, k, NR) array of ``like``'s dtype whose data
    starts on a 64-byte boundary: NumPy and numba align to 16 and 32 bytes,
    and a 64-byte vector load from such an address straddles two cache lines.

    Allocated in compiled code: after an Euler pass has swept the caches, the
    same in Python (``np.empty``, then a view at the aligned offset) costs
    about 15 us, this about 2."""
    nr = NV * (64 // like.itemsize)
    n = n_panels * k * nr
    raw = np.empty(n + 64 // like.itemsize, like.dtype)
    start = ((-raw.ctypes.data) % 64) // like.itemsize
    return raw[start:start + n].reshape((n_panels, k, nr))


@njit(cache=True, nogil=True, error_model="numpy")
def _pack_forward_(W, W_in, b, W_out, b_out, alpha, scales):
    """Allocate and fill the forward panels and count their non-finite entries.

    Column j < M is scaled by ``scales[j]``, or by ``alpha`` when ``scales``
    is empty. Returns ``(P, n_non_finite)``.
    """
    M, K = W.shape
    I = W_in.shape[1]
    O = W_out.shape[0]
    nr = NV * (64 // W.itemsize)
    P = _aligned_panels_((M + O + nr - 1) // nr, K + I + 1, W)
    zero = P.dtype.type(0.0)
    per_column = scales.shape[0] > 0
    bad = 0
    for p in range(P.shape[0]):
        for c in range(nr):
            j = p * nr + c
            if j < M:  # an x column: scale_j [W^T; W_in^T; b]
                s = scales[j] if per_column else alpha
                for k in range(K):
                    v = s * W[j, k]
                    P[p, k, c] = v
                    bad += v - v != 0  # NaN - NaN and inf - inf are NaN
                for k in range(I):
                    v = s * W_in[j, k]
                    P[p, K + k, c] = v
                    bad += v - v != 0
                v = s * b[j]
                P[p, K + I, c] = v
                bad += v - v != 0
            elif j < M + O:  # a y column: [W_out^T; 0; b_out]
                o = j - M
                for k in range(K):
                    v = W_out[o, k]
                    P[p, k, c] = v
                    bad += v - v != 0
                for k in range(I):
                    P[p, K + k, c] = zero
                v = b_out[o]
                P[p, K + I, c] = v
                bad += v - v != 0
            else:
                for k in range(K + I + 1):
                    P[p, k, c] = zero
    return P, bad


#: Empty scale arrays, meaning "every column scaled by alpha".
_NO_SCALES = {np.dtype(d): np.zeros(0, dtype=d) for d in ("float64", "float32")}


def pack_forward(W, W_in, b, W_out, b_out, alpha):
    """The Euler step's packed matrix, and how many of its entries are not finite.

    ``P = [[a W^T, W_out^T], [a W_in^T, 0], [a b, b_out]]``, packed as by
    :func:`pack_columns` in W's dtype, K + I + 1 rows by M + O columns:
    ``W`` is (M, K) (M = K = N for the LFRNN; the LSTM's W_h is (4H, H)),
    ``W_in`` (M, I), ``b`` (M,), ``W_out`` (O, K) (O may be 0), ``b_out``
    (O,). ``a = alpha`` scales the first M columns: a number, or an (M,)
    array of one scale per column.

    The count comes from the same pass, so checking the weights costs no
    second read of them: every entry of the five arrays lands in ``P`` times
    a finite scale, so the count is 0 exactly when they are all finite
    (unless a scale above 1 overflows an entry to inf).

    Returns
    -------
    P : (panels, K + I + 1, NR) array
    n_non_finite : int
    """
    dtype = W.dtype
    if isinstance(alpha, (float, int)) or np.ndim(alpha) == 0:  # isinstance first: this runs every pass
        return _pack_forward_(W, W_in, b, W_out, b_out, dtype.type(alpha), _NO_SCALES[dtype])
    M = W.shape[0]
    scales = np.ascontiguousarray(alpha, dtype=dtype)
    if scales.shape != (M,):
        raise ValueError(f"forward_panels: alpha must be a number or have shape ({M},), got {scales.shape}")
    return _pack_forward_(W, W_in, b, W_out, b_out, dtype.type(0.0), scales)


def forward_panels(W, W_in, b, W_out, b_out, alpha):
    """The packed matrix of :func:`pack_forward`, without the count."""
    return pack_forward(W, W_in, b, W_out, b_out, alpha)[0]


@njit(cache=True, nogil=True)
def _pack_adjoint_(W, W_out, alpha):
    M, N = W.shape
    O = W_out.shape[0]
    nr = NV * (64 // W.itemsize)
    P = _aligned_panels_((N + nr - 1) // nr, M + O, W)
    zero = P.dtype.type(0.0)
    for p in range(P.shape[0]):
        for k in range(M + O):
            for c in range(nr):
                j = p * nr + c
                if j >= N:
                    P[p, k, c] = zero
                elif k < M:
                    P[p, k, c] = alpha * W[k, j]
                else:
                    P[p, k, c] = W_out[k - M, j]
    return P


def adjoint_panels(W, W_out, alpha):
    """The adjoint's packed matrix ``[alpha W; W_out]``: (M + O) x N for an
    (M, N) ``W`` (N x N for the LFRNN, 4H x H for the LSTM's W_h) and an
    (O, N) ``W_out``."""
    return _pack_adjoint_(W, W_out, W.dtype.type(alpha))
