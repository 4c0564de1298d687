"""kforge -- reductions over all pairs of two point clouds, from Python.

The C library libkforge.so.0 through ctypes (no compiler at install time):
Genred and LazyTensor as in pykeops.numpy, the block-sparse helpers of
pykeops.numpy.cluster, and kforge's own eigensolver and graph Laplacians.
docs/python.md is the guide; the library is found as KFORGE_LIB names it, else
where the dynamic loader or `make install` put it.
"""
from . import _lib
from .errors import (ArgumentError, FormulaError, KforgeError, NoConvergence,
                     UnsupportedError)
from .genred import Genred, Kernel
from .lazy import LazyTensor
from .cluster import cluster_ranges_centroids, from_matrix, grid_cluster, sort_clusters, swap_axes
from .solvers import Operator, eigsh, gen, kernel_operator, laplacian
from . import config, utils

__version__ = "0.1.0"
library_version = _lib.version  # the linked libkforge's (kf_version)
library_path = _lib.path


def cache_dir():
    """(directory, mode) of the kernel cache this process shares with the kforge command:
    mode 1 read-write, 0 read-only, -1 unusable."""
    import ctypes
    d, m = ctypes.c_char_p(), ctypes.c_int()
    with _lib.LOCK:
        _lib.check(_lib.lib.kf_cache_dir(_lib.ctx(), ctypes.byref(d), ctypes.byref(m)))
        return (d.value.decode() if d.value else None), m.value


__all__ = ["Genred", "LazyTensor", "Kernel", "grid_cluster", "cluster_ranges_centroids",
           "sort_clusters", "from_matrix", "swap_axes", "eigsh", "laplacian", "kernel_operator",
           "Operator", "gen", "cache_dir", "KforgeError", "FormulaError", "ArgumentError",
           "UnsupportedError", "NoConvergence", "config", "utils"]
