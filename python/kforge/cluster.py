"""cluster.py -- pykeops.numpy.cluster's helpers for block-sparse reductions, on the C ones.

grid_cluster, cluster_ranges_centroids, sort_clusters, from_matrix and
swap_axes keep pykeops' signatures and array layouts (docs/blocksparse.md):
labels are int64, ranges (C, 2) int64 half-open [start, end), and the ranges
tuple is (ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i).
"""
import ctypes

import numpy as np

from . import _lib
from ._lib import lib, LOCK
from .genred import DTYPES, float_dtype


def _points(x, what="x"):
    x = np.asarray(x)
    float_dtype(x.dtype)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2:
        raise ValueError("kforge: %s must be (n, d) points; got shape %s" % (what, x.shape))
    return np.ascontiguousarray(x)


def _labels(labels, n):
    lab = np.ascontiguousarray(labels, dtype=np.int64)
    if lab.shape != (n,):
        raise ValueError("kforge: labels must have shape (%d,); got %s" % (n, lab.shape))
    return lab


def grid_cluster(x, eps):
    """Labels (n,) int64 of the cubic cells of side eps holding the points x (n, d),
    numbered 0..C-1 in lexicographic order of the cells."""
    x = _points(x)
    n, d = x.shape
    labels = np.empty(n, np.int64)
    nc = ctypes.c_int64()
    with LOCK:
        _lib.check(lib.kf_grid_cluster(_lib.ctx(), DTYPES[x.dtype], x.ctypes.data, n, d,
                                       float(eps), labels.ctypes.data, ctypes.byref(nc)))
    return labels


def _sort(labels, nclusters):
    n = len(labels)
    perm = np.empty(n, np.int64)
    with LOCK:
        _lib.check(lib.kf_sort_clusters(_lib.ctx(), labels.ctypes.data, n, nclusters,
                                        perm.ctypes.data, None))
    return perm


def _permute(a, perm):
    a = np.ascontiguousarray(a)
    out = np.empty_like(a)
    rowbytes = a.itemsize * (a.size // max(1, len(a)))
    with LOCK:
        _lib.check(lib.kf_permute_rows(_lib.ctx(), a.ctypes.data, len(a), rowbytes,
                                       perm.ctypes.data, out.ctypes.data))
    return out


def _nclusters(lab):
    if len(lab) and lab.min() < 0:
        raise ValueError("kforge: labels must be >= 0; found %d" % lab.min())
    return int(lab.max()) + 1 if len(lab) else 0


def cluster_ranges_centroids(x, labels, weights=None):
    """(ranges (C, 2), centroids (C, d), weights (C,)) of the clusters 0..C-1 (C = the
    largest label + 1): the slice each cluster will hold once the points are sorted by
    label (sort_clusters), the (weighted) mean of its points, and its total weight (its
    point count without weights)."""
    x = _points(x)
    n, d = x.shape
    lab = _labels(labels, n)
    nc = _nclusters(lab)
    perm = _sort(lab, nc)
    xs, ls = _permute(x, perm), lab[perm]
    w = None
    if weights is not None:
        w = np.ascontiguousarray(weights, dtype=x.dtype).reshape(-1)
        if len(w) != n:
            raise ValueError("kforge: weights must have %d values; got %d" % (n, len(w)))
        w = _permute(w, perm)
    ranges = np.empty((nc, 2), np.int64)
    cent = np.empty((nc, d), x.dtype)
    wc = np.empty(nc, x.dtype)
    with LOCK:
        _lib.check(lib.kf_cluster_ranges(_lib.ctx(), DTYPES[x.dtype], xs.ctypes.data, n, d,
                                         ls.ctypes.data, nc, w.ctypes.data if w is not None else None,
                                         ranges.ctypes.data, cent.ctypes.data, wc.ctypes.data))
    return ranges, cent, wc


def sort_clusters(x, labels):
    """(x sorted by label, labels sorted), stably; x may be a tuple or list of arrays with
    one row per label, and then a tuple of them comes back."""
    lab = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
    perm = _sort(lab, _nclusters(lab))
    if isinstance(x, (tuple, list)):
        for a in x:
            if len(a) != len(lab):
                raise ValueError("kforge: sort_clusters: %d rows for %d labels" % (len(a), len(lab)))
        return tuple(_permute(a, perm) for a in x), lab[perm]
    if len(x) != len(lab):
        raise ValueError("kforge: sort_clusters: %d rows for %d labels" % (len(x), len(lab)))
    return _permute(x, perm), lab[perm]


def _copy(ptr, n, cols):
    if n == 0:
        return np.zeros((0, 2) if cols == 2 else 0, np.int64)
    a = np.ctypeslib.as_array(ptr, shape=(n * cols,)).copy()
    return a.reshape(n, 2) if cols == 2 else a


def from_matrix(ranges_i, ranges_j, keep):
    """The ranges tuple (ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i)
    of the boolean cluster mask keep (nci, ncj): the block-sparsity pattern to give to
    Genred(ranges=...) or LazyTensor.ranges. Consecutive kept j-clusters whose ranges touch
    are merged into one reduced range, so the lists may be shorter than pykeops' for the
    same pattern."""
    ri = np.ascontiguousarray(ranges_i, dtype=np.int64)
    rj = np.ascontiguousarray(ranges_j, dtype=np.int64)
    keep = np.asarray(keep)
    if ri.ndim != 2 or ri.shape[1] != 2 or rj.ndim != 2 or rj.shape[1] != 2:
        raise ValueError("kforge: from_matrix: ranges must be (n, 2) arrays")
    if keep.shape != (len(ri), len(rj)):
        raise ValueError("kforge: from_matrix: keep must have shape (%d, %d); got %s"
                         % (len(ri), len(rj), keep.shape))
    mask = np.ascontiguousarray(keep != 0, dtype=np.uint8)
    with LOCK:
        b = lib.kf_blocks_from_mask(_lib.ctx(), ri.ctypes.data, len(ri), rj.ctypes.data, len(rj),
                                    mask.ctypes.data)
        if not b:
            raise _lib.fail(lib.kf_status_of(_lib.ctx()))
        try:
            v = _lib.Ranges()
            lib.kf_blocks_view(b, ctypes.byref(v))
            return (_copy(v.ranges_i, v.nci, 2), _copy(v.slices_i, v.nci, 1),
                    _copy(v.redranges_j, v.nredj, 2), _copy(v.ranges_j, v.ncj, 2),
                    _copy(v.slices_j, v.ncj, 1), _copy(v.redranges_i, v.nredi, 2))
        finally:
            lib.kf_blocks_free(b)


def swap_axes(ranges):
    """The pattern of the transposed problem: the two triples swapped."""
    ri, si, rj_red, rj, sj, ri_red = ranges
    return rj, sj, ri_red, ri, si, rj_red
