"""Elementwise nonlinearities phi and their derivatives, as numba kernels.

Nonlinearities are passed to kernels as integer codes (``PHI_CODES``) so that
one compiled kernel serves all of them; the branch sits outside the loops.

tanh is the hot spot of every Euler step. numba's ``np.tanh``/``np.exp`` are
scalar libm calls (there is no SVML in this numba build), so :func:`tanh_row_`
uses forms that LLVM vectorises (AVX-512 here), in the dtype of the data:

- float64: a branch-free exp::

      tanh(v) = sign(v) (1 - e) / (1 + e),     e = exp(-2|v|)
      e = 2^-k exp(-r),   k = round(2|v| / ln 2),   r = 2|v| - k ln 2, |r| <= ln2 / 2

  with exp(-r) from its degree-13 Taylor polynomial (truncation < 2e-16) and
  2^-k from six selects. Error against ``np.tanh``: below 3e-16.
- float32: the rational form ``v P(v^2) / Q(v^2)`` (degrees 13 over 6 in v)
  of Eigen's ``ptanh`` for float, with |v| clamped at 7.9053. It is four
  times cheaper; its error is below 4e-7 (largest near |v| = 5.9, where it
  is about 6 float32 ulps of 1), against 6e-8 for ``np.tanh`` in float32.

tests/test_activations.py bounds both errors. Kernels use
``error_model="numpy"`` so that float division carries no Python
zero-division check, which would stop vectorisation.
"""
import numpy as np
from numba import njit

PHI_CODES = {"tanh": 0, "relu": 1, "softplus": 2, "sigmoid": 3}

N_CONSTANTS = 48


@njit(cache=True)
def fill_constants_(c):
    """Write the constants of :func:`tanh_row_` into ``c`` (48 entries), in
    c's dtype, so that float32 rows are computed in float32 lanes (numba
    would promote Python float literals to float64).

    Layout: [clamp of 2|v|, 1/ln2, ln2 hi, ln2 lo, 14 Horner coefficients of
    exp(q) (1/13!, ..., 1/2!, 1, 1), 0, 1/2, 1, 2, 4, 8, 16, 32,
    2^-1, 2^-2, 2^-4, 2^-8, 2^-16, 2^-32, then the float32 rational form:
    clamp, 7 coefficients of P, 4 of Q, zero padding].
    """
    # 2|v| is clamped at 40: tanh(20) rounds to 1 in float64, and 2^-k then
    # needs k <= 58, which the six selects of tanh_row_ cover.
    c[0] = 40.0
    c[1] = 1.4426950408889634
    # Cody-Waite split of ln 2: k * hi is exact for every k <= 58.
    if c.itemsize == 8:
        c[2], c[3] = 0.6931471803691238, 1.9082149292705877e-10
    else:
        c[2], c[3] = 0.693145751953125, 1.428606765330187e-06
    fact = 1.0
    for n in range(2, 14):
        fact *= n
    for j in range(12):  # 1/13!, 1/12!, ..., 1/2!
        c[4 + j] = 1.0 / fact
        fact /= 13 - j
    c[16] = 1.0
    c[17] = 1.0
    c[18] = 0.0
    c[19] = 0.5
    v = 1.0
    for j in range(6):  # 1, 2, 4, ..., 32
        c[20 + j] = v
        v *= 2.0
    v = 0.5
    for j in range(6):  # 2^-1, 2^-2, 2^-4, ..., 2^-32
        c[26 + j] = v
        v *= v
    # float32: Eigen's rational approximation tanh(v) ~ v P(v^2) / Q(v^2) on
    # |v| <= 7.9053 (clamped beyond), coefficients of P then Q.
    c[32] = 7.90531110763549805
    c[33], c[34], c[35], c[36] = 4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08
    c[37], c[38], c[39] = -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16
    c[40], c[41], c[42], c[43] = 4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06
    for j in range(44, c.shape[0]):
        c[j] = 0.0


def tanh_constants(dtype) -> np.ndarray:
    """The constants :func:`tanh_row_` takes, as a ``dtype`` array."""
    c = np.empty(N_CONSTANTS, dtype=np.dtype(dtype))
    fill_constants_(c)
    return c


@njit(cache=True, error_model="numpy")
def tanh_row_(x, out, c):
    """out[i] = tanh(x[i]) for 1-D ``x``, vectorised; ``c = tanh_constants(x.dtype)``.

    NaN in gives NaN out: the clamps are written so that NaN passes through.
    float32 rows use a cheaper rational form (see the module docstring).
    """
    if c.itemsize == 4:
        _tanh_rational_row_(x, out, c)
        return
    clamp, inv_ln2, ln2_hi, ln2_lo = c[0], c[1], c[2], c[3]
    p13, p12, p11, p10, p9, p8, p7 = c[4], c[5], c[6], c[7], c[8], c[9], c[10]
    p6, p5, p4, p3, p2, p1, p0 = c[11], c[12], c[13], c[14], c[15], c[16], c[17]
    zero, half, one, two, four, eight, sixteen, thirtytwo = c[18], c[19], c[20], c[21], c[22], c[23], c[24], c[25]
    m1, m2, m4, m8, m16, m32 = c[26], c[27], c[28], c[29], c[30], c[31]
    for i in range(x.shape[0]):
        v = x[i]
        y = abs(v) + abs(v)
        y = clamp if y > clamp else y
        k = np.floor(y * inv_ln2 + half)
        r = (y - k * ln2_hi) - k * ln2_lo
        q = zero - r
        p = p13 * q + p12
        p = p * q + p11
        p = p * q + p10
        p = p * q + p9
        p = p * q + p8
        p = p * q + p7
        p = p * q + p6
        p = p * q + p5
        p = p * q + p4
        p = p * q + p3
        p = p * q + p2
        p = p * q + p1
        p = p * q + p0
        # 2^-k by binary digits of k, as selects (no integer/bit casts).
        s = m32 if k >= thirtytwo else one
        k = k - thirtytwo if k >= thirtytwo else k
        s = s * m16 if k >= sixteen else s
        k = k - sixteen if k >= sixteen else k
        s = s * m8 if k >= eight else s
        k = k - eight if k >= eight else k
        s = s * m4 if k >= four else s
        k = k - four if k >= four else k
        s = s * m2 if k >= two else s
        k = k - two if k >= two else k
        s = s * m1 if k >= one else s
        e = p * s
        t = (one - e) / (one + e)
        out[i] = t if v >= zero else zero - t


@njit(cache=True, error_model="numpy")
def _tanh_rational_row_(x, out, c):
    """float32 tanh as v P(v^2) / Q(v^2), |v| clamped at 7.9053 (Eigen's
    ``ptanh`` for float): four times cheaper than the exp form."""
    clamp = c[32]
    a1, a3, a5, a7, a9, a11, a13 = c[33], c[34], c[35], c[36], c[37], c[38], c[39]
    b0, b2, b4, b6 = c[40], c[41], c[42], c[43]
    for i in range(x.shape[0]):
        v = x[i]
        v = clamp if v > clamp else v
        v = -clamp if v < -clamp else v
        v2 = v * v
        p = a13 * v2 + a11
        p = p * v2 + a9
        p = p * v2 + a7
        p = p * v2 + a5
        p = p * v2 + a3
        p = p * v2 + a1
        q = b6 * v2 + b4
        q = q * v2 + b2
        q = q * v2 + b0
        out[i] = v * p / q


@njit(cache=True, error_model="numpy")
def phi_row_(x, out, code, c):
    """out = phi(x) for 1-D rows; ``c = tanh_constants(x.dtype)`` (used by tanh)."""
    if code == 0:
        tanh_row_(x, out, c)
    elif code == 1:
        for i in range(x.shape[0]):
            out[i] = x[i] if x[i] > 0 else 0.0
    elif code == 2:
        for i in range(x.shape[0]):
            v = x[i]
            # log(1 + e^v) without overflow
            out[i] = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
    else:
        for i in range(x.shape[0]):
            out[i] = 1.0 / (1.0 + np.exp(-x[i]))


@njit(cache=True, error_model="numpy")
def dphi_row_(x, r, out, code):
    """out = phi'(x) for 1-D rows, using the rates ``r = phi(x)`` when cheaper."""
    if code == 0:
        for i in range(x.shape[0]):
            out[i] = 1.0 - r[i] * r[i]
    elif code == 1:
        for i in range(x.shape[0]):
            out[i] = 1.0 if x[i] > 0 else 0.0
    elif code == 2:
        for i in range(x.shape[0]):
            out[i] = 1.0 / (1.0 + np.exp(-x[i]))
    else:
        for i in range(x.shape[0]):
            out[i] = r[i] * (1.0 - r[i])


@njit(cache=True, error_model="numpy")
def phi_(x, out, code):
    """out = phi(x) elementwise for 2-D ``x`` (B, N)."""
    c = np.empty(N_CONSTANTS, x.dtype)
    fill_constants_(c)
    for b in range(x.shape[0]):
        phi_row_(x[b], out[b], code, c)


@njit(cache=True, error_model="numpy")
def dphi_(x, r, out, code):
    """out = phi'(x) elementwise for 2-D ``x`` (B, N), using ``r = phi(x)``."""
    for b in range(x.shape[0]):
        dphi_row_(x[b], r[b], out[b], code)
