"""Every registered operator, one module per family. Importing this package registers them."""

from . import (  # noqa: F401
    conv,
    creation,
    ctc,
    elemwise,
    indexing,
    nn,
    norm,
    optimizer,
    reduce,
    rnn,
    shape,
)
