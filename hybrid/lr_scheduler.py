"""Learning-rate schedules (``mx.lr_scheduler``), with MXNet 1.9 semantics.

A scheduler is called as ``sched(num_update)`` and returns the learning rate for
that update count.  The schedulers are *stateful*: ``FactorScheduler`` and
``MultiFactorScheduler`` decay ``base_lr`` in place as ``num_update`` grows, and
``PolyScheduler``/``CosineScheduler`` store the last computed rate in
``base_lr``.  They must therefore be called with non-decreasing ``num_update``,
which is how the optimizer calls them.  The optimizer overwrites
``scheduler.base_lr`` with its own ``learning_rate`` when both are given, as
MXNet does; the warmup target (``warmup_final_lr``) and the decay start of the
polynomial and cosine schedules (``base_lr_orig``) are fixed at construction.
"""

from __future__ import annotations

import logging
from math import cos, pi

__all__ = [
    "LRScheduler",
    "FactorScheduler",
    "MultiFactorScheduler",
    "PolyScheduler",
    "CosineScheduler",
]


class LRScheduler:
    """Base class of learning-rate schedulers.

    Parameters
    ----------
    base_lr : float
        The initial learning rate (the rate reached at the end of the warmup).
    warmup_steps : int
        Number of updates, ``0 <= num_update < warmup_steps``, during which the warmup
        rate is returned instead of the schedule.  Must be an ``int``.
    warmup_begin_lr : float
        The rate at ``num_update == 0``; must not exceed ``base_lr``.
    warmup_mode : {'linear', 'constant'}
        ``'linear'`` rises as ``begin + (base_lr - begin) * num_update / warmup_steps``;
        ``'constant'`` stays at ``warmup_begin_lr`` for the whole warmup.
    """

    def __init__(
        self,
        base_lr: float = 0.01,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        self.base_lr = base_lr
        assert isinstance(warmup_steps, int)
        self.warmup_steps = warmup_steps

        self.warmup_final_lr = base_lr
        self.warmup_begin_lr = warmup_begin_lr
        if self.warmup_begin_lr > self.warmup_final_lr:
            raise ValueError("Base lr has to be higher than warmup_begin_lr")
        if self.warmup_steps < 0:
            raise ValueError("Warmup steps has to be positive or 0")
        if warmup_mode not in ("linear", "constant"):
            raise ValueError("Supports only linear and constant modes of warmup")
        self.warmup_mode = warmup_mode

    def get_warmup_lr(self, num_update: int) -> float:
        """Return the warmup rate for ``num_update`` (which must be ``< warmup_steps``)."""
        assert num_update < self.warmup_steps
        if self.warmup_mode == "linear":
            increase = (
                (self.warmup_final_lr - self.warmup_begin_lr)
                * float(num_update)
                / float(self.warmup_steps)
            )
            return self.warmup_begin_lr + increase
        if self.warmup_mode == "constant":
            return self.warmup_begin_lr
        raise ValueError(f"Invalid warmup mode {self.warmup_mode}")

    def __call__(self, num_update: int) -> float:
        """Return the learning rate for ``num_update``, the largest update count of any weight."""
        raise NotImplementedError("must override this")


class FactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` every ``step`` updates.

    Roughly ``base_lr * factor ** floor(num_update / step)``, but stateful and
    strict: the rate changes once ``num_update > count + step`` (strictly
    greater), after which ``count`` advances by ``step``.  So with ``step=3``
    updates 0..3 get ``base_lr`` and update 4 the first decayed rate.  The rate
    never falls below ``stop_factor_lr``.  Warmup updates (``num_update <
    warmup_steps``) return the warmup rate and do not advance the state.

    Raises ``ValueError`` if ``step < 1`` or ``factor > 1``.
    """

    def __init__(
        self,
        step: int,
        factor: float = 1,
        stop_factor_lr: float = 1e-8,
        base_lr: float = 0.01,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if step < 1:
            raise ValueError("Schedule step must be greater or equal than 1 round")
        if factor > 1.0:
            raise ValueError("Factor must be no more than 1 to make lr reduce")
        self.step = step
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr
        self.count = 0

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        # A while loop (not an if) so that a jump in num_update, e.g. when resuming
        # training, applies every missed decay.
        while num_update > self.count + self.step:
            self.count += self.step
            self.base_lr *= self.factor
            if self.base_lr < self.stop_factor_lr:
                self.base_lr = self.stop_factor_lr
                logging.info(
                    "Update[%d]: now learning rate arrived at %0.5e, will not change in the future",
                    num_update,
                    self.base_lr,
                )
            else:
                logging.info("Update[%d]: Change learning rate to %0.5e", num_update, self.base_lr)
        return self.base_lr


class MultiFactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` each time ``num_update`` passes a listed step.

    ``step`` must be a ``list`` of strictly increasing ints ``>= 1``.  The k-th
    decay happens once ``num_update > step[k]`` (strictly greater), so the rate
    is ``base_lr * factor ** (number of steps s with num_update > s)``.  Warmup
    updates return the warmup rate and do not advance the state.
    """

    def __init__(
        self,
        step: list[int],
        factor: float = 1,
        base_lr: float = 0.01,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        assert isinstance(step, list) and len(step) >= 1
        for i, _step in enumerate(step):
            if i != 0 and step[i] <= step[i - 1]:
                raise ValueError("Schedule step must be an increasing integer list")
            if _step < 1:
                raise ValueError("Schedule step must be greater or equal than 1 round")
        if factor > 1.0:
            raise ValueError("Factor must be no more than 1 to make lr reduce")
        self.step = step
        self.cur_step_ind = 0
        self.factor = factor
        self.count = 0

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        while self.cur_step_ind <= len(self.step) - 1:
            if num_update > self.step[self.cur_step_ind]:
                self.count = self.step[self.cur_step_ind]
                self.cur_step_ind += 1
                self.base_lr *= self.factor
                logging.info("Update[%d]: Change learning rate to %0.5e", num_update, self.base_lr)
            else:
                return self.base_lr
        return self.base_lr


class PolyScheduler(LRScheduler):
    """Polynomial decay from ``base_lr`` to ``final_lr`` over ``max_update`` updates.

    After the warmup, for ``warmup_steps <= num_update <= max_update``::

        final_lr + (base_lr - final_lr) * (1 - (num_update - warmup_steps) / max_steps) ** pwr

    with ``max_steps = max_update - warmup_steps``; past ``max_update`` the last
    value (``final_lr``) is kept.  ``max_update`` must be an ``int >= 1``.
    """

    def __init__(
        self,
        max_update: int,
        base_lr: float = 0.01,
        pwr: float = 2,
        final_lr: float = 0,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        assert isinstance(max_update, int)
        if max_update < 1:
            raise ValueError("maximum number of updates must be strictly positive")
        self.power = pwr
        self.base_lr_orig = self.base_lr
        self.max_update = max_update
        self.final_lr = final_lr
        self.max_steps = self.max_update - self.warmup_steps

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update <= self.max_update:
            progress = float(num_update - self.warmup_steps) / float(self.max_steps)
            self.base_lr = self.final_lr + (self.base_lr_orig - self.final_lr) * pow(
                1 - progress, self.power
            )
        return self.base_lr


class CosineScheduler(LRScheduler):
    """Cosine decay from ``base_lr`` to ``final_lr`` over ``max_update`` updates.

    After the warmup, for ``warmup_steps <= num_update <= max_update``::

        final_lr + (base_lr - final_lr) * (1 + cos(pi * t / max_steps)) / 2

    where ``t = num_update - warmup_steps`` and ``max_steps = max_update - warmup_steps``;
    past ``max_update`` the last value (``final_lr``) is kept.  ``max_update`` must be an
    ``int >= 1``.
    """

    def __init__(
        self,
        max_update: int,
        base_lr: float = 0.01,
        final_lr: float = 0,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        assert isinstance(max_update, int)
        if max_update < 1:
            raise ValueError("maximum number of updates must be strictly positive")
        self.base_lr_orig = base_lr
        self.max_update = max_update
        self.final_lr = final_lr
        self.max_steps = self.max_update - self.warmup_steps

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update <= self.max_update:
            self.base_lr = (
                self.final_lr
                + (self.base_lr_orig - self.final_lr)
                * (1 + cos(pi * (num_update - self.warmup_steps) / self.max_steps))
                / 2
            )
        return self.base_lr
