"""LazyTensor: the formulas it writes (as pykeops prints them), its reductions against
NumPy, and scipy's aslinearoperator/eigsh on it."""
import numpy as np
import pytest
from scipy.sparse.linalg import aslinearoperator, eigsh

import kforge
from kforge import LazyTensor


def test_the_tutorials_formula_and_print(rng):
    x = rng.random((100, 2)).astype(np.float32)
    x_i, x_j = LazyTensor(x[:, None, :]), LazyTensor(x[None, :, :])
    K = (-((x_i - x_j) ** 2).sum(2) / 2).exp()
    assert K.formula == "Exp((Minus(Sum(Square((Var(0,2,0) - Var(1,2,1))))) / IntCst(2)))"
    assert K.shape == (100, 100) and K.dtype == np.float32
    assert str(K) == ("kforge LazyTensor\nformula: Exp((Minus(Sum(Square((Var(0,2,0) - "
                      "Var(1,2,1))))) / IntCst(2)))\nshape: (100, 100)")
    assert (x_i - x_j).shape == (100, 100, 2)


def test_powers_and_constants():
    x = LazyTensor(np.ones((5, 1, 3)))
    assert (x ** 2).formula == "Square(Var(0,3,0))"
    assert (x ** 3).formula == "Pow(Var(0,3,0),3)"
    assert (x ** 3.0).formula == "Pow(Var(0,3,0),3)"
    assert (x ** 0.5).formula == "Sqrt(Var(0,3,0))"
    assert (x ** -0.5).formula == "Rsqrt(Var(0,3,0))"
    assert (x ** 1.5).formula == "Powf(Var(0,3,0), 1.5)"
    assert (2 * x - 0.25).formula == "((IntCst(2) * Var(0,3,0)) - 0.25)"
    assert (x * -1.5).formula == "(Var(0,3,0) * Minus(1.5))"
    assert (1 / x).formula == "(IntCst(1) / Var(0,3,0))"
    assert x.sqnorm2().formula == "SqNorm2(Var(0,3,0))"
    assert x[..., 1].formula == "Elem(Var(0,3,0),1)"
    assert x[:, :, 1:3].formula == "Extract(Var(0,3,0),1,2)"
    with pytest.raises(ValueError, match="cannot be written"):
        x * float("nan")


def test_reductions_against_numpy(rng):
    x, y = rng.random((50, 2)), rng.random((40, 2))
    b = rng.standard_normal((40, 3))
    x_i, y_j, b_j = LazyTensor(x[:, None, :]), LazyTensor(y[None, :, :]), LazyTensor(b[None, :, :])
    d2 = ((x[:, None, :] - y[None]) ** 2).sum(-1)
    D = ((x_i - y_j) ** 2).sum(-1)
    assert np.allclose(((-D).exp() * b_j).sum(dim=1), np.exp(-d2) @ b)
    assert np.allclose(((-D).exp() * LazyTensor(x[:, None, :1])).sum(dim=0),
                       np.exp(-d2).T @ x[:, :1])
    assert np.allclose(D.min(dim=1).ravel(), d2.min(1))
    assert np.array_equal(D.argmin(dim=0).ravel(), d2.argmin(0))
    assert np.array_equal(D.argKmin(4, dim=1), np.argsort(d2, 1, kind="stable")[:, :4])
    v, i = D.Kmin_argKmin(2, dim=1)
    assert v.shape == (50, 2) and np.allclose(v, np.sort(d2, 1)[:, :2])
    assert np.allclose((-D).logsumexp(dim=1).ravel(), np.log(np.exp(-d2).sum(1)))
    assert np.allclose((-D).sumsoftmaxweight(b_j, dim=1),
                       (np.exp(-d2) @ b) / np.exp(-d2).sum(1, keepdims=True))
    # vector Kmin: (rows, K, D)
    assert (x_i - y_j).Kmin(3, dim=1).shape == (50, 3, 2)
    # a 2-D array with axis, and a parameter
    p = np.array([0.5, 2.0])
    s = ((LazyTensor(x, axis=0) - LazyTensor(y, axis=1)) * LazyTensor(p)).sum().sum(dim=1)
    assert np.allclose(s.ravel(), ((x[:, None, :] - y[None]) * p).sum(-1).sum(1))


def test_scipy_linear_operator_and_eigsh(rng):
    x = rng.random((300, 2))
    x_i, x_j = LazyTensor(x[:, None, :] / 0.2), LazyTensor(x[None, :, :] / 0.2)
    K_xx = (-((x_i - x_j) ** 2).sum(2) / 2).exp()
    K = aslinearoperator(K_xx)
    dense = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * 0.04))
    v = rng.standard_normal(300)
    assert np.allclose(K @ v, dense @ v) and np.allclose(K.rmatvec(v), dense @ v)
    assert np.allclose(K.matmat(np.stack([v, 2 * v], 1)), dense @ np.stack([v, 2 * v], 1))
    vals, vecs = eigsh(K, k=5)
    assert np.allclose(vals, np.linalg.eigvalsh(dense)[-5:], rtol=1e-8)
    assert vecs.shape == (300, 5)


def test_rectangular_matvec(rng):
    x, y = rng.random((30, 1)), rng.random((20, 1))
    K = (-(LazyTensor(x[:, None, :]) - LazyTensor(y[None, :, :])) ** 2).exp()
    dense = np.exp(-(x - y.T) ** 2)
    v, w = rng.standard_normal(20), rng.standard_normal((30, 2))
    assert np.allclose(K @ v, dense @ v) and (K @ v).shape == (30,)
    assert np.allclose(K.rmatmat(w), dense.T @ w)
    with pytest.raises(ValueError, match=r"v of shape \(20,\)"):
        K @ np.ones(30)


def test_ranges_on_a_lazytensor(rng):
    x = np.sort(rng.random((80, 1)), axis=0)
    K = (-(LazyTensor(x[:, None, :]) - LazyTensor(x[None, :, :])) ** 2).exp()
    labels = (x[:, 0] * 4).astype(np.int64)
    ranges, _, _ = kforge.cluster_ranges_centroids(x, labels)
    keep = np.abs(np.arange(4)[:, None] - np.arange(4)[None]) <= 1
    K.ranges = kforge.from_matrix(ranges, ranges, keep)
    b = rng.standard_normal((80, 1))
    mask = keep[labels][:, labels]
    assert np.allclose(K @ b, (np.exp(-(x - x.T) ** 2) * mask) @ b)
    assert np.allclose(K.rmatvec(b), (np.exp(-(x - x.T) ** 2) * mask).T @ b)


def test_lazytensor_errors(rng):
    a, b = LazyTensor(np.ones((5, 1, 3))), LazyTensor(np.ones((1, 4, 2)))
    with pytest.raises(ValueError, match="do not broadcast"):
        a - b
    with pytest.raises(ValueError, match="5 and 6 i-points"):
        a + LazyTensor(np.ones((6, 1, 3)))
    with pytest.raises(ValueError, match="needs axis"):
        LazyTensor(np.ones((5, 3)))
    with pytest.raises(TypeError, match="float32 or float64"):
        LazyTensor(np.ones((5, 1, 3), np.int32))
    with pytest.raises(TypeError, match="cannot be combined"):
        a + LazyTensor(np.ones((5, 1, 3), np.float32))
    with pytest.raises(ValueError, match="both an i- and a j-variable"):
        a.sum(dim=1)
    with pytest.raises(ValueError, match="scalar LazyTensor"):
        (a - LazyTensor(np.ones((1, 4, 3)))) @ np.ones(4)
