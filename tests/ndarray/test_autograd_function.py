"""``autograd.Function`` with several inputs/outputs, and ``autograd.grad``'s checks (MXNet 1.9)."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, nd
from tests.numeric import central_difference


class MulAdd(autograd.Function):
    """a * b + c, with a hand-written backward returning one gradient per input."""

    def forward(self, a, b, c):
        self.save_for_backward(a, b)
        return a * b + c

    def backward(self, dy):
        a, b = self.saved_tensors
        return dy * b, dy * a, dy * 1


class ProdSum(autograd.Function):
    """Two outputs: a * b and a + b."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b, a + b

    def backward(self, d_prod, d_sum):
        a, b = self.saved_tensors
        return d_prod * b + d_sum, d_prod * a + d_sum


class WrongCount(autograd.Function):
    def forward(self, a, b):
        return a * b

    def backward(self, dy):
        return dy


def _loss_muladd(a, b, c):
    y = a * b + c
    return float((np.sin(y) * np.arange(1, y.size + 1).reshape(y.shape)).sum())


@pytest.mark.parametrize("shape,needs", [((3,), (True, False, True)),
                                         ((2, 4), (True, True, True)),
                                         ((5, 1), (False, True, False))])
def test_function_with_three_inputs_matches_finite_differences(shape, needs) -> None:
    rng = np.random.RandomState(sum(shape))
    data = [rng.uniform(-1, 1, shape) for _ in range(3)]
    arrays = [nd.array(d) for d in data]
    for arr, need in zip(arrays, needs):
        if need:
            arr.attach_grad()
    weights = nd.array(np.arange(1, int(np.prod(shape)) + 1).reshape(shape))
    with autograd.record():
        y = MulAdd()(*arrays)
        loss = (nd.sin(y) * weights).sum()
    loss.backward()
    np.testing.assert_allclose(y.asnumpy(), data[0] * data[1] + data[2], rtol=1e-5)
    for k, (arr, need) in enumerate(zip(arrays, needs)):
        if not need:
            assert arr.grad is None
            continue

        def f(v, k=k):
            args = list(data)
            args[k] = v
            return _loss_muladd(*args)

        np.testing.assert_allclose(arr.grad.asnumpy(), central_difference(f, data[k]),
                                   rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("shape", [(2,), (3, 2)])
def test_function_with_two_outputs_passes_each_output_gradient(shape) -> None:
    rng = np.random.RandomState(len(shape))
    a_np, b_np = rng.randn(*shape), rng.randn(*shape)
    hp, hs = rng.randn(*shape), rng.randn(*shape)
    a, b = nd.array(a_np), nd.array(b_np)
    a.attach_grad()
    b.attach_grad()
    with autograd.record():
        prod, total = ProdSum()(a, b)
    autograd.backward([prod, total], [nd.array(hp), nd.array(hs)])
    np.testing.assert_allclose(a.grad.asnumpy(), hp * b_np + hs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.grad.asnumpy(), hp * a_np + hs, rtol=1e-5, atol=1e-6)
    # an output the head does not reach gets a zero gradient (MXNet: a=[1,2], b=[3,4]
    # and total.backward() give a.grad = b.grad = 1)
    with autograd.record():
        prod, total = ProdSum()(a, b)
    total.backward()
    np.testing.assert_allclose(a.grad.asnumpy(), np.ones(shape))
    np.testing.assert_allclose(b.grad.asnumpy(), np.ones(shape))


def test_function_inside_a_graph_and_with_a_repeated_input() -> None:
    a = nd.array([1.0, 2.0])
    b = nd.array([3.0, 4.0])
    a.attach_grad()
    with autograd.record():
        a3 = a * 3
        y = MulAdd()(a3, b, a3).sum()
    y.backward()
    np.testing.assert_allclose(a.grad.asnumpy(), [12.0, 15.0])  # 3 * (b + 1)
    with autograd.record():
        y = MulAdd()(a, a, a)
    y.backward()
    np.testing.assert_allclose(a.grad.asnumpy(), [3.0, 5.0])  # 2a + 1, as in MXNet


def test_function_outside_record_and_without_grad_inputs_only_runs_forward() -> None:
    a, b = nd.array([1.0, 2.0]), nd.array([3.0, 4.0])
    prod, total = ProdSum()(a, b)
    np.testing.assert_allclose(prod.asnumpy(), [3.0, 8.0])
    np.testing.assert_allclose(total.asnumpy(), [4.0, 6.0])
    with autograd.record():
        y = MulAdd()(a, b, b)
    assert y._entry is None


def test_function_backward_with_wrong_gradient_count_raises() -> None:
    a, b = nd.array([1.0, 2.0]), nd.array([3.0, 4.0])
    a.attach_grad()
    with autograd.record():
        y = WrongCount()(a, b)
    with pytest.raises(mx.MXNetError, match="WrongCount.backward must return exactly the same "
                                            "number of NDArrays.*Expecting 2 got 1"):
        y.backward()


def test_grad_with_unreachable_variable_raises_as_mxnet() -> None:
    x, w = nd.array([1.0, 2.0]), nd.array([3.0, 4.0])
    x.attach_grad()
    w.attach_grad()
    with autograd.record():
        y = (x * 2).sum()
    with pytest.raises(mx.MXNetError, match="2-th variable .*unreachable from the outputs"):
        autograd.grad(y, [x, w])


@pytest.mark.parametrize("make", ["plain", "intermediate", "null_req"])
def test_grad_with_variable_not_requiring_gradient_raises_as_mxnet(make) -> None:
    x = nd.array([1.0, 2.0])
    x.attach_grad()
    other = nd.array([5.0, 6.0])
    if make == "null_req":
        other.attach_grad(grad_req="null")
    with autograd.record():
        mid = x * 3
        y = (mid * other).sum()
    target = mid if make == "intermediate" else other
    with pytest.raises(mx.MXNetError, match="1-th variable .*does not require gradient"):
        autograd.grad(y, [target])


def test_grad_returns_a_list_and_leaves_grad_buffers_alone() -> None:
    x = nd.array([1.0, 2.0, 3.0])
    x.attach_grad()
    x.grad[:] = 7
    with autograd.record():
        y = (x * x).sum()
    got = autograd.grad(y, x)
    assert isinstance(got, list) and len(got) == 1
    np.testing.assert_allclose(got[0].asnumpy(), [2.0, 4.0, 6.0])
    np.testing.assert_allclose(x.grad.asnumpy(), [7.0, 7.0, 7.0])
    with pytest.raises(AssertionError, match="variables cannot be an empty list"):
        autograd.grad(y, [])
