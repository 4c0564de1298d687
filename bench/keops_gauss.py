"""keops_gauss.py -- KeOps' CPU engine on the Gaussian kernel sum of `make bench`.

    python keops_gauss.py M N DTYPE THREADS REPEAT BUILD_DIR

The same sum as bench/baseline/gauss.c and `kforge bench`: a_i = sum_j
exp(-|x_i - y_j|^2 / 2) b_j, D = 3, inputs uniform in [-1, 1) (numpy's
generator, seed 1: the values differ from kforge's, their distribution does
not, and the time does not depend on them). KeOps compiles the formula on
the first call (not timed; its build folder is BUILD_DIR), then REPEAT calls
are timed. Prints one line: "NS ns/pair (median of REPEAT) keops VERSION".
THREADS is KeOps' OpenMP thread count (OMP_NUM_THREADS, set by the caller
before Python starts).
"""
import sys
import time

import numpy as np
import pykeops
from pykeops.numpy import LazyTensor


def main():
    m, n, dtype, _threads, repeat, build = sys.argv[1:7]
    m, n, repeat = int(m), int(n), max(1, int(repeat))
    pykeops.set_verbose(False)
    pykeops.set_build_folder(build)
    rng = np.random.default_rng(1)
    t = np.float32 if dtype == "float32" else np.float64
    x = rng.uniform(-1, 1, (m, 3)).astype(t)
    y = rng.uniform(-1, 1, (n, 3)).astype(t)
    b = rng.uniform(-1, 1, (n, 1)).astype(t)
    xi, yj, bj = LazyTensor(x[:, None, :]), LazyTensor(y[None, :, :]), LazyTensor(b[None, :, :])
    k = (-((xi - yj) ** 2).sum(-1) / 2).exp() * bj
    k.sum(axis=1, backend="CPU")  # compiles
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        k.sum(axis=1, backend="CPU")
        times.append(time.perf_counter() - t0)
    times.sort()
    print("%.4f ns/pair (median of %d) keops %s" % (1e9 * times[len(times) // 2] / (m * n), repeat,
                                                     pykeops.__version__))


if __name__ == "__main__":
    main()
