"""autograd: record/pause/modes, backward with head gradients, grad_req, retain_graph, grad."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid import autograd, nd


def test_modes_and_flags() -> None:
    assert not autograd.is_recording() and not autograd.is_training()
    with autograd.record():
        assert autograd.is_recording() and autograd.is_training()
        with autograd.pause():
            assert not autograd.is_recording() and not autograd.is_training()
        with autograd.predict_mode():
            assert not autograd.is_training()
    with autograd.record(train_mode=False):
        assert autograd.is_recording() and not autograd.is_training()
    with autograd.train_mode():
        assert autograd.is_training() and not autograd.is_recording()


def test_backward_with_head_gradient() -> None:
    x = nd.array([1.0, 2.0, 3.0])
    x.attach_grad()
    with autograd.record():
        y = x * x
    y.backward(nd.array([1.0, 10.0, 100.0]))
    np.testing.assert_allclose(x.grad.asnumpy(), [2.0, 40.0, 600.0])


def test_grad_req_add_accumulates_and_write_overwrites() -> None:
    x = nd.array([1.0, 2.0])
    x.attach_grad(grad_req="add")
    for _ in range(3):
        with autograd.record():
            y = (x * 2).sum()
        y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [6.0, 6.0])
    x.attach_grad(grad_req="write")
    for _ in range(3):
        with autograd.record():
            y = (x * 2).sum()
        y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [2.0, 2.0])


def test_retain_graph_allows_a_second_backward() -> None:
    x = nd.array([3.0])
    x.attach_grad(grad_req="add")
    with autograd.record():
        y = x * x
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [12.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_grad_returns_gradients_without_writing() -> None:
    x = nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = (x ** 3).sum()
    (g,) = autograd.grad(y, [x])
    np.testing.assert_allclose(g.asnumpy(), [3.0, 12.0])
    np.testing.assert_allclose(x.grad.asnumpy(), [0.0, 0.0])


def test_detach_and_blockgrad_stop_gradients() -> None:
    x = nd.array([2.0])
    x.attach_grad()
    with autograd.record():
        y = x * x.detach() + nd.BlockGrad(x) * x
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [4.0])


def test_mark_variables() -> None:
    x = nd.array([1.0, 2.0])
    g = nd.zeros((2,))
    autograd.mark_variables([x], [g])
    with autograd.record():
        y = (x * 5).sum()
    y.backward()
    np.testing.assert_allclose(g.asnumpy(), [5.0, 5.0])


def test_backward_of_unrecorded_array_is_an_error() -> None:
    x = nd.array([1.0])
    with pytest.raises(ValueError, match="record"):
        x.backward()


def test_gradient_flows_through_multi_output_op_and_reuse() -> None:
    x = nd.array([[1.0, 2.0], [3.0, 4.0]])
    x.attach_grad()
    with autograd.record():
        a, b = nd.split(x, num_outputs=2, axis=1)
        y = (a * 3 + b * a).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [[5.0, 1.0], [7.0, 3.0]])


def test_custom_function() -> None:
    class Square(autograd.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, dy):
            (x,) = self.saved_tensors
            return dy * 2 * x

    x = nd.array([3.0])
    x.attach_grad()
    with autograd.record():
        y = Square()(x) * 2
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [12.0])


def test_repeated_tape_structure_runs_fused_and_gives_the_same_gradients() -> None:
    from hybrid import autograd as ag

    x = nd.array(np.random.RandomState(0).randn(3, 4))
    w = nd.array(np.random.RandomState(1).randn(4, 2))
    w.attach_grad()
    grads = []
    fused_before = len(ag._FUSED)
    for _ in range(3):
        with autograd.record():
            h = nd.tanh(nd.dot(x, w))
            loss = (h * h).sum() + nd.sum(nd.relu(h))
        loss.backward()
        grads.append(w.grad.asnumpy().copy())
    assert len(ag._FUSED) == fused_before + 1  # compiled once, on the second pass
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)
    np.testing.assert_allclose(grads[2], grads[0], rtol=1e-6)
