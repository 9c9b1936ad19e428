"""Learning-rate schedulers against MXNet 1.9.1 reference schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hybrid import lr_scheduler
from tests.golden_cases import arrays, cases

LR_CASES = cases("lr_scheduler")


def test_every_lr_scheduler_golden_case_is_collected():
    assert len(LR_CASES) == 8


@pytest.mark.parametrize("entry", LR_CASES, ids=[c["name"] for c in LR_CASES])
def test_schedule_matches_mxnet_when_called_in_increasing_order(entry):
    cls = getattr(lr_scheduler, entry["api"].split(".")[-1])
    data = arrays(entry["name"])
    sched = cls(**entry["kwargs"])
    got = np.array([sched(int(n)) for n in data["num_update"]], dtype=np.float64)
    np.testing.assert_allclose(got, data["lr"], rtol=entry["rtol"], atol=entry["atol"])


def test_factor_decays_only_when_num_update_strictly_exceeds_count_plus_step():
    sched = lr_scheduler.FactorScheduler(step=2, factor=0.5, base_lr=1.0)
    assert [sched(n) for n in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert sched.count == 4


def test_factor_catches_up_on_a_jump_in_num_update():
    sched = lr_scheduler.FactorScheduler(step=10, factor=0.1, base_lr=1.0)
    assert sched(35) == pytest.approx(1e-3)
    assert sched.count == 30


def test_factor_is_stateful_and_does_not_recover_when_called_with_smaller_num_update():
    sched = lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    assert sched(5) == pytest.approx(1 / 16)
    assert sched(0) == pytest.approx(1 / 16)


def test_factor_stops_at_stop_factor_lr():
    sched = lr_scheduler.FactorScheduler(step=1, factor=0.1, stop_factor_lr=0.05, base_lr=1.0)
    assert sched(3) == 0.05
    assert sched(100) == 0.05


def test_optimizer_style_base_lr_override_is_used_by_factor_scheduler():
    sched = lr_scheduler.FactorScheduler(step=1, factor=0.5)
    sched.base_lr = 0.2  # what Optimizer(learning_rate=0.2, lr_scheduler=sched) does
    assert sched(0) == 0.2
    assert sched(2) == pytest.approx(0.1)


def test_linear_warmup_rises_from_begin_to_base_lr():
    sched = lr_scheduler.PolyScheduler(
        max_update=100, base_lr=1.0, warmup_steps=4, warmup_begin_lr=0.2
    )
    assert [sched(n) for n in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert sched(4) == pytest.approx(1.0)


def test_constant_warmup_holds_begin_lr():
    sched = lr_scheduler.CosineScheduler(
        max_update=10, base_lr=1.0, warmup_steps=3, warmup_begin_lr=0.1, warmup_mode="constant"
    )
    assert [sched(n) for n in range(3)] == [0.1, 0.1, 0.1]
    assert sched(3) == pytest.approx(1.0)


def test_warmup_does_not_advance_factor_state():
    sched = lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=1.0, warmup_steps=3)
    for n in range(3):
        sched(n)
    assert sched.count == 0
    assert sched(3) == pytest.approx(0.25)


def test_multifactor_decays_once_per_passed_step():
    sched = lr_scheduler.MultiFactorScheduler(step=[2, 5], factor=0.1, base_lr=1.0)
    got = [sched(n) for n in range(8)]
    assert got == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01])
    assert sched.cur_step_ind == 2


def test_poly_and_cosine_reach_final_lr_and_stay_there():
    poly = lr_scheduler.PolyScheduler(max_update=4, base_lr=1.0, pwr=1, final_lr=0.1)
    cosine = lr_scheduler.CosineScheduler(max_update=4, base_lr=1.0, final_lr=0.1)
    assert [poly(n) for n in (0, 2, 4, 9)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    expected_mid = 0.1 + 0.9 * (1 + math.cos(math.pi / 2)) / 2
    assert [cosine(n) for n in (0, 2, 4, 9)] == pytest.approx([1.0, expected_mid, 0.1, 0.1])


def test_base_class_call_is_abstract():
    with pytest.raises(NotImplementedError):
        lr_scheduler.LRScheduler()(0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: lr_scheduler.FactorScheduler(step=0),
        lambda: lr_scheduler.FactorScheduler(step=1, factor=1.5),
        lambda: lr_scheduler.MultiFactorScheduler(step=[3, 3]),
        lambda: lr_scheduler.MultiFactorScheduler(step=[0, 3]),
        lambda: lr_scheduler.MultiFactorScheduler(step=[3], factor=2.0),
        lambda: lr_scheduler.PolyScheduler(max_update=0),
        lambda: lr_scheduler.CosineScheduler(max_update=0),
        lambda: lr_scheduler.LRScheduler(base_lr=0.1, warmup_begin_lr=0.2),
        lambda: lr_scheduler.LRScheduler(warmup_steps=-1),
        lambda: lr_scheduler.LRScheduler(warmup_mode="cosine"),
    ],
)
def test_invalid_arguments_raise_value_error(make):
    with pytest.raises(ValueError):
        make()


def test_non_int_warmup_steps_and_max_update_are_rejected():
    with pytest.raises(AssertionError):
        lr_scheduler.LRScheduler(warmup_steps=2.0)
    with pytest.raises(AssertionError):
        lr_scheduler.PolyScheduler(max_update=10.0)
    with pytest.raises(AssertionError):
        lr_scheduler.MultiFactorScheduler(step=(1, 2))
