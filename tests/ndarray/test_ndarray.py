"""NDArray semantics: dtypes, shapes, indexing and views, in-place ops, contexts."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import nd


def test_default_dtype_is_float32_even_from_float64_and_int64() -> None:
    assert nd.array([1, 2]).dtype is np.float32
    assert nd.array(np.arange(3, dtype=np.int64)).dtype is np.float32
    assert nd.array(np.ones(2, np.float64)).dtype is np.float32
    assert nd.array(np.ones(2), dtype="float64").dtype is np.float64
    x = nd.array([1, 2], dtype="int32")
    assert nd.array(x).dtype is np.int32


def test_creation_functions() -> None:
    assert nd.zeros((2, 3)).asnumpy().tolist() == [[0, 0, 0], [0, 0, 0]]
    assert nd.ones(2, dtype="int32").dtype is np.int32
    assert nd.full((2,), 7).asnumpy().tolist() == [7, 7]
    np.testing.assert_array_equal(nd.arange(0, 6, 2).asnumpy(), [0, 2, 4])
    np.testing.assert_array_equal(nd.arange(3, repeat=2).asnumpy(), [0, 0, 1, 1, 2, 2])


def test_full_reductions_have_shape_one() -> None:
    x = nd.ones((2, 3))
    assert x.sum().shape == (1,)
    assert nd.norm(x).shape == (1,)
    assert x.sum().asscalar() == 6


def test_arithmetic_broadcasts_and_comparisons_keep_dtype() -> None:
    a = nd.array([[1, 2, 3]])
    b = nd.array([[1], [2]])
    assert (a + b).shape == (2, 3)
    eq = a == 2
    assert eq.dtype is np.float32 and eq.asnumpy().tolist() == [[0, 1, 0]]
    np.testing.assert_array_equal((2 - a).asnumpy(), [[1, 0, -1]])
    np.testing.assert_array_equal((a ** 2).asnumpy(), [[1, 4, 9]])
    np.testing.assert_array_equal((1 / a).asnumpy(), 1 / np.array([[1, 2, 3]], np.float32))


def test_integer_division_stays_integer() -> None:
    x = nd.array([7, -7], dtype="int32")
    assert (x / 2).dtype is np.int32
    assert (x / 2).asnumpy().tolist() == [3, -3]


def test_scalar_index_on_1d_gives_shape_one_and_slices_are_views() -> None:
    x = nd.arange(6).reshape((3, 2))
    assert x[1].shape == (2,)
    assert nd.arange(3)[1].shape == (1,)
    view = x[1:3]
    view[:] = 0
    assert x.asnumpy().tolist() == [[0, 1], [0, 0], [0, 0]]
    row = x[0]
    row[:] = 9
    assert x.asnumpy()[0].tolist() == [9, 9]
    col = x[:, 1]
    col[:] = -1
    assert x.asnumpy()[:, 1].tolist() == [9, 0, 0]


def test_setitem_forms() -> None:
    x = nd.zeros((2, 3))
    x[:] = 1
    x[0, 1] = 5
    x[1] = nd.array([7, 8, 9])
    x[:, 2] = 4
    assert x.asnumpy().tolist() == [[1, 5, 4], [7, 8, 4]]


def test_inplace_operators_keep_the_handle() -> None:
    x = nd.ones((2,))
    y = x
    x += 2
    x *= 3
    assert y.asnumpy().tolist() == [9, 9]


def test_copy_copyto_astype_context() -> None:
    x = nd.array([1.5, 2.5])
    y = x.copy()
    y[:] = 0
    assert x.asnumpy().tolist() == [1.5, 2.5]
    z = nd.zeros((2,))
    x.copyto(z)
    assert z.asnumpy().tolist() == [1.5, 2.5]
    assert x.astype("int32").asnumpy().tolist() == [1, 2]
    assert x.context == mx.cpu(0)
    moved = x.as_in_context(mx.cpu(1))
    assert moved.context == mx.cpu(1) and moved.asnumpy().tolist() == [1.5, 2.5]
    with mx.cpu(2):
        assert nd.zeros((1,)).context == mx.cpu(2)


def test_reshape_special_codes_and_transpose() -> None:
    x = nd.zeros((2, 3, 4))
    assert x.reshape((-4, 1, 2, -2)).shape == (1, 2, 3, 4)
    assert x.reshape((-3, 0)).shape == (6, 4)
    assert x.reshape((-1, 0), reverse=True).shape == (6, 4)
    assert x.T.shape == (4, 3, 2)


def test_random_seed_reproduces_draws() -> None:
    mx.random.seed(3)
    a = nd.random.uniform(shape=(3,)).asnumpy()
    mx.random.seed(3)
    b = nd.random.uniform(shape=(3,)).asnumpy()
    c = nd.random.normal(shape=(3,)).asnumpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_save_and_load_list_and_dict(tmp_path) -> None:
    path = str(tmp_path / "x.nd")
    nd.save(path, [nd.ones((2,)), nd.array([1, 2], dtype="int32")])
    loaded = nd.load(path)
    assert isinstance(loaded, list) and loaded[1].dtype is np.int32
    nd.save(path, {"a": nd.zeros((1,))})
    assert list(nd.load(path)) == ["a"]


def test_bad_op_use_raises_clear_errors() -> None:
    with pytest.raises(mx.MXNetError, match="broadcast_add"):
        nd.ones((2, 3)) + nd.ones((4, 3))
    with pytest.raises(mx.MXNetError, match="reshape"):
        nd.ones((2, 3)).reshape((4, 4))


def test_waitall_and_wait_to_read() -> None:
    x = nd.ones((2,)) * 3
    x.wait_to_read()
    nd.waitall()
    assert x.asnumpy().tolist() == [3.0, 3.0]


def test_binary_helpers_take_arrays_or_scalars_on_either_side() -> None:
    x = nd.array([1.0, -2.0, 3.0])
    assert nd.maximum(x, 0).asnumpy().tolist() == [1, 0, 3]
    assert nd.subtract(5, x).asnumpy().tolist() == [4, 7, 2]
    assert nd.greater(x, nd.zeros((3,))).asnumpy().tolist() == [1, 0, 1]
    assert nd.power(2, x).asnumpy().tolist() == [2, 0.25, 8]
    assert nd.add(1, 2) == 3


def test_update_ops_write_states_in_place_and_return_the_weight() -> None:
    weight, grad, mom = nd.ones((2,)), nd.ones((2,)), nd.zeros((2,))
    result = nd.sgd_mom_update(weight, grad, mom, out=weight, lr=0.1, momentum=0.9)
    assert result is weight
    np.testing.assert_allclose(weight.asnumpy(), [0.9, 0.9], rtol=1e-6)
    np.testing.assert_allclose(mom.asnumpy(), [-0.1, -0.1], rtol=1e-6)


def test_out_of_range_index_raises() -> None:
    x = nd.zeros((3, 2))
    with pytest.raises(IndexError, match="out of bounds"):
        x[3]
    with pytest.raises(IndexError):
        nd.zeros((3,))[-4]
    with pytest.raises(IndexError, match="out of bounds"):  # MXNet 1.9: IndexError too
        x[0, 5]
