"""The benchmark workloads, each as a hybrid Gluon step and a hand-written ``jax.jit`` step.

A workload builder returns ``(step, sync)``: ``step()`` runs one training step and
returns something to wait on; ``sync(x)`` waits for it. Both sides use the same
shapes, initial values are independent (speed does not depend on them).

- W1 MLP 784-256-256-10, batch 128, SGD momentum.
- W2 LeNet (conv 5x5x20, pool, conv 5x5x50, pool, dense 500, dense 10) on 1x28x28, batch 64.
- W3 CIFAR ResNet-18 (BasicBlocks 64-128-256-512, BatchNorm), 3x32x32, batch 16.
- W4 2-layer LSTM language model, vocab 10k, hidden 256, sequence 35, batch 20.
- W6 Dense(64) MLP with ``layers`` hidden layers, batch 64.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import hybrid as mx
from hybrid import autograd, gluon, nd

LR, MOMENTUM = 0.05, 0.9


# ------------------------------------------------------------------ hybrid side
def _hybrid_step(net, loss_fn, x: np.ndarray, y: np.ndarray, hybridize: bool | str,
                 states=None):
    """The plain Gluon loop (``hybridize`` True or False), or ``trainer.compile_step``
    (``hybridize="compiled"``)."""
    net.initialize(mx.init.Xavier())
    if hybridize:
        net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": LR, "momentum": MOMENTUM})
    data, label = nd.array(x), nd.array(y)
    batch = x.shape[0] if x.ndim != 2 or states is None else x.shape[1]
    if hybridize == "compiled":
        model = net if states is None else _FirstOutput(net)
        compiled = trainer.compile_step(model, loss_fn)
        inputs = [data] if states is None else [data, *states]
        return (lambda: compiled(inputs, label, batch)), lambda loss: loss.wait_to_read()

    def step():
        with autograd.record():
            out = net(data) if states is None else net(data, states)[0]
            loss = loss_fn(out, label)
        loss.backward()
        trainer.step(batch)
        return loss

    return step, lambda loss: loss.wait_to_read()


class _FirstOutput(gluon.HybridBlock):
    """``net(x, [h, c])[0]`` as a block of three inputs (``compile_step`` takes a net of
    one output)."""

    def __init__(self, net, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.net = net

    def hybrid_forward(self, F, x, h, c):
        return self.net(x, [h, c])[0]


def hybrid_mlp(sizes: list[int], x, y, hybridize: bool):
    net = gluon.nn.HybridSequential()
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        net.add(gluon.nn.Dense(n_out, activation=None if last else "relu", in_units=n_in))
    return _hybrid_step(net, gluon.loss.SoftmaxCrossEntropyLoss(), x, y, hybridize)


def hybrid_lenet(x, y, hybridize: bool):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(20, 5, activation="relu", in_channels=1),
            gluon.nn.MaxPool2D(2, 2),
            gluon.nn.Conv2D(50, 5, activation="relu", in_channels=20),
            gluon.nn.MaxPool2D(2, 2),
            gluon.nn.Flatten(),
            gluon.nn.Dense(500, activation="relu", in_units=800),
            gluon.nn.Dense(10, in_units=500))
    return _hybrid_step(net, gluon.loss.SoftmaxCrossEntropyLoss(), x, y, hybridize)


class _BasicBlock(gluon.HybridBlock):
    def __init__(self, channels: int, stride: int, in_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = gluon.nn.HybridSequential()
            self.body.add(gluon.nn.Conv2D(channels, 3, stride, 1, use_bias=False,
                                          in_channels=in_channels),
                          gluon.nn.BatchNorm(in_channels=channels),
                          gluon.nn.Activation("relu"),
                          gluon.nn.Conv2D(channels, 3, 1, 1, use_bias=False,
                                          in_channels=channels),
                          gluon.nn.BatchNorm(in_channels=channels))
            self.down = None
            if stride != 1 or in_channels != channels:
                self.down = gluon.nn.HybridSequential()
                self.down.add(gluon.nn.Conv2D(channels, 1, stride, use_bias=False,
                                              in_channels=in_channels),
                              gluon.nn.BatchNorm(in_channels=channels))

    def hybrid_forward(self, F, x):
        residual = x if self.down is None else self.down(x)
        return F.Activation(self.body(x) + residual, act_type="relu")


def hybrid_resnet18(x, y, hybridize: bool):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(64, 3, 1, 1, use_bias=False, in_channels=3),
            gluon.nn.BatchNorm(in_channels=64), gluon.nn.Activation("relu"))
    in_ch = 64
    for channels, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        net.add(_BasicBlock(channels, stride, in_ch), _BasicBlock(channels, 1, channels))
        in_ch = channels
    net.add(gluon.nn.GlobalAvgPool2D(), gluon.nn.Flatten(), gluon.nn.Dense(10, in_units=512))
    return _hybrid_step(net, gluon.loss.SoftmaxCrossEntropyLoss(), x, y, hybridize)


class _LanguageModel(gluon.HybridBlock):
    def __init__(self, vocab: int, hidden: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.embedding = gluon.nn.Embedding(vocab, hidden)
            self.rnn = gluon.rnn.LSTM(hidden, num_layers=2, input_size=hidden)
            self.decoder = gluon.nn.Dense(vocab, flatten=False, in_units=hidden)

    def hybrid_forward(self, F, x, states):
        out, states = self.rnn(self.embedding(x), states)
        return self.decoder(out), states


def hybrid_lstm_lm(x, y, hybridize: bool, vocab: int, hidden: int):
    net = _LanguageModel(vocab, hidden)
    states = [nd.zeros((2, x.shape[1], hidden)), nd.zeros((2, x.shape[1], hidden))]
    return _hybrid_step(net, gluon.loss.SoftmaxCrossEntropyLoss(), x, y, hybridize,
                        states=states)


# --------------------------------------------------------------------- jax side
def _glorot(rng, shape, fan_in, fan_out):
    s = np.sqrt(6.0 / (fan_in + fan_out))
    return jnp.asarray(rng.uniform(-s, s, shape).astype(np.float32))


def _softmax_ce(logits, y):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, y[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _jax_step(params, aux, forward, x, y, batch):
    """``forward(params, aux, x) -> (logits, new_aux)``; SGD with momentum, loss summed
    and the gradient scaled by 1/batch as Gluon's Trainer does."""
    moms = jax.tree_util.tree_map(jnp.zeros_like, params)

    @partial(jax.jit, donate_argnums=(0, 1, 2))
    def train_step(p, m, a, xb, yb):
        def loss_of(q):
            logits, new_a = forward(q, a, xb)
            loss = _softmax_ce(logits, yb)
            return loss.sum(), (loss, new_a)

        (_, (loss, new_a)), g = jax.value_and_grad(loss_of, has_aux=True)(p)
        m = jax.tree_util.tree_map(lambda mm, gg: MOMENTUM * mm - LR * gg / batch, m, g)
        p = jax.tree_util.tree_map(lambda pp, mm: pp + mm, p, m)
        return p, m, new_a, loss

    xb, yb = jnp.asarray(x), jnp.asarray(y)
    state = {"p": params, "m": moms, "a": aux}

    def step():
        state["p"], state["m"], state["a"], loss = train_step(state["p"], state["m"],
                                                              state["a"], xb, yb)
        return loss

    return step, lambda loss: loss.block_until_ready()


def jax_mlp(sizes: list[int], x, y):
    rng = np.random.RandomState(0)
    params = [(_glorot(rng, (o, i), i, o), jnp.zeros(o)) for i, o in zip(sizes[:-1], sizes[1:])]

    def forward(p, a, h):
        for k, (w, b) in enumerate(p):
            h = h @ w.T + b
            if k < len(p) - 1:
                h = jax.nn.relu(h)
        return h, a

    return _jax_step(params, (), forward, x, y, x.shape[0])


def _conv(x, w, stride=1, pad=0):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), [(pad, pad), (pad, pad)],
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))


def _maxpool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def jax_lenet(x, y):
    rng = np.random.RandomState(0)
    p = {"c1": _glorot(rng, (20, 1, 5, 5), 25, 500), "b1": jnp.zeros(20),
         "c2": _glorot(rng, (50, 20, 5, 5), 500, 1250), "b2": jnp.zeros(50),
         "d1": _glorot(rng, (500, 800), 800, 500), "e1": jnp.zeros(500),
         "d2": _glorot(rng, (10, 500), 500, 10), "e2": jnp.zeros(10)}

    def forward(p, a, h):
        h = _maxpool(jax.nn.relu(_conv(h, p["c1"]) + p["b1"][:, None, None]))
        h = _maxpool(jax.nn.relu(_conv(h, p["c2"]) + p["b2"][:, None, None]))
        h = jax.nn.relu(h.reshape(h.shape[0], -1) @ p["d1"].T + p["e1"])
        return h @ p["d2"].T + p["e2"], a

    return _jax_step(p, (), forward, x, y, x.shape[0])


def _bn(x, gamma, beta, stats, momentum=0.9, eps=1e-5):
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    y = (x - mean[:, None, None]) * jax.lax.rsqrt(var + eps)[:, None, None]
    new = (stats[0] * momentum + mean * (1 - momentum),
           stats[1] * momentum + var * (1 - momentum))
    return y * gamma[:, None, None] + beta[:, None, None], new


def jax_resnet18(x, y):
    rng = np.random.RandomState(0)
    params, aux, plan = {}, {}, []

    def conv(name, cin, cout, k):
        params[name] = _glorot(rng, (cout, cin, k, k), cin * k * k, cout * k * k)

    def bn(name, c):
        params[name + "_g"], params[name + "_b"] = jnp.ones(c), jnp.zeros(c)
        aux[name] = (jnp.zeros(c), jnp.ones(c))

    conv("stem", 3, 64, 3)
    bn("stem_bn", 64)
    cin = 64
    for stage, (cout, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
        for blk, s in enumerate((stride, 1)):
            n = f"s{stage}b{blk}"
            conv(n + "c1", cin, cout, 3)
            bn(n + "n1", cout)
            conv(n + "c2", cout, cout, 3)
            bn(n + "n2", cout)
            down = s != 1 or cin != cout
            if down:
                conv(n + "d", cin, cout, 1)
                bn(n + "dn", cout)
            plan.append((n, s, down))
            cin = cout
    params["fc"], params["fc_b"] = _glorot(rng, (10, 512), 512, 10), jnp.zeros(10)

    def forward(p, a, h):
        new = {}

        def norm(name, v):
            out, new[name] = _bn(v, p[name + "_g"], p[name + "_b"], a[name])
            return out

        h = jax.nn.relu(norm("stem_bn", _conv(h, p["stem"], 1, 1)))
        for n, s, down in plan:
            r = norm(n + "dn", _conv(h, p[n + "d"], s)) if down else h
            b = jax.nn.relu(norm(n + "n1", _conv(h, p[n + "c1"], s, 1)))
            h = jax.nn.relu(norm(n + "n2", _conv(b, p[n + "c2"], 1, 1)) + r)
        h = h.mean(axis=(2, 3))
        return h @ p["fc"].T + p["fc_b"], new

    return _jax_step(params, aux, forward, x, y, x.shape[0])


def jax_lstm_lm(x, y, vocab: int, hidden: int):
    rng = np.random.RandomState(0)
    p = {"emb": jnp.asarray(rng.uniform(-0.07, 0.07, (vocab, hidden)).astype(np.float32)),
         "dec": _glorot(rng, (vocab, hidden), hidden, vocab), "dec_b": jnp.zeros(vocab)}
    for layer in range(2):
        p[f"wi{layer}"] = _glorot(rng, (4 * hidden, hidden), hidden, 4 * hidden)
        p[f"wh{layer}"] = _glorot(rng, (4 * hidden, hidden), hidden, 4 * hidden)
        p[f"bi{layer}"] = jnp.zeros(4 * hidden)
        p[f"bh{layer}"] = jnp.zeros(4 * hidden)
    batch = x.shape[1]

    def forward(p, a, tokens):
        h = p["emb"][tokens.astype(jnp.int32)]
        for layer in range(2):
            def cell(carry, xt, layer=layer):
                hp, cp = carry
                g = xt @ p[f"wi{layer}"].T + p[f"bi{layer}"] + hp @ p[f"wh{layer}"].T \
                    + p[f"bh{layer}"]
                i, f, c_, o = jnp.split(g, 4, axis=-1)
                c = jax.nn.sigmoid(f) * cp + jax.nn.sigmoid(i) * jnp.tanh(c_)
                hn = jax.nn.sigmoid(o) * jnp.tanh(c)
                return (hn, c), hn

            zeros = jnp.zeros((batch, hidden))
            _, h = jax.lax.scan(cell, (zeros, zeros), h)
        return h @ p["dec"].T + p["dec_b"], a

    return _jax_step(p, (), forward, x, y, batch)


# ------------------------------------------------------------------ torch side
def torch_mlp(sizes: list[int], x, y):
    import torch

    torch.set_num_threads(1)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return _torch_step(torch.nn.Sequential(*layers), x, y)


def torch_lenet(x, y):
    import torch

    torch.set_num_threads(1)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))
    return _torch_step(net, x, y)


def _torch_step(net, x, y):
    import torch

    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    xb, yb = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        return loss

    return step, lambda loss: loss.item()
