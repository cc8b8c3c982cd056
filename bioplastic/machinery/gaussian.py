"""Standard-normal draws in vectorised compiled loops: SplitMix64 + Box-Muller.

Node perturbation draws one Gaussian per unit, step and trial, as many
numbers as a forward pass has state updates. NumPy's ziggurat sampler is
branchy and scalar: on the 2-core machine this project is measured on it
costs about 15 ns a draw, twice a whole forward pass at N = 100. Here each
draw is a fixed sequence of arithmetic that LLVM vectorises (AVX-512: eight
float64 lanes), about ten times cheaper.

Uniforms: SplitMix64 (Steele, Lea & Flood 2014), the output of a Weyl
sequence through a 64-bit mixer::

    z_i = mix(key + (i + 1) gamma),   gamma = 0x9E3779B97F4A7C15
    mix(z) = z ^ (z >> 31) after z = (z ^ (z >> 30)) c1, z = (z ^ (z >> 27)) c2

It passes BigCrush (Vigna's tests) and is counter-based: draw i needs no
state but ``key`` and ``i``, so every lane computes its own.
``u1 = (z >> 11 + 1) 2^-53`` lies in (0, 1] and ``u2 = (z >> 11) 2^-53`` in
[0, 1).

Normals: Box-Muller, two per pair of uniforms (draws 2i and 2i + 1 of the
stream)::

    n_a = r cos(2 pi u2),   n_b = r sin(2 pi u2),   r = sqrt(-2 ln u1)

with ``n_a`` written to the first half of the output and ``n_b`` to the
second (contiguous stores vectorise; interleaved ones did not). ln, sin
and cos are written here as polynomials (numba's ``math.log`` is a scalar
libm call): ln from the exponent bits and ``2 atanh(s)``, ``s = (m - 1) / (m
+ 1)`` with m in [sqrt(1/2), sqrt(2)); sin and cos on a quarter turn, after
an exact reduction of ``u2`` by quarters. Errors: below 1e-15 relative for
ln, 1e-16 absolute for sin and cos (tests/test_gaussian.py). Since u1 >=
2^-53, |n| <= sqrt(2 ln 2^53) = 8.57: the tails beyond 8.57 sigma
(probability 1e-17) are missing, as in every sampler built on 53-bit
uniforms through Box-Muller.
"""
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from .bits import float_bits, float_from_bits
from .vector import prefer_wide_vectors

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11, _S52 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11), np.uint64(52)
_TWO_M53 = 2.0 ** -53
_MANTISSA = np.uint64(0x000FFFFFFFFFFFFF)
_EXP_MASK = np.uint64(0x7FF)
_ONE_BITS = np.uint64(0x3FF0000000000000)
_SQRT2 = 1.4142135623730951
# Cody-Waite split of ln 2: e * LN2_HI is exact for |e| < 2^11.
_LN2_HI = 0.6931471803691238
_LN2_LO = 1.9082149292705877e-10
_TWO_PI = 6.283185307179586


@intrinsic
def _sqrt(typingctx, x):
    """``llvm.sqrt`` of a float64: numba's math.sqrt and np.sqrt call libm's
    ``sqrt``, a scalar call that stops the loop from vectorising."""
    if x != types.float64:
        return None
    sig = types.float64(types.float64)

    def codegen(context, builder, sig, args):
        fn = builder.module.declare_intrinsic("llvm.sqrt", [args[0].type])
        return builder.call(fn, args)
    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _C1
    z = (z ^ (z >> _S27)) * _C2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, fastmath={"contract"}, inline="always")
def _log_unit(u):
    """ln(u) for a positive normal float64 u (here u in (0, 1])."""
    b = float_bits(u)
    e = np.float64(np.int64((b >> _S52) & _EXP_MASK) - 1023)
    m = float_from_bits((b & _MANTISSA) | _ONE_BITS)  # in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1.0 if big else e
    s = (m - 1.0) / (m + 1.0)  # |s| <= 0.1716
    s2 = s * s
    # 2 atanh(s) = 2 s sum_k s^(2k) / (2k + 1), to k = 10 (truncation < 3e-17)
    p = s2 * (1.0 / 21.0) + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    log_m = 2.0 * s + (2.0 * s) * (s2 * p)
    return e * _LN2_HI + (log_m + e * _LN2_LO)


@njit(cache=True, nogil=True, fastmath={"contract"}, inline="always")
def _cos_sin_turn(u):
    """(cos 2 pi u, sin 2 pi u) for u in [0, 1)."""
    q = np.floor(4.0 * u + 0.5)  # nearest quarter turn, 0..4
    a = _TWO_PI * (u - 0.25 * q)  # exact difference; |a| <= pi / 4
    a2 = a * a
    # Taylor series to a^17 (sin) and a^16 (cos): truncation < 5e-17 at pi/4
    sp = a2 * (1.0 / 355687428096000.0) - 1.0 / 1307674368000.0
    sp = sp * a2 + 1.0 / 6227020800.0
    sp = sp * a2 - 1.0 / 39916800.0
    sp = sp * a2 + 1.0 / 362880.0
    sp = sp * a2 - 1.0 / 5040.0
    sp = sp * a2 + 1.0 / 120.0
    sp = sp * a2 - 1.0 / 6.0
    sin_a = a + a * (a2 * sp)
    cp = a2 * (1.0 / 20922789888000.0) - 1.0 / 87178291200.0
    cp = cp * a2 + 1.0 / 479001600.0
    cp = cp * a2 - 1.0 / 3628800.0
    cp = cp * a2 + 1.0 / 40320.0
    cp = cp * a2 - 1.0 / 720.0
    cp = cp * a2 + 1.0 / 24.0
    cp = cp * a2 - 0.5
    cos_a = 1.0 + a2 * cp
    # turn by k quarters, (c, s) -> (-s, c) each: odd k swaps, and the signs
    # are - for c at k = 1, 2 and for s at k = 2, 3 (one-level selects and
    # exact sign factors; nested conditionals stop LLVM vectorising)
    k = np.int64(q) & 3
    odd = (k & 1) == 1
    x = sin_a if odd else cos_a
    y = cos_a if odd else sin_a
    sign_c = 1.0 - 2.0 * np.float64(((k + 1) >> 1) & 1)
    sign_s = 1.0 - 2.0 * np.float64((k >> 1) & 1)
    return sign_c * x, sign_s * y


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _fill_pairs(key, first, second):
    """Pair i of the stream: ``first[i] = r cos``, ``second[i] = r sin``, for
    i < len(second) (``first`` may be one longer: its last pair's sine is
    dropped)."""
    prefer_wide_vectors()
    one, two = np.uint64(1), np.uint64(2)
    for i in range(first.shape[0]):
        base = key + (two * np.uint64(i) + one) * GAMMA
        z1 = _mix(base)
        z2 = _mix(base + GAMMA)
        u1 = np.float64(np.int64((z1 >> _S11) + one)) * _TWO_M53  # < 2^53: exact as int64 and double
        u2 = np.float64(np.int64(z2 >> _S11)) * _TWO_M53
        r = _sqrt(-2.0 * _log_unit(u1))
        c, s = _cos_sin_turn(u2)
        first[i] = r * c
        if i < second.shape[0]:
            second[i] = r * s


@njit(cache=True, nogil=True)
def fill_standard_normal_(key, out):
    """Fill the 1-D ``out`` with standard normals from the stream ``key``.

    Pair i (i < h = ceil(n / 2)) takes draws 2i and 2i + 1 of SplitMix64
    seeded with ``key`` (a uint64) and gives ``out[i]`` (its cosine) and
    ``out[h + i]`` (its sine; the last pair of an odd n gives no sine). The
    values depend on ``key`` and ``len(out)`` only.
    """
    h = (out.shape[0] + 1) // 2
    _fill_pairs(key, out[:h], out[h:])


@njit(cache=True, nogil=True)
def log_unit_(u, out):
    """``out = ln(u)`` elementwise, by the sampler's polynomial (for tests)."""
    for i in range(u.shape[0]):
        out[i] = _log_unit(u[i])


@njit(cache=True, nogil=True)
def cos_sin_turn_(u, c, s):
    """``c, s = cos(2 pi u), sin(2 pi u)`` by the sampler's polynomials (for tests)."""
    for i in range(u.shape[0]):
        c[i], s[i] = _cos_sin_turn(u[i])
