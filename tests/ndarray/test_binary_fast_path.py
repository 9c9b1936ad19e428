"""Array-array arithmetic outside record() reuses the program of an earlier call of the
same shapes and dtypes; it must give exactly what the full op dispatch gives."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, nd
from hybrid.ndarray import dispatch

CASES = [((3, 4), (3, 4), "float32", "float32"), ((3, 4), (4,), "float32", "float32"),
         ((2, 1, 5), (3, 1), "float16", "float16"), ((4,), (4,), "int32", "int32"),
         ((2, 3), (2, 3), "float32", "float64"), ((2, 3), (1, 3), "int64", "float32")]
OPS = ["__add__", "__sub__", "__mul__", "__truediv__", "__pow__", "__radd__", "__rsub__",
       "__gt__", "__eq__", "__mod__"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("sa,sb,da,db", CASES)
def test_repeated_binary_calls_equal_the_first(op, sa, sb, da, db) -> None:
    rng = np.random.RandomState(0)
    a = nd.array(rng.rand(*sa) * 3 + 1, dtype=da)
    b = nd.array(rng.rand(*sb) * 3 + 1, dtype=db)
    first = getattr(a, op)(b)
    second = getattr(a, op)(b)  # through the remembered program
    assert second.dtype == first.dtype and second.shape == first.shape
    np.testing.assert_array_equal(second.asnumpy(), first.asnumpy())
    dispatch._BINARY.clear()  # the full dispatch again
    np.testing.assert_array_equal(getattr(a, op)(b).asnumpy(), first.asnumpy())


def test_fast_path_is_not_used_while_recording() -> None:
    a, b = nd.ones((2, 2)), nd.ones((2, 2))
    a + b
    a.attach_grad()
    with autograd.record():
        y = (a * b).sum()
    y.backward()
    np.testing.assert_array_equal(a.grad.asnumpy(), np.ones((2, 2)))


def test_bad_shapes_still_raise_mxnet_error() -> None:
    a, b = nd.ones((2, 3)), nd.ones((4, 5))
    for _ in range(2):
        with pytest.raises(mx.MXNetError, match="broadcast"):
            a + b


def test_in_place_operators_write_through() -> None:
    a, b = nd.ones((2, 2)), nd.ones((2, 2))
    a + b
    a += b
    np.testing.assert_array_equal(a.asnumpy(), np.full((2, 2), 2.0))
