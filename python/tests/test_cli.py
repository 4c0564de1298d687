"""Python and the kforge command: the same results from the same formula, and one kernel
cache shared by both."""
import os
import subprocess

import numpy as np

import kforge

FORMULA = "Exp(-SqDist(x,y)/IntCst(2))*b"
ALIASES = ["x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"]


def _eval(kforge_bin, tmp_path, formula, aliases, arrays, *extra):
    files = []
    for k, a in enumerate(arrays):
        files.append(str(tmp_path / ("arg%d.npy" % k)))
        np.save(files[-1], a)
    out = str(tmp_path / "out.npy")
    cmd = [kforge_bin, "eval", formula, "--reduction", "Sum", "--axis", "1", "-o", out]
    for a in aliases:
        cmd += ["--alias", a]
    subprocess.run(cmd + list(extra) + files, check=True, capture_output=True)
    return np.load(out)


def test_genred_equals_kforge_eval(kforge_bin, tmp_path, rng):
    x, y = rng.random((300, 3)).astype(np.float32), rng.random((200, 3)).astype(np.float32)
    b = rng.standard_normal((200, 1)).astype(np.float32)
    c = _eval(kforge_bin, tmp_path, FORMULA, ALIASES, [x, y, b], "--jit", "cc")
    p = kforge.Genred(FORMULA, ALIASES, "Sum", axis=1)(x, y, b)
    # The same cc kernel (from the shared cache) on the same data: the same bits.
    assert np.array_equal(c, p)


def test_one_kernel_cache(kforge_bin, tmp_path, rng):
    """A kernel the command built is a cache hit in Python, and one Python built is listed
    by `kforge cache list`, in the cache directory both read from KFORGE_CACHE_DIR."""
    cache = os.environ["KFORGE_CACHE_DIR"]
    assert kforge.cache_dir() == (cache, 1)
    x, y, b = rng.random((50, 2)), rng.random((40, 2)), rng.random((40, 1))
    f1 = "Exp(-SqDist(x,y)*IntCst(3))*b"
    al = ["x=Vi(0,2)", "y=Vj(1,2)", "b=Vj(2,1)"]
    _eval(kforge_bin, tmp_path, f1, al, [x, y, b], "--jit", "cc")
    k = kforge.Kernel(f1, al, "Sum", 1, np.float64)
    assert k.stats()["cache"] == "hit"
    f2 = "Exp(-SqDist(x,y)*IntCst(5))*b"
    k2 = kforge.Kernel(f2, al, "Sum", 1, np.float64)
    assert k2.stats()["cache"] == "miss"
    listing = subprocess.run([kforge_bin, "cache", "list"], capture_output=True, text=True,
                             check=True).stdout
    assert k2.canonical in listing
