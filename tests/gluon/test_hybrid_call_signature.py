"""A hybridized block is keyed on its whole call signature and never falls back to eager."""

import numpy as np
import pytest

from hybrid import autograd, gluon, nd
from hybrid.base import MXNetError


class Optional(gluon.HybridBlock):
    """``x * 2`` or ``x * 2 + y``: the graph depends on whether ``y`` is None."""

    def hybrid_forward(self, F, x, y=None):
        return x * 2 if y is None else x * 2 + y


class Nested(gluon.HybridBlock):
    def hybrid_forward(self, F, x, pair):
        a, b = pair
        return [x + a, x * b]


class Scaled(gluon.HybridBlock):
    def hybrid_forward(self, F, x, scale):
        return x * scale


def _rand(*shape, seed=0):
    return nd.array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def test_loss_with_and_without_sample_weight_matches_eager_in_any_order():
    pred, label = _rand(4, 5), nd.array([0, 1, 2, 3])
    weight = nd.array(np.array([[0.5], [2.0], [0.0], [1.0]], np.float32))
    eager = gluon.loss.SoftmaxCrossEntropyLoss()
    want_plain, want_weighted = eager(pred, label).asnumpy(), eager(pred, label, weight).asnumpy()
    for order in (("plain", "weighted"), ("weighted", "plain")):
        loss = gluon.loss.SoftmaxCrossEntropyLoss()
        loss.hybridize()
        for which in order * 2:
            got = loss(pred, label) if which == "plain" else loss(pred, label, weight)
            want = want_plain if which == "plain" else want_weighted
            np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-5)
        assert loss.num_compilations == 2


def test_none_positions_select_their_own_graph():
    block = Optional()
    block.hybridize()
    x, y = _rand(3, 2), _rand(3, 2, seed=1)
    np.testing.assert_allclose(block(x).asnumpy(), x.asnumpy() * 2, rtol=1e-6)
    np.testing.assert_allclose(block(x, y).asnumpy(), x.asnumpy() * 2 + y.asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(block(x, None).asnumpy(), x.asnumpy() * 2, rtol=1e-6)
    np.testing.assert_allclose(block(x).asnumpy(), x.asnumpy() * 2, rtol=1e-6)
    assert block.num_compilations == 3  # (x), (x, y) and (x, None), once each


def test_first_argument_none_is_compiled_not_run_eagerly():
    class SecondOnly(gluon.HybridBlock):
        def hybrid_forward(self, F, x, y):
            return y + 1 if x is None else x + y

    block = SecondOnly()
    block.hybridize()
    y = _rand(2, 2)
    np.testing.assert_allclose(block(None, y).asnumpy(), y.asnumpy() + 1, rtol=1e-6)
    assert block.num_compilations == 1


def test_nested_list_arguments_match_eager_and_compile():
    x, a, b = _rand(2, 3), _rand(2, 3, seed=1), _rand(2, 3, seed=2)
    eager = Nested()(x, [a, b])
    block = Nested()
    block.hybridize()
    got = block(x, [a, b])
    for g, e in zip(got, eager):
        np.testing.assert_allclose(g.asnumpy(), e.asnumpy(), rtol=1e-6)
    assert block.num_compilations == 1


@pytest.mark.parametrize("value", [2.0, 5, "text", (1.0, 2.0)])
def test_non_array_arguments_are_refused_when_hybridized(value):
    block = Scaled()
    block.hybridize()
    with pytest.raises(ValueError, match="must be \\(nested\\) list of Symbol or NDArray"):
        block(_rand(2, 2), value)


def test_non_array_arguments_work_eagerly():
    x = _rand(2, 2)
    np.testing.assert_allclose(Scaled()(x, 5.0).asnumpy(), x.asnumpy() * 5, rtol=1e-6)


def test_no_array_argument_is_refused_when_hybridized():
    block = Optional()
    block.hybridize()
    with pytest.raises(ValueError, match="at least one"):
        block(None)


@pytest.mark.parametrize("with_states", [False, True, False], ids=["none", "states", "none2"])
def test_rnn_layer_with_and_without_states_matches_eager(with_states):
    x = _rand(5, 2, 3)
    eager = gluon.rnn.LSTM(4, input_size=3)
    eager.initialize()
    layer = gluon.rnn.LSTM(4, input_size=3, params=eager.collect_params())
    layer.hybridize()
    for given in (with_states, not with_states, with_states):
        states = eager.begin_state(2) if given else None
        want = eager(x, states) if given else eager(x)
        got = layer(x, states) if given else layer(x)
        if given:
            np.testing.assert_allclose(got[0].asnumpy(), want[0].asnumpy(), rtol=1e-5)
            assert len(got[1]) == 2
        else:
            np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), rtol=1e-5)
    assert layer.num_compilations == 2


def test_gradients_through_an_optional_input_match_eager():
    x, y = _rand(3, 2), _rand(3, 2, seed=1)
    grads = []
    for hybridize in (False, True):
        block = Optional()
        if hybridize:
            block.hybridize()
        xs, ys = x.copy(), y.copy()
        xs.attach_grad()
        ys.attach_grad()
        with autograd.record():
            out = block(xs, ys)
        out.backward()
        grads.append((xs.grad.asnumpy(), ys.grad.asnumpy()))
    for g0, g1 in zip(*grads):
        np.testing.assert_allclose(g0, g1, rtol=1e-6)


def test_mixed_symbol_and_array_inputs_are_refused():
    from hybrid import sym

    block = Optional()
    block.hybridize()
    with pytest.raises((ValueError, MXNetError), match="mixed"):
        block(_rand(2, 2), sym.var("y"))
