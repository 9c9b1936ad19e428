"""``mx.io``: DataDesc, DataBatch and the Python data iterators of MXNet 1.9."""

from . import io
from .io import DataBatch, DataDesc, DataIter, NDArrayIter, PrefetchingIter, ResizeIter

__all__ = ["io", "DataDesc", "DataBatch", "DataIter", "NDArrayIter", "ResizeIter",
           "PrefetchingIter"]
