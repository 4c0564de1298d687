"""The two tutorials of examples/python, run as written at a small size, and what they
print checked against what the tutorials print."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("matplotlib", reason="the tutorials draw with matplotlib")


def _run(script, tmp_path, n):
    env = dict(os.environ, KFORGE_EXAMPLE_N=str(n), KFORGE_EXAMPLE_OUT=str(tmp_path),
               PYTHONPATH=os.path.join(ROOT, "python"), MPLCONFIGDIR=str(tmp_path))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", script)],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def _floats(text):
    return [float(v) for v in re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", text)]


def test_scipy_eigsh_tutorial(tmp_path):
    out = _run("plot_scipy_eigsh.py", tmp_path, 400)
    pngs = sorted(p.name for p in tmp_path.glob("scipy_eigsh_*.png"))
    assert pngs == ["scipy_eigsh_%d.png" % k for k in range(1, 6)]
    assert all((tmp_path / p).stat().st_size > 10000 for p in pngs)
    assert "formula: Exp((Minus(Sum(Square((Var(0,2,0) - Var(1,2,1))))) / IntCst(2)))" in out
    assert "formula: Exp((Minus(Sum(Square((Var(0,3,0) - Var(1,3,1))))) / IntCst(2)))" in out
    assert "shape: (400, 400)" in out and "Eigenvectors of shape: (400, 5)" in out
    # The graph Laplacian's smallest eigenvalue is 0 (up to Lanczos), then they grow.
    lap = out.split("Smallest eigenvalues of the graph Laplacian")[1].split("saved")[0]
    vals = _floats(lap.split("\n", 1)[1])
    assert len(vals) == 7 and abs(vals[0]) < 1e-3 and vals == sorted(vals) and vals[1] > 1e-3
    assert re.search(r"We keep .* = +\d+% of the original kernel matrix", out)
    diff = float(out.rsplit("largest difference from scipy's eigsh: ", 1)[1])
    assert diff < 1e-4  # float32: kforge's solver in C and scipy's through LazyTensors agree


def test_block_sparse_tutorial(tmp_path):
    out = _run("plot_block_sparse.py", tmp_path, 1000)
    assert sorted(p.name for p in tmp_path.glob("block_sparse_*.png")) == \
        ["block_sparse_1.png", "block_sparse_2.png"]
    for line in ("Perform clustering", "Compute ranges+centroids", "Sort the points",
                 "Process the ranges", " Full convolution, CPU backend",
                 "Sparse convolution, CPU backend", "Relative time"):
        assert line in out, line
    kept = int(re.search(r"= +(\d+)% of the original kernel matrix", out).group(1))
    assert 3 <= kept <= 40  # the tutorial: 13% at 5000 points
    err = float(re.search(r"Relative error: ([0-9.]+)%", out).group(1))
    assert err < 1.0  # the tutorial: 0.15%; the skipped pairs are below e^-8


def test_the_readmes_python_example(tmp_path):
    """README.md's Python block runs (on a smaller spiral) and prints the spectrum of
    L_norm: 0 first."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "spiral:10000" in code
    code = code.replace("spiral:10000", "spiral:1000")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    vals = [float(v) for v in r.stdout.strip().strip("[]").split()]
    assert len(vals) == 7 and abs(vals[0]) < 1e-4 and vals == sorted(vals)
