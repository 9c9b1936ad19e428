"""``gluon.contrib.data.sampler`` (the class itself lives in ``gluon.data.sampler``)."""

from ...data.sampler import IntervalSampler

__all__ = ["IntervalSampler"]
