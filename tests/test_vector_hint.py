"""The 512-bit vector hint: valid LLVM IR, and harmless when it cannot apply."""
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit

from bioplastic.machinery.vector import _ATTRIBUTE, _add_attribute, prefer_wide_vectors


def test_attribute_is_written_into_parsable_ir():
    module = ir.Module(name="m")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), []), name="f")
    ir.IRBuilder(fn.append_basic_block()).ret_void()
    assert _add_attribute(fn)
    text = str(module)
    assert _ATTRIBUTE in text
    parsed = llvm.parse_assembly(text)  # LLVM accepts it as a function attribute
    parsed.verify()
    assert _ATTRIBUTE in str(parsed)  # kept (as an attribute group of f)


def test_unknown_attribute_containers_are_skipped():
    class NoAttributes:
        pass

    class OddAttributes:
        attributes = ["not a set"]

    assert not _add_attribute(NoAttributes())
    assert not _add_attribute(OddAttributes())


def test_hinted_kernels_compute_the_same_numbers():
    @njit
    def plain(x, out):
        for i in range(x.shape[0]):
            out[i] = x[i] * 1.5 + 0.25

    @njit
    def hinted(x, out):
        prefer_wide_vectors()
        for i in range(x.shape[0]):
            out[i] = x[i] * 1.5 + 0.25

    x = np.random.default_rng(0).standard_normal(1001)
    a, b = np.empty_like(x), np.empty_like(x)
    plain(x, a)
    hinted(x, b)
    np.testing.assert_array_equal(a, b)
