"""The block-sparse helpers against NumPy versions of pykeops.numpy.cluster's definitions."""
import numpy as np
import pytest

import kforge


def np_grid_labels(x, eps):
    cells = np.floor((x - x.min(0)) / eps).astype(np.int64)
    _, labels = np.unique(cells, axis=0, return_inverse=True)  # lexicographic order
    return labels.ravel()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_cluster(rng, dtype):
    x = rng.random((500, 3)).astype(dtype)
    assert np.array_equal(kforge.grid_cluster(x, 0.2), np_grid_labels(x.astype(np.float64), 0.2))


def test_cluster_ranges_centroids_and_sort(rng):
    x = rng.random((300, 2))
    labels = kforge.grid_cluster(x, 0.25)
    C = labels.max() + 1
    ranges, cent, w = kforge.cluster_ranges_centroids(x, labels)
    counts = np.bincount(labels, minlength=C)
    ends = np.cumsum(counts)
    assert np.array_equal(ranges, np.stack([ends - counts, ends], 1))
    assert np.allclose(cent, np.stack([x[labels == c].mean(0) for c in range(C)]))
    assert np.array_equal(w, counts.astype(float))
    wts = rng.random(300)
    _, cw, ww = kforge.cluster_ranges_centroids(x, labels, weights=wts)
    assert np.allclose(ww, np.bincount(labels, wts, C))
    assert np.allclose(cw, np.stack([(x[labels == c] * wts[labels == c, None]).sum(0) / ww[c]
                                     for c in range(C)]))
    xs, ls = kforge.sort_clusters(x, labels)
    order = np.argsort(labels, kind="stable")
    assert np.array_equal(xs, x[order]) and np.array_equal(ls, labels[order])
    (xs2, ws2), _ = kforge.sort_clusters((x, wts), labels)
    assert np.array_equal(xs2, x[order]) and np.array_equal(ws2, wts[order])
    for c in range(C):
        assert np.all(ls[ranges[c, 0]:ranges[c, 1]] == c)


def test_from_matrix_covers_exactly_the_kept_blocks(rng):
    ranges_i = np.array([[0, 3], [3, 7], [7, 10]])
    ranges_j = np.array([[0, 2], [2, 5], [5, 6], [6, 9]])
    keep = rng.random((3, 4)) < 0.5
    keep[0, 1:3] = True  # touching kept ranges: merged, still the same pairs
    ri, si, rj, rj2, sj, ri2 = kforge.from_matrix(ranges_i, ranges_j, keep)
    want = np.zeros((10, 9), bool)
    for a in range(3):
        for b in range(4):
            if keep[a, b]:
                want[slice(*ranges_i[a]), slice(*ranges_j[b])] = True
    got = np.zeros_like(want)
    for c in range(len(ri)):
        for s, e in rj[(si[c - 1] if c else 0):si[c]]:
            got[ri[c, 0]:ri[c, 1], s:e] = True
    assert np.array_equal(got, want)
    got_t = np.zeros_like(want)  # the mirror triple, for axis 0
    for c in range(len(rj2)):
        for s, e in ri2[(sj[c - 1] if c else 0):sj[c]]:
            got_t[s:e, rj2[c, 0]:rj2[c, 1]] = True
    assert np.array_equal(got_t, want)
    sw = kforge.swap_axes((ri, si, rj, rj2, sj, ri2))
    assert sw[0] is rj2 and sw[3] is ri


def test_cluster_errors(rng):
    with pytest.raises(kforge.ArgumentError, match="eps"):
        kforge.grid_cluster(rng.random((10, 2)), 0.0)
    with pytest.raises(kforge.ArgumentError, match="point 3"):
        x = rng.random((10, 2))
        x[3, 1] = np.nan
        kforge.grid_cluster(x, 0.1)
    with pytest.raises(ValueError, match="keep must have shape"):
        kforge.from_matrix(np.array([[0, 1]]), np.array([[0, 1]]), np.ones((2, 1)))
    with pytest.raises(ValueError, match="labels must have shape"):
        kforge.cluster_ranges_centroids(rng.random((10, 2)), np.zeros(9, np.int64))
