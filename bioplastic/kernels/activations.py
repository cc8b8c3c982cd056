"""Elementwise nonlinearities phi and their derivatives, as numba kernels.

Nonlinearities are passed to kernels as integer codes (``PHI_CODES``) so that
one compiled kernel serves all of them; the branch sits outside the loops.

tanh is the hot spot of every Euler step. numba's ``np.tanh``/``np.exp`` are
scalar libm calls (there is no SVML in this numba build), so :func:`tanh_row_`
uses forms that LLVM vectorises (AVX-512 here), in the dtype of the data:

- float64: from ``expm1`` of ``-2|v|``, branch-free::

      tanh|v| = -m / (2 + m),      m = e^(-2|v|) - 1 = s q P(q) + (s - 1)
      s = 2^-k,   k = round(2|v| / ln 2),   q = k ln 2 - 2|v|,   |q| <= ln2 / 2

  with ``P(q) = (e^q - 1) / q`` as its degree-12 Taylor polynomial
  (truncation < 5e-16 relative), ``2^-k`` written straight into the exponent
  bits, and the sign restored by ``copysign``. Working with ``e - 1`` rather
  than ``e`` keeps the relative error small near 0 too (``(1 - e) / (1 + e)``
  loses all relative precision below |v| ~ 1e-8). Error: below 4e-16
  absolute and 1e-15 relative; at most 2.75 ulp against 40-digit arithmetic
  (mpmath) at the 3000 points furthest from ``np.tanh`` among 2,020,000
  (uniform on [-20, 20], standard normal, and 1e-300 to 1), where
  ``np.tanh`` is within 1 ulp. (An earlier note here said 2 ulp; that
  was not measured.)
- float32: the rational form ``v P(v^2) / Q(v^2)`` (degrees 13 over 6 in v)
  of Eigen's ``ptanh`` for float, with |v| clamped at 7.9053. It is four
  times cheaper; its error is below 4e-7 (largest near |v| = 5.9, where it
  is about 6 float32 ulps of 1), against 6e-8 for ``np.tanh`` in float32.

tests/test_activations.py bounds both errors. Kernels use
``error_model="numpy"`` so that float division carries no Python
zero-division check, which would stop vectorisation. The float64 tanh lets
LLVM contract ``a * b + c`` into one fused multiply-add
(``fastmath={"contract"}``, no other fast-math licence): Horner's rule then
costs one instruction per coefficient instead of two (1.6x faster). The
float32 form is left uncontracted: contracted, it ends 2 ulp short of 1 at
the clamp instead of exactly 1.
"""
import numpy as np
from numba import njit

from ..machinery.bits import float_from_bits
from ..machinery.vector import prefer_wide_vectors

PHI_CODES = {"tanh": 0, "relu": 1, "softplus": 2, "sigmoid": 3}

N_CONSTANTS = 12


@njit(cache=True)
def fill_constants_(c):
    """Write the constants of the float32 tanh into ``c`` (12 entries), in
    c's dtype, so that float32 rows are computed in float32 lanes (numba
    would promote Python float literals to float64).

    Layout: the clamp of |v|, then Eigen's rational approximation
    ``tanh(v) ~ v P(v^2) / Q(v^2)`` on |v| <= 7.9053: 7 coefficients of P,
    4 of Q. The float64 tanh needs none (its literals are float64).
    """
    c[0] = 7.90531110763549805
    c[1], c[2], c[3], c[4] = 4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08
    c[5], c[6], c[7] = -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16
    c[8], c[9], c[10], c[11] = 4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06


def tanh_constants(dtype) -> np.ndarray:
    """The constants :func:`tanh_row_` takes, as a ``dtype`` array."""
    c = np.empty(N_CONSTANTS, dtype=np.dtype(dtype))
    fill_constants_(c)
    return c


# Cody-Waite split of ln 2: k * LN2_HI is exact for every k <= 58.
LN2_HI = 0.6931471803691238
LN2_LO = 1.9082149292705877e-10
#: 2|v| is clamped here: tanh(20) rounds to 1 in float64, and k <= 58 keeps 2^-k normal.
TWICE_ABS_CLAMP = 40.0


@njit(cache=True, error_model="numpy")
def tanh_row_(x, out, c):
    """out[i] = tanh(x[i]) for 1-D ``x``, vectorised; ``c = tanh_constants(x.dtype)``.

    NaN in gives NaN out: the clamps are written so that NaN passes through.
    float32 rows use a cheaper rational form (see the module docstring).
    """
    if c.itemsize == 4:
        _tanh_rational_row_(x, out, c)
    else:
        _tanh_expm1_row_(x, out)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _tanh_expm1_row_(x, out):
    """float64 tanh from e^(-2|v|) - 1 (see the module docstring)."""
    prefer_wide_vectors()
    for i in range(x.shape[0]):
        v = x[i]
        y = abs(v) + abs(v)
        y = TWICE_ABS_CLAMP if y > TWICE_ABS_CLAMP else y
        k = np.floor(y * 1.4426950408889634 + 0.5)
        q = (k * LN2_HI - y) + k * LN2_LO  # q = -(y - k ln2), |q| <= ln2/2
        # P(q) = (e^q - 1) / q = sum_n q^n / (n+1)!, Horner from q^12 / 13!
        p = 1.6059043836821613e-10 * q + 2.08767569878681e-09
        p = p * q + 2.505210838544172e-08
        p = p * q + 2.755731922398589e-07
        p = p * q + 2.7557319223985893e-06
        p = p * q + 2.48015873015873e-05
        p = p * q + 0.0001984126984126984
        p = p * q + 0.001388888888888889
        p = p * q + 0.008333333333333333
        p = p * q + 0.041666666666666664
        p = p * q + 0.16666666666666666
        p = p * q + 0.5
        p = p * q + 1.0
        # 2^-k from its exponent bits; NaN (k compares false) is sent to a
        # finite k, so the conversion is defined and NaN flows on through p.
        kc = k if k < 59.0 else 58.0
        s = float_from_bits((1023 - np.int64(kc)) << 52)
        m = s * (q * p) + (s - 1.0)  # e^(-2|v|) - 1
        out[i] = np.copysign((0.0 - m) / (2.0 + m), v)


@njit(cache=True, error_model="numpy")
def _tanh_rational_row_(x, out, c):
    """float32 tanh as v P(v^2) / Q(v^2), |v| clamped at 7.9053 (Eigen's
    ``ptanh`` for float): four times cheaper than the exp form."""
    prefer_wide_vectors()
    clamp = c[0]
    a1, a3, a5, a7, a9, a11, a13 = c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    b0, b2, b4, b6 = c[8], c[9], c[10], c[11]
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
    prefer_wide_vectors()
    zero, one = x.dtype.type(0.0), x.dtype.type(1.0)  # float literals would promote float32 to float64
    if code == 0:
        tanh_row_(x, out, c)
    elif code == 1:
        for i in range(x.shape[0]):
            out[i] = x[i] if x[i] > zero else zero
    elif code == 2:
        for i in range(x.shape[0]):
            v = x[i]
            # log(1 + e^v) without overflow
            out[i] = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
    else:
        for i in range(x.shape[0]):
            out[i] = one / (one + np.exp(-x[i]))


@njit(cache=True, error_model="numpy")
def dphi_row_(x, r, out, code):
    """out = phi'(x) for 1-D rows, using the rates ``r = phi(x)`` when cheaper."""
    prefer_wide_vectors()
    zero, one = x.dtype.type(0.0), x.dtype.type(1.0)  # float literals would promote float32 to float64
    if code == 0:
        for i in range(x.shape[0]):
            out[i] = one - r[i] * r[i]
    elif code == 1:
        for i in range(x.shape[0]):
            out[i] = one if x[i] > zero else zero
    elif code == 2:
        for i in range(x.shape[0]):
            out[i] = one / (one + np.exp(-x[i]))
    else:
        for i in range(x.shape[0]):
            out[i] = r[i] * (one - r[i])


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
