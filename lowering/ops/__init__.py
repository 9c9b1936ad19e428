"""Every registered operator, one module per family. Importing this package registers them."""

from . import creation, elemwise, indexing, nn, reduce, shape  # noqa: F401

try:  # the optimizer update ops are being added in their own module
    from . import optimizer  # noqa: F401
except ImportError:  # pragma: no cover
    pass
