"""kforge.numpy.cluster -- pykeops.numpy.cluster's names (kforge.cluster)."""
from ..cluster import cluster_ranges_centroids, from_matrix, grid_cluster, sort_clusters, swap_axes

__all__ = ["grid_cluster", "cluster_ranges_centroids", "sort_clusters", "from_matrix", "swap_axes"]
