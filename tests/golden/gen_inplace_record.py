"""Generate tests/golden/inplace_record.json with the real MXNet 1.9.1.

Run with the reference interpreter (never from the test suite)::

    /work/mxref/bin/python tests/golden/gen_inplace_record.py

Each scenario writes into an array (``x[:] = v``, ``x[i] = v``, ``x[a:b] = v``, ``x += v``,
``copyto``, writes through views) inside or outside ``autograd.record()`` and records
what MXNet does: the errors it raises (type and message; MXNet performs the write, then
raises, and the recorded graph is unchanged), the arrays' values after each step and the
gradients of a later backward. Every scenario runs on several shapes with random data.
The test suite imports ``SCENARIOS`` from this file and replays them on hybrid.

Scenarios flagged ``mxnet_reads_mutated_buffer``: an array the recorded graph saved is
written (outside recording) before backward, and MXNet's backward reads the new
contents; MXNet's own error text calls this "undefined behavior". Scenarios flagged
``mxnet_marks_plain_inputs``: MXNet gives a plain (no-grad) input of a recorded op a
graph entry, so a later write to it inside ``record()`` raises.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).parent / "inplace_record.json"
SHAPES = [(4,), (3, 2), (5, 3)]
SCENARIOS: dict = {}
FLAGS: dict[str, list[str]] = {}


def scenario(*flags: str):
    def register(fn):
        SCENARIOS[fn.__name__] = fn
        FLAGS[fn.__name__] = list(flags)
        return fn

    return register


# ---------------------------------------------------------------- refused inside record
def _write_on_output(nd, ag, x, keep, attempt, write):
    with ag.record():
        y = x * 2
        attempt(lambda: write(nd, y))
        keep("y_after_write", y)
    y.backward()
    keep("x_grad", x.grad)


@scenario()
def whole_scalar_write_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt, lambda nd, y: y.__setitem__(slice(None), 5))


@scenario()
def whole_ndarray_write_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt,
                     lambda nd, y: y.__setitem__(slice(None), nd.ones(y.shape)))


@scenario()
def int_write_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt, lambda nd, y: y.__setitem__(1, 7))


@scenario()
def slice_write_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt, lambda nd, y: y.__setitem__(slice(1, 3), -1))


@scenario()
def numpy_slice_write_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt,
                     lambda nd, y: y.__setitem__(slice(1, 3), np.ones((2,) + y.shape[1:])))


@scenario()
def whole_numpy_write_on_recorded_output_is_allowed(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt,
                     lambda nd, y: y.__setitem__(slice(None), np.full(y.shape, 3.0)))


@scenario()
def ellipsis_write_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt, lambda nd, y: y.__setitem__(Ellipsis, 2))


def _iop(name):
    def write(nd, y):
        getattr(y, name)(2)

    return write


@scenario()
def iadd_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt, _iop("__iadd__"))


@scenario()
def isub_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt, _iop("__isub__"))


@scenario()
def imul_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt, _iop("__imul__"))


@scenario()
def idiv_on_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt, _iop("__itruediv__"))


@scenario()
def copyto_into_recorded_output(nd, ag, x, keep, attempt):
    _write_on_output(nd, ag, x, keep, attempt, lambda nd, y: nd.ones(y.shape).copyto(y))


@scenario()
def writes_on_variable_inside_record(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * 2  # its backward does not read x, which the refused writes still change
        attempt(lambda: x.__setitem__(slice(None), 0))
        attempt(lambda: x.__iadd__(1))
        attempt(lambda: x.__setitem__(0, 5))
        keep("x_after_writes", x)
    y.backward()
    keep("x_grad", x.grad)


@scenario()
def write_on_variable_with_no_graph_inside_record(nd, ag, x, keep, attempt):
    with ag.record():
        attempt(lambda: x.__setitem__(slice(None), 0))
    keep("x", x)


@scenario()
def write_through_view_of_variable_taken_inside_record(nd, ag, x, keep, attempt):
    with ag.record():
        attempt(lambda: x[1:3].__setitem__(slice(None), 0))
        keep("x", x)


@scenario()
def write_through_view_of_recorded_output_taken_inside_record(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * 2
        v = y[1:3]
        attempt(lambda: v.__setitem__(slice(None), 0))
        attempt(lambda: v.__iadd__(1))
        keep("y", y)
        keep("v", v)
    y.backward()
    keep("x_grad", x.grad)


@scenario()
def write_after_retained_backward_inside_record(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * 2
    y.backward(retain_graph=True)
    with ag.record():
        attempt(lambda: y.__setitem__(slice(None), 1))
    keep("y", y)


@scenario()
def inplace_op_of_plain_array_with_recorded_value(nd, ag, x, keep, attempt):
    z = nd.ones(x.shape)
    with ag.record():
        attempt(lambda: z.__iadd__(x))
        keep("z", z)


def _partial_write_of_recorded_value(nd, ag, x, keep, attempt, key, value):
    z = nd.ones(x.shape)
    with ag.record():
        attempt(lambda: z.__setitem__(key(nd), value(x)))
        keep("z", z)


@scenario()
def slice_write_of_recorded_value_into_plain_array(nd, ag, x, keep, attempt):
    _partial_write_of_recorded_value(nd, ag, x, keep, attempt, lambda nd: slice(1, 3),
                                     lambda x: x[0:2] * 2)


@scenario()
def int_write_of_recorded_value_into_plain_array(nd, ag, x, keep, attempt):
    _partial_write_of_recorded_value(nd, ag, x, keep, attempt, lambda nd: 0,
                                     lambda x: x[1] * 2)


@scenario()
def index_array_write_of_recorded_value_into_plain_array(nd, ag, x, keep, attempt):
    _partial_write_of_recorded_value(nd, ag, x, keep, attempt, lambda nd: nd.array([0, 2]),
                                     lambda x: x[0:2] * 2)


# ---------------------------------------------------------------- allowed inside record
@scenario()
def writes_on_plain_arrays_inside_record(nd, ag, x, keep, attempt):
    z = nd.ones(x.shape)
    q = nd.ones(x.shape)
    with ag.record():
        z[:] = 5
        z[1] = 2
        z[1:3] += 1
        z += q
        z -= 3
        z *= 2
        z /= 4
        w = q * 2
        w[:] = 7
        w += 1
    keep("z", z)
    keep("w", w)


@scenario()
def writes_after_backward_freed_the_graph(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * 2
        y.backward()
        y[:] = 5
        y += 1
    keep("y", y)
    with ag.record():
        y[0] = 0
    keep("y2", y)


@scenario()
def writes_under_pause_inside_record(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * x
        with ag.pause():
            y[:] = 5
            y += 1
    keep("y", y)
    y.backward()
    keep("x_grad", x.grad)


@scenario()
def write_on_gradient_buffer_inside_record(nd, ag, x, keep, attempt):
    with ag.record():
        x.grad[:] = 3
        x.grad[0] = 1
    keep("x_grad", x.grad)


@scenario()
def whole_write_of_recorded_value_records_the_copy(nd, ag, x, keep, attempt):
    z = nd.zeros(x.shape)
    with ag.record():
        z[:] = x * 2
        w = z * 3
    keep("z", z)
    w.backward()
    keep("x_grad", x.grad)


@scenario()
def whole_write_of_recorded_value_broadcasts_and_casts(nd, ag, x, keep, attempt):
    z = nd.zeros((2,) + x.shape, dtype="float64")
    with ag.record():
        z[:] = x * 2
        w = z * 3
    keep("z", z)
    w.backward()
    keep("x_grad", x.grad)


@scenario()
def ellipsis_write_of_recorded_value_records_the_copy(nd, ag, x, keep, attempt):
    z = nd.zeros(x.shape)
    with ag.record():
        z[...] = x * x
        w = z * 3
    w.backward()
    keep("x_grad", x.grad)


@scenario()
def copyto_of_recorded_value_records_the_copy(nd, ag, x, keep, attempt):
    z = nd.zeros(x.shape)
    with ag.record():
        (x * x).copyto(z)
        w = z * 3
    keep("z", z)
    w.backward()
    keep("x_grad", x.grad)


@scenario()
def self_assignment_inside_record_is_a_no_op(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * 2
        y[:] = y
        x[:] = x
    y.backward()
    keep("x_grad", x.grad)


@scenario()
def views_of_plain_arrays_write_through_inside_record(nd, ag, x, keep, attempt):
    z = nd.ones(x.shape)
    with ag.record():
        z[1:3][:] = 0
        v = z[2]
        v += 5
        u = z[0:3][1:2]
        u[:] = -1
    keep("z", z)
    keep("v", v)


@scenario()
def views_taken_outside_record_are_writable_inside(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * 2
    v = y[1:3]
    u = x[0:2]
    with ag.record():
        v[:] = 0
        u[:] = 9
    keep("y", y)
    keep("x", x)


# ---------------------------------------------------------------- views and gradients
@scenario()
def slice_view_taken_inside_record_passes_gradients(nd, ag, x, keep, attempt):
    with ag.record():
        y = x[1:3]
        z = (x[0:2] * 3 + x[1:4][1:3] * 5)
    keep("y", y)
    y.backward(retain_graph=False)
    keep("x_grad_y", x.grad)
    z.backward()
    keep("x_grad_z", x.grad)


@scenario()
def int_index_view_taken_inside_record_passes_gradients(nd, ag, x, keep, attempt):
    with ag.record():
        y = x[1] * 3 + x[-1] * x[0]
    keep("y", y)
    y.backward()
    keep("x_grad", x.grad)


@scenario()
def slice_view_taken_inside_record_shares_memory(nd, ag, x, keep, attempt):
    with ag.record():
        y = x[1:3]
    x[:] = 0
    keep("y", y)


# ---------------------------------------------------------------- writes outside record
@scenario()
def writes_on_recorded_output_outside_record_keep_its_graph(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * x
    y[:] = 5
    y += 1
    y[1:3] += 1
    y[0] = 2
    keep("y", y)
    y.backward()
    keep("x_grad", x.grad)


@scenario()
def write_through_view_of_recorded_output_outside_record(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * 2
    v = y[1:3]
    v[:] = 0
    keep("y", y)
    y.backward()
    keep("x_grad", x.grad)


@scenario()
def write_between_retained_backwards(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * 2
    y.backward(retain_graph=True)
    y[:] = 1
    y.backward()
    keep("x_grad", x.grad)
    keep("y", y)


@scenario("mxnet_reads_mutated_buffer")
def variable_written_outside_record_before_backward(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * x
    x[:] = 0
    y.backward()
    keep("x_grad", x.grad)


@scenario("mxnet_reads_mutated_buffer")
def variable_incremented_outside_record_before_backward(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * x
    x += 1
    y.backward()
    keep("x_grad", x.grad)


@scenario("mxnet_reads_mutated_buffer")
def saved_output_written_outside_record_before_backward(nd, ag, x, keep, attempt):
    with ag.record():
        y = nd.exp(x)
    y[:] = 5
    y.backward()
    keep("x_grad", x.grad)


@scenario("mxnet_reads_mutated_buffer")
def intermediate_written_outside_record_before_backward(nd, ag, x, keep, attempt):
    with ag.record():
        y = x * 2
        z = y * y
    y[:] = 0
    z.backward()
    keep("x_grad", x.grad)


@scenario("mxnet_reads_mutated_buffer")
def plain_input_written_outside_record_before_backward(nd, ag, x, keep, attempt):
    z = nd.ones(x.shape)
    with ag.record():
        w = z * x
    z[:] = 0
    w.backward()
    keep("x_grad", x.grad)


@scenario("mxnet_marks_plain_inputs")
def plain_input_of_recorded_op_written_inside_record(nd, ag, x, keep, attempt):
    z = nd.ones(x.shape)
    with ag.record():
        w = z * x
        attempt(lambda: z.__setitem__(slice(None), 0))
    with ag.record():
        attempt(lambda: z.__setitem__(0, 2))
    keep("z", z)
    w.backward()
    keep("x_grad", x.grad)


# ---------------------------------------------------------------- runner
def _message(err: Exception) -> str:
    text = str(err)
    if "MXNetError: " in text:
        text = text.split("MXNetError: ", 1)[1]
    if text.startswith("Check failed:"):
        text = text.split("): ", 1)[1]
    return text.strip()


def run(mx, name: str, shape: tuple, seed: int) -> dict:
    """Run one scenario with ``mx`` (mxnet or hybrid); a JSON-ready outcome."""
    nd, ag = mx.nd, mx.autograd
    rng = np.random.RandomState(seed)
    x = nd.array(rng.uniform(0.5, 2.0, size=shape))
    x.attach_grad()
    values: dict[str, list] = {}
    errors: list[dict] = []

    def keep(key, arr):
        values[key] = np.asarray(arr.asnumpy(), dtype=np.float64).tolist()

    def attempt(fn):
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - recorded, compared by the test
            errors.append({"type": type(err).__name__, "message": _message(err)})
        else:
            errors.append(None)

    outcome: dict = {"values": values, "errors": errors}
    try:
        SCENARIOS[name](nd, ag, x, keep, attempt)
    except Exception as err:  # noqa: BLE001
        outcome["raised"] = {"type": type(err).__name__, "message": _message(err)}
    return outcome


def main() -> None:
    import mxnet as mx

    cases = []
    for name in SCENARIOS:
        for k, shape in enumerate(SHAPES):
            seed = 1000 + 17 * k + len(name)
            cases.append({"scenario": name, "shape": list(shape), "seed": seed,
                          "flags": FLAGS[name], **run(mx, name, shape, seed)})
    OUT.write_text(json.dumps({"mxnet_version": mx.__version__, "cases": cases}, indent=1)
                   + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
