"""KeOps' tutorial "Block-sparse reductions" (../shared/reference/tutorial-block-sparse.txt)
with kforge: grid clustering, a cluster mask, and a Gaussian convolution computed
dense and block-sparse, compared in time and value.

What differs from the tutorial: the import lines; the sizes, which the
environment variable KFORGE_EXAMPLE_N sets when it is set (M = N = its value; the
tests run the script small); and plt.show(), which saves each figure as a PNG file
in $KFORGE_EXAMPLE_OUT (default: the current directory).
"""
import os
import time

import matplotlib

matplotlib.use("Agg")  # no display: the figures go to PNG files
import numpy as np
from matplotlib import pyplot as plt
from kforge.numpy import LazyTensor
from kforge.numpy.utils import IsGpuAvailable

OUT = os.environ.get("KFORGE_EXAMPLE_OUT", ".")
SIZE = os.environ.get("KFORGE_EXAMPLE_N")
figures = iter(range(1, 100))


def show():
    for n in plt.get_fignums():
        path = os.path.join(OUT, "block_sparse_%d.png" % next(figures))
        plt.figure(n).savefig(path)
        print("saved", path)
    plt.close("all")


use_cuda = IsGpuAvailable()
dtype = "float32"

M, N = (int(SIZE), int(SIZE)) if SIZE else ((5000, 5000) if use_cuda else (2000, 2000))
t = np.linspace(0, 2 * np.pi, M + 1)[:-1]
x = np.stack((.4 + .4 * (t / 7) * np.cos(t), .5 + .3 * np.sin(t)), 1)
x = x + .01 * np.random.randn(*x.shape)
x = x.astype(dtype)
y = np.random.randn(N, 2).astype(dtype)
y = y / 10 + np.array([.6, .6]).astype(dtype)

from kforge.numpy.cluster import grid_cluster
eps = .05  # Size of our square bins
Start = time.time()
start = time.time()
x_labels = grid_cluster(x, eps)  # class labels
y_labels = grid_cluster(y, eps)  # class labels
end = time.time()
print("Perform clustering : {:.4f}s".format(end - start))

from kforge.numpy.cluster import cluster_ranges_centroids
# Compute one range and centroid per class:
start = time.time()
x_ranges, x_centroids, _ = cluster_ranges_centroids(x, x_labels)
y_ranges, y_centroids, _ = cluster_ranges_centroids(y, y_labels)
end = time.time()
print("Compute ranges+centroids : {:.4f}s".format(end - start))

from kforge.numpy.cluster import sort_clusters
start = time.time()
x, x_labels = sort_clusters(x, x_labels)
y, y_labels = sort_clusters(y, y_labels)
end = time.time()
print("Sort the points : {:.4f}s".format(end - start))

sigma = .05  # Characteristic length of interaction
start = time.time()
# Compute a coarse Boolean mask:
D = np.sum((x_centroids[:, None, :] - y_centroids[None, :, :])**2, 2)
keep = D < (4 * sigma)**2

from kforge.numpy.cluster import from_matrix
ranges_ij = from_matrix(x_ranges, y_ranges, keep)
end = time.time()
print("Process the ranges : {:.4f}s".format(end - start))
End = time.time()
t_cluster = End - Start
print("Total time (synchronized): {:.4f}s".format(End - Start))
print("")

areas = (x_ranges[:, 1] - x_ranges[:, 0])[:, None] \
    * (y_ranges[:, 1] - y_ranges[:, 0])[None, :]
total_area = np.sum(areas)  # should be equal to N*M
sparse_area = np.sum(areas[keep])
print("We keep {:.2e}/{:.2e} = {:2d}% of the original kernel matrix.".format(
    sparse_area, total_area, int(100 * sparse_area / total_area)))
print("")

x_, y_ = x / sigma, y / sigma
x_i, y_j = LazyTensor(x_[:, None, :]), LazyTensor(y_[None, :, :])
D_ij = ((x_i - y_j) ** 2).sum(dim=2)  # Symbolic (M,N,1) matrix of squared distances
K = (- D_ij / 2).exp()  # Symbolic (M,N,1) Gaussian kernel matrix

b = np.random.randn(N, 1).astype(dtype)

backends = (["CPU", "GPU"] if M * N < 4e8 else ["GPU"]) if use_cuda else ["CPU"]
for backend in backends:
    K.backend = backend  # Switch to CPU or GPU mode
    # GPU warm-up:
    a = K @ b
    start = time.time()
    K.ranges = None  # default
    a_full = K @ b
    end = time.time()
    t_full = end - start
    print(" Full convolution, {} backend: {:2.4f}s".format(backend, end - start))
    start = time.time()
    K.ranges = ranges_ij  # block-sparsity pattern
    a_sparse = K @ b
    end = time.time()
    t_sparse = end - start
    print("Sparse convolution, {} backend: {:2.4f}s".format(backend, end - start))
    print("Relative time : {:3d}% ({:3d}% including clustering), ".format(
        int(100 * t_sparse / t_full),
        int(100 * (t_sparse + t_cluster) / t_full)))
    print("Relative error: {:3.4f}%".format(100 * np.sum(np.abs(a_sparse - a_full)) / np.sum(np.abs(a_full))))
    print("")

# Find the cluster centroid which is closest to the (.43,.6) point:
dist_target = np.sum(((x_centroids - np.array([.43, .6]).astype(dtype))**2), axis=1)
clust_i = np.argmin(dist_target)
if M + N <= 500000:
    ranges_i, slices_j, redranges_j = ranges_ij[0:3]
    start_i, end_i = ranges_i[clust_i]  # Indices of the points that make up our cluster
    start, end = slices_j[clust_i - 1], slices_j[clust_i]  # Ranges of the cluster's neighbors
    keep = keep.astype(float)
    keep[clust_i] += 2
    plt.ion()
    plt.matshow(keep)
    plt.figure(figsize=(10, 10))
    plt.scatter(x[:, 0], x[:, 1], c=x_labels, cmap=plt.cm.Wistia,
                s=25 * 500 / len(x), label="Target points")
    plt.scatter(y[:, 0], y[:, 1], c=y_labels, cmap=plt.cm.winter,
                s=25 * 500 / len(y), label="Source points")
    # Target clusters:
    for start_j, end_j in redranges_j[start:end]:
        plt.scatter(y[start_j:end_j, 0], y[start_j:end_j, 1],
                    c="magenta", s=50 * 500 / len(y))
    # Source cluster:
    plt.scatter(x[start_i:end_i, 0], x[start_i:end_i, 1],
                c="cyan", s=10, label="Cluster {}".format(clust_i))
    plt.scatter(x_centroids[:, 0], x_centroids[:, 1],
                c="black", s=10, alpha=.5, label="Cluster centroids")
    plt.legend(loc='lower right')
    # sphinx_gallery_thumbnail_number = 2
    plt.axis("equal"); plt.axis([0, 1, 0, 1])
    plt.tight_layout(); show()
