"""kforge.numpy -- the names of pykeops.numpy, so `from pykeops.numpy import LazyTensor`
becomes `from kforge.numpy import LazyTensor` (and .cluster, .utils likewise)."""
from ..genred import Genred
from ..lazy import LazyTensor
from . import cluster, utils

__all__ = ["Genred", "LazyTensor", "cluster", "utils"]
