"""``gluon.contrib.data``: extra samplers (MXNet 1.9 ``IntervalSampler``)."""

from . import sampler
from .sampler import IntervalSampler

__all__ = ["sampler", "IntervalSampler"]
