"""Optimizers (``mx.optimizer``): every optimizer of MXNet 1.9, on JAX.

``mx.optimizer.create('sgd', learning_rate=0.1)`` (names are case-insensitive),
``mx.optimizer.register`` for new optimizers, ``Updater``/``get_updater`` for the
kvstore-style eager updater. See :mod:`hybrid.optimizer.optimizer` for the fused
interface ``gluon.Trainer`` uses (``create_state_arrays``, ``prepare_update``,
``fused_step``).
"""

from . import contrib, optimizer, states
from .adam import FTML, LAMB, Adam, Adamax, Nadam
from .contrib import GroupAdaGrad
from .optimizer import Optimizer, Updater, create, get_updater, register
from .others import DCASGD, SGLD, Ftrl, Test
from .rmsprop import AdaDelta, AdaGrad, RMSProp
from .sgd import LARS, LBSGD, NAG, SGD, Signum, ccSGD

# MXNet 1.9 defines every optimizer in mxnet/optimizer/optimizer.py; keep that path working.
for _cls in (SGD, ccSGD, NAG, Signum, LARS, LBSGD, Adam, Adamax, Nadam, LAMB, FTML, RMSProp,
             AdaGrad, AdaDelta, Ftrl, DCASGD, SGLD, Test):
    setattr(optimizer, _cls.__name__, _cls)
del _cls

__all__ = [
    "AdaDelta", "AdaGrad", "Adam", "Adamax", "DCASGD", "FTML", "Ftrl", "GroupAdaGrad", "LAMB",
    "LARS", "LBSGD", "NAG", "Nadam", "Optimizer", "RMSProp", "SGD", "SGLD", "Signum", "Test",
    "Updater", "ccSGD", "contrib", "create", "get_updater", "optimizer", "register", "states",
]
