"""IEEE bit reinterpretation of float64 values inside compiled kernels.

The vectorised ln, exp and tanh of the kernels read or build a float64's
exponent through its bits. numba has no bit cast, and going through a view
of an array would stop LLVM vectorising, so these intrinsics emit LLVM's
``bitcast``: a register move, no conversion.
"""
from numba import types
from numba.extending import intrinsic


@intrinsic
def float_bits(typingctx, x):
    """The uint64 IEEE bits of the float64 ``x``."""
    if x != types.float64:
        return None
    sig = types.uint64(types.float64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint64))
    return sig, codegen


@intrinsic
def float_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are ``bits`` (an int64 or a uint64)."""
    if bits not in (types.int64, types.uint64):
        return None
    sig = types.float64(bits)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return sig, codegen
