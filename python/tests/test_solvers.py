"""kforge's native operators and eigensolver from Python, against dense NumPy and against
the kforge command (the C results)."""
import subprocess

import numpy as np
import pytest
from scipy.sparse.linalg import eigsh as scipy_eigsh

import kforge
from kforge import LazyTensor

SIGMA = 0.05


def gauss(x, sigma=SIGMA):
    x_ = x / sigma
    return (-((LazyTensor(x_[:, None, :]) - LazyTensor(x_[None, :, :])) ** 2).sum(2) / 2).exp()


def dense_gauss(x, sigma=SIGMA):
    return np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * sigma ** 2))


def test_operators_against_dense(rng):
    x = kforge.gen("spiral:400")
    Kd = dense_gauss(x)
    D = Kd.sum(1)
    K = kforge.kernel_operator(gauss(x))
    v = rng.standard_normal((400, 3))
    assert np.allclose(K @ v, Kd @ v)
    L = kforge.laplacian(gauss(x))
    assert np.allclose(L.degrees, D) and np.allclose(L @ v, (np.diag(D) - Kd) @ v)
    Ln = kforge.laplacian(gauss(x), normalized=True)
    Dm = np.diag(D ** -0.5)
    assert np.allclose(Ln @ v[:, 0], v[:, 0] - Dm @ Kd @ Dm @ v[:, 0])
    assert L.matvecs == 3 and Ln.matvecs == 1
    # scipy's solvers take the native operators too
    vals = scipy_eigsh(L, k=4, which="SA", return_eigenvectors=False)
    assert np.allclose(np.sort(vals), np.linalg.eigvalsh(np.diag(D) - Kd)[:4], atol=1e-8)


def test_native_eigsh_against_dense():
    x = kforge.gen("spiral:400")
    Kd = dense_gauss(x)
    D = Kd.sum(1)
    vals, vecs = kforge.eigsh(gauss(x), k=5)
    assert np.allclose(vals, np.linalg.eigvalsh(Kd)[-5:], rtol=1e-9)
    assert vecs.shape == (400, 5) and np.allclose(np.linalg.norm(vecs, axis=0), 1)
    Ln = np.eye(400) - np.diag(D ** -0.5) @ Kd @ np.diag(D ** -0.5)
    vals, rep = kforge.eigsh(gauss(x), k=6, laplacian="normalized", return_eigenvectors=False,
                             return_report=True)
    assert np.allclose(vals, np.linalg.eigvalsh(Ln)[:6], atol=1e-9)
    assert rep["mode"] == "shifted" and rep["solver"] == "arpack" and rep["converged"] == 6
    assert rep["matvecs"] > 0 and rep["max_residual"] < 1e-6
    L = kforge.laplacian(gauss(x))
    vals, _ = kforge.eigsh(L, k=4, mode="direct")
    assert np.allclose(vals, np.linalg.eigvalsh(np.diag(D) - Kd)[:4], atol=1e-8)
    block, _ = kforge.eigsh(gauss(x), k=4, laplacian="unnormalized", solver="block",
                            mode="shifted", tol=1e-10)
    assert np.allclose(block, vals, atol=1e-6)


def test_eigsh_errors():
    x = kforge.gen("spiral:50")
    with pytest.raises(ValueError, match=r"k must be in \[1, n\)"):
        kforge.eigsh(gauss(x), k=50)
    with pytest.raises(ValueError, match="unknown which"):
        kforge.eigsh(gauss(x), k=3, which="XX")
    with pytest.raises(ValueError, match="unknown laplacian"):
        kforge.eigsh(gauss(x), k=3, laplacian="sym")
    with pytest.raises(kforge.NoConvergence) as e:
        kforge.eigsh(gauss(x), k=3, laplacian="unnormalized", mode="direct", maxiter=1)
    assert e.value.report["converged"] == len(e.value.values) < 3
    with pytest.raises(ValueError, match=r"shape \(n, n\)"):
        kforge.kernel_operator(LazyTensor(x[:, None, :]) - LazyTensor(x[None, :10, :]))


def test_gen_is_kforge_gens_cloud(kforge_bin, tmp_path):
    for spec in ("spiral:500", "swissroll:300:9"):
        f = tmp_path / "x.npy"
        subprocess.run([kforge_bin, "gen", spec, "-o", str(f)], check=True)
        assert np.array_equal(kforge.gen(spec), np.load(f)), spec
    assert kforge.gen("spiral:10", dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="'spiral:0'"):
        kforge.gen("spiral:0")


@pytest.mark.parametrize("laplacian", ["unnormalized", "normalized"])
def test_eigsh_matches_the_kforge_command(kforge_bin, tmp_path, laplacian):
    """The same spectrum three ways: `kforge eigsh` (C), kforge.eigsh and scipy's eigsh on
    a LazyTensor operator (Python), float64."""
    f = tmp_path / "vals.npy"
    subprocess.run([kforge_bin, "eigsh", "--gen", "spiral:800", "--laplacian", laplacian,
                    "--dtype", "float64", "-k", "5", "-o", str(f)], check=True,
                   capture_output=True)
    c_vals = np.load(f)
    x = kforge.gen("spiral:800")
    py_vals, _ = kforge.eigsh(gauss(x), k=5, laplacian=laplacian)
    scale = np.max(np.abs(c_vals))
    assert np.max(np.abs(py_vals - c_vals)) <= 1e-9 * scale
    L = kforge.laplacian(gauss(x), normalized=laplacian == "normalized")
    sp_vals = np.sort(scipy_eigsh(L, k=5, which="SA", return_eigenvectors=False, tol=1e-12))
    assert np.max(np.abs(sp_vals - c_vals)) <= 1e-8 * scale
