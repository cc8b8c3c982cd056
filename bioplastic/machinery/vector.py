"""Ask LLVM for the CPU's widest vectors in a compiled function.

LLVM vectorises loops for AVX-512 CPUs with 256-bit registers unless told
otherwise (``prefer-vector-width``): on the first AVX-512 chips, 512-bit
instructions lowered the clock. For the elementwise loops of the Euler
steps (tanh, the leak, the adjoint update) that is a loss on current chips:
the float64 tanh costs 1.1 ns per element in 512-bit registers against 1.5
ns in 256-bit ones here (Xeon, Emerald Rapids), with bitwise the same
results. :func:`prefer_wide_vectors` sets the preference for the function
it is called in (and the loops inlined into it); it changes nothing on CPUs
without AVX-512, where 256 bits is the widest.

numba has no option for LLVM function attributes, so the intrinsic writes
the string attribute into the function's attribute set directly. If a
future llvmlite stores attributes differently the hint is skipped, never
an error: it is about speed only.
"""
from numba import types
from numba.extending import intrinsic

_ATTRIBUTE = '"prefer-vector-width"="512"'


def _add_attribute(function) -> bool:
    attrs = getattr(function, "attributes", None)
    if not isinstance(attrs, set) or not hasattr(type(attrs), "_to_list"):
        return False
    set.add(attrs, _ATTRIBUTE)  # AttributeSet.add accepts only flag attributes
    return True


@intrinsic
def prefer_wide_vectors(typingctx):
    """Call first thing in a kernel: its loops may use 512-bit vectors."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        _add_attribute(builder.function)
        return context.get_dummy_value()
    return sig, codegen
