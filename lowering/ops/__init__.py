"""Every registered operator, one module per family. Importing this package registers them."""

from . import conv, creation, ctc, elemwise, indexing, nn, norm, reduce, rnn, shape  # noqa: F401

try:  # the optimizer update ops are being added in their own module
    from . import optimizer  # noqa: F401
except ImportError:  # pragma: no cover
    pass
